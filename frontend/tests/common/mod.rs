//! What the end-to-end tests share: scratch directories, `tern` processes that are killed
//! if a test fails, a human-monitor client, and waiting for output files.

#![allow(dead_code)] // each test file uses its own subset

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const TERN: &str = env!("CARGO_BIN_EXE_tern");
pub const BANNER: &str = "tern monitor - type 'help' for more information\n";
pub const PROMPT: &str = "(tern) ";
/// Upper bound for anything the tests wait for.
pub const WAIT: Duration = Duration::from_secs(60);

/// A scratch directory removed when the test ends.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!("tern-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `tern` process killed if the test fails before it exits.
pub struct Tern(pub Child);

impl Tern {
    pub fn spawn(args: &[&str]) -> Self {
        let child = Command::new(TERN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn tern");
        Tern(child)
    }

    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "tern did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tern {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// One monitor connection.
pub struct Monitor {
    pub s: UnixStream,
    buf: Vec<u8>,
}

impl Monitor {
    pub fn connect(tern: &mut Tern, path: &Path) -> Self {
        let deadline = Instant::now() + WAIT;
        let s = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) => {
                    if let Some(status) = tern.0.try_wait().unwrap() {
                        panic!("tern exited ({status}) before its monitor accepted a client");
                    }
                    assert!(
                        Instant::now() < deadline,
                        "cannot connect to the monitor: {e}"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        };
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut m = Monitor { s, buf: Vec::new() };
        assert_eq!(m.until_prompt(), BANNER);
        m
    }

    /// Everything up to the next prompt, without it.
    pub fn until_prompt(&mut self) -> String {
        loop {
            if let Some(i) = find(&self.buf, PROMPT.as_bytes()) {
                let text = String::from_utf8(self.buf[..i].to_vec()).unwrap();
                self.buf.drain(..i + PROMPT.len());
                return text;
            }
            let mut chunk = [0u8; 4096];
            let n = self.s.read(&mut chunk).expect("monitor reply");
            assert!(
                n > 0,
                "monitor closed the connection; got {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\n").as_bytes());
        self.until_prompt()
    }

    /// Like [`Monitor::cmd`], but `None` if the connection ends first (tern exited, for
    /// example because its guest did) instead of a panic.
    pub fn try_cmd(&mut self, line: &str) -> Option<String> {
        self.s.write_all(format!("{line}\n").as_bytes()).ok()?;
        loop {
            if let Some(i) = find(&self.buf, PROMPT.as_bytes()) {
                let text = String::from_utf8(self.buf[..i].to_vec()).unwrap();
                self.buf.drain(..i + PROMPT.len());
                return Some(text);
            }
            let mut chunk = [0u8; 4096];
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Bytes that arrived without being asked for (there must be none).
    pub fn unsolicited(&mut self) -> Vec<u8> {
        self.s.set_nonblocking(true).unwrap();
        let mut chunk = [0u8; 4096];
        while let Ok(n) = self.s.read(&mut chunk) {
            if n == 0 {
                break;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        self.s.set_nonblocking(false).unwrap();
        std::mem::take(&mut self.buf)
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub fn file_text(p: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned()
}

/// Waits until `cond` holds for the file's contents.
pub fn wait_file(p: &Path, what: &str, cond: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let t = file_text(p);
        if cond(&t) {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; serial output: {t:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn guest(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/guests")
        .join(name)
}

/// Waits until `tern` has created `path` (a socket it listens on).
pub fn wait_path(tern: &mut Tern, path: &Path) {
    let deadline = Instant::now() + WAIT;
    while !path.exists() {
        if let Some(status) = tern.0.try_wait().unwrap() {
            panic!("tern exited ({status}) before creating {}", path.display());
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Tern {
    /// Like [`Tern::spawn`], with stderr going to `stderr` (where `--digest-on-exit` and
    /// error messages are read from).
    pub fn spawn_logged(args: &[&str], stderr: &Path) -> Self {
        let err = std::fs::File::create(stderr).expect("create the stderr file");
        let child = Command::new(TERN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn tern");
        Tern(child)
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

/// The digest a `--digest-on-exit` run printed on stderr.
pub fn exit_digest(stderr: &Path) -> String {
    let text = file_text(stderr);
    text.lines()
        .find_map(|l| l.strip_prefix("digest: "))
        .unwrap_or_else(|| panic!("no digest line in stderr: {text:?}"))
        .to_string()
}

/// A TCP port on 127.0.0.1 that nothing listened on a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Polls a condition, panicking with `what` once [`WAIT`] has passed.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The line numbers of the complete `count NNNNNN pit PPPP` lines of the counter guest's
/// output (`testdata/guests/counter.asm`), in order. Panics on a complete line of any
/// other form, except the guest's closing `PASS counter`.
pub fn counter_lines(text: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("\r\n") {
        let line = &rest[..i];
        rest = &rest[i + 2..];
        if line == "PASS counter" {
            continue;
        }
        let n = line
            .strip_prefix("count ")
            .and_then(|l| l.split_once(" pit "))
            .filter(|(n, p)| n.len() == 6 && p.len() == 4)
            .and_then(|(n, p)| p.parse::<u32>().ok().and(n.parse::<u32>().ok()))
            .unwrap_or_else(|| panic!("not a counter line: {line:?} in {text:?}"));
        out.push(n);
    }
    out
}

/// Checks that the counter guest's output is one run without a gap or a repeat: lines
/// 1, 2, 3, ... Returns the number of the last complete line.
pub fn check_counter_run(text: &str, what: &str) -> u32 {
    let lines = counter_lines(text);
    for (i, n) in lines.iter().enumerate() {
        assert_eq!(
            *n,
            i as u32 + 1,
            "{what}: line {} is number {n}; output:\n{text}",
            i + 1
        );
    }
    lines.len() as u32
}

/// Waits until the counter guest has written at least `n` complete lines to `serial`;
/// returns the output.
pub fn wait_counter(serial: &Path, n: u32) -> String {
    wait_file(serial, &format!("{n} counter lines"), |t| {
        t.matches("\r\n").count() >= n as usize
    })
}

/// The arguments of `tern run` booting the counter guest with `append` as its options,
/// its serial output to `serial`, plus `extra`.
pub fn counter_args(append: &str, serial: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "run".into(),
        "--kernel".into(),
        guest("counter.bin").to_str().unwrap().into(),
        "--append".into(),
        append.into(),
        "--serial".into(),
        format!("file:{}", serial.display()),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

pub fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
