use cpu::testing::{run_snippet32, SnippetEnd, SnippetState};

#[test]
fn add_loop_and_memory() {
    // mov ecx,10; xor eax,eax; l: add eax,ecx; dec ecx; jnz l; mov [0x10000],eax
    let code = [
        0xB9, 10, 0, 0, 0, 0x31, 0xC0, 0x01, 0xC8, 0x49, 0x75, 0xFB, 0xA3, 0x00, 0x00, 0x01, 0x00,
    ];
    let mut s = SnippetState::default();
    let end = run_snippet32(&code, &mut s);
    assert_eq!(end, SnippetEnd::Done);
    assert_eq!(s.gpr[0], 55);
    assert_eq!(&s.data[..4], &55u32.to_le_bytes());
}

#[test]
fn ud2_is_reported() {
    let mut s = SnippetState::default();
    match run_snippet32(&[0x0F, 0x0B], &mut s) {
        SnippetEnd::Exception(e) => assert_eq!(e.vector, 6),
        other => panic!("{other:?}"),
    }
}
