//! Guest MIPS on the benchmark programs of `testdata/bench`.
//!
//! Each program is booted, then run to its end; the figure is executed guest instructions
//! per second of this thread's CPU time (start-up excluded), the median of several runs.
//! Run with `cargo bench -p hw --bench mips`.

use std::path::PathBuf;
use std::sync::Arc;

use hw::clock::ClockMode;
use hw::{BootSource, MachineConfig, PcMachine, RunEvent};

/// This thread's CPU time in nanoseconds (Linux: the first field of schedstat).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or_else(|| {
            // Not Linux: wall time is the best available.
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        })
}

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/bench");
    let runs: usize = std::env::var("TERN_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("testdata/bench")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    names.sort();
    // `cargo bench -p hw --bench mips -- alu copy` runs only those.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if !only.is_empty() {
        names.retain(|p| {
            let stem = p.file_stem().unwrap_or_default().to_string_lossy();
            only.iter().any(|o| *o == stem)
        });
    }
    println!(
        "{:<12} {:>14} {:>10} {:>10} {:>10}",
        "benchmark", "instructions", "median", "min", "max"
    );
    for path in names {
        let image: Arc<[u8]> = std::fs::read(&path).expect("read").into();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let mut mips = Vec::new();
        let mut insns = 0;
        for _ in 0..runs {
            let mut m = PcMachine::new(MachineConfig {
                ram_size: 64 << 20,
                boot: BootSource::Multiboot {
                    image: image.clone(),
                    cmdline: String::new(),
                },
                debugcon_port: None,
                clock: ClockMode::Realtime,
                rtc_base: hw::rtc::RtcBase::HostUtc,
                no_reboot: true,
            })
            .expect("machine");
            let t0 = thread_cpu_ns();
            let ok = loop {
                match m.run(1_000_000) {
                    RunEvent::Exit(code) => break code == 1,
                    RunEvent::Shutdown => break false,
                    _ => {}
                }
                if m.cpu.icount() > 50_000_000_000 {
                    break false;
                }
            };
            let dt = thread_cpu_ns() - t0;
            let _ = m.take_serial_output();
            if !ok {
                println!("{name}: did not finish with PASS");
                break;
            }
            insns = m.cpu.icount();
            mips.push(insns as f64 / (dt as f64 / 1e9) / 1e6);
        }
        if mips.is_empty() {
            continue;
        }
        mips.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "{:<12} {:>14} {:>8.0} M {:>8.0} M {:>8.0} M",
            name,
            insns,
            mips[mips.len() / 2],
            mips[0],
            mips[mips.len() - 1]
        );
        if let Some(&(_, dwords)) = DWORDS_MOVED.iter().find(|(n, _)| *n == name) {
            // The same median run, as copy throughput: dwords (REP iterations) per second.
            let secs = insns as f64 / (mips[mips.len() / 2] * 1e6);
            println!(
                "{:<12} {:>14} dwords: {:.0} M dwords/s, {:.0} MiB/s",
                "",
                dwords,
                dwords as f64 / secs / 1e6,
                dwords as f64 * 4.0 / secs / (1 << 20) as f64
            );
        }
    }
}

/// Dwords each copy benchmark moves (from the kernel comments in its source).
const DWORDS_MOVED: &[(&str, u64)] = &[("copy", 81_920_000), ("repmovsd", 163_840_000)];
