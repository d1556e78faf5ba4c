//! The migration pipeline end to end, with a fake VM thread on each side (no CPU, no
//! board): transports, convergence, cancel, failures and the statistics.

mod cancel;
mod convergence;
mod failures;
mod fake_vm;
mod stats;
mod transports;

use std::io::Read;
use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_vm::{FakeVm, PAGE};
use memory::GuestPhysAddr;
use migration::{
    IncomingMigration, IncomingSetup, MigrationParams, MigrationStatus, MigrationUri,
    OutgoingMigration, OutgoingSetup,
};
use savevm::Config;

const MIB: u64 = 1 << 20;

pub fn no_fds(_: &str) -> Option<OwnedFd> {
    None
}

/// Polls `cond` until it holds; a liveness bound, not a timing assertion.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(40);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub fn config(ram: u64) -> Config {
    Config {
        machine: "pc".into(),
        ram_size: ram,
        cpu_model: "test".into(),
    }
}

pub fn params(max_bandwidth: u64, downtime_limit_ms: u64) -> Arc<MigrationParams> {
    let p = MigrationParams::new();
    p.set_max_bandwidth(max_bandwidth);
    p.set_downtime_limit_ms(downtime_limit_ms).unwrap();
    Arc::new(p)
}

/// Starts migrating `vm` to `uri`; the fake VM serves the link and obeys the throttle.
pub fn start_out(
    vm: &mut FakeVm,
    uri: &MigrationUri,
    params: &Arc<MigrationParams>,
) -> Arc<OutgoingMigration> {
    let (m, link) = OutgoingMigration::start(
        OutgoingSetup {
            uri: uri.clone(),
            config: config(vm.memory.ram_size()),
            memory: vm.memory.clone(),
            params: params.clone(),
            waker: vm.waker(),
        },
        &mut no_fds,
    )
    .unwrap();
    let m = Arc::new(m);
    let t = m.clone();
    vm.serve(link, Some(Box::new(move || t.cpu_throttle_percentage())));
    m
}

pub fn listen_in(vm: &mut FakeVm, uri: &MigrationUri) -> IncomingMigration {
    let (m, link) = IncomingMigration::listen(
        uri,
        &mut no_fds,
        IncomingSetup {
            config: config(vm.memory.ram_size()),
            memory: vm.memory.clone(),
            waker: vm.waker(),
        },
    )
    .unwrap();
    vm.serve(link, None);
    m
}

pub fn wait_out(m: &OutgoingMigration) -> MigrationStatus {
    wait_until("the migration to end", || m.status().is_final());
    m.status()
}

pub fn wait_in(m: &IncomingMigration) -> MigrationStatus {
    wait_until("the incoming migration to end", || m.status().is_final());
    m.status()
}

/// Writes recognisable data into `pages`.
pub fn fill(vm: &FakeVm, pages: impl Iterator<Item = u64>) {
    for p in pages {
        let mut data = [0u8; PAGE as usize];
        for (i, b) in data.iter_mut().enumerate() {
            *b = (p as usize * 31 + i) as u8 | 0x80;
        }
        vm.memory.write_ram(p * PAGE, &data);
    }
}

/// Asserts both guests' RAM are equal byte for byte, naming the first page that is not.
pub fn assert_same_ram(a: &FakeVm, b: &FakeVm) {
    let size = a.memory.ram_size();
    assert_eq!(size, b.memory.ram_size());
    let mut x = vec![0u8; PAGE as usize];
    let mut y = vec![0u8; PAGE as usize];
    for p in 0..size / PAGE {
        a.memory.ram().read_slice(p * PAGE, &mut x);
        b.memory.ram().read_slice(p * PAGE, &mut y);
        if x != y {
            let at = x.iter().zip(&y).position(|(a, b)| a != b).unwrap_or(0) & !7;
            let word = |v: &[u8]| u64::from_le_bytes(v[at..at + 8].try_into().unwrap());
            panic!(
                "page {p:#x} differs at byte {at:#x}: source {:#x}, destination {:#x}",
                word(&x),
                word(&y)
            );
        }
    }
}

pub fn ram_is_zero(vm: &FakeVm) -> bool {
    (0..vm.memory.ram_size() / PAGE).all(|p| vm.memory.ram().page_is_zero(p))
}

/// A fresh directory for this test's files.
pub fn scratch(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tern-mig-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn files_in(dir: &PathBuf) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// What a [`Peer`] does with the one connection it accepts.
pub enum PeerMode {
    /// Reads this many bytes, then hangs up.
    ReadThenClose(u64),
    /// Never reads; keeps the socket open until released.
    Hold,
}

/// A TCP peer that is not a migration destination.
pub struct Peer {
    pub uri: MigrationUri,
    release: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Peer {
    pub fn new(mode: PeerMode) -> Peer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            match mode {
                PeerMode::ReadThenClose(limit) => {
                    let mut buf = vec![0u8; 64 << 10];
                    let mut got = 0u64;
                    while got < limit {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => got += n as u64,
                        }
                    }
                }
                PeerMode::Hold => {
                    let _ = released.recv();
                }
            }
        });
        Peer {
            uri: MigrationUri::Tcp {
                host: "127.0.0.1".into(),
                port,
            },
            release: Some(release),
            thread: Some(thread),
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.release.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn write_at(vm: &FakeVm, addr: u64, data: &[u8]) {
    vm.memory.write_phys(GuestPhysAddr(addr), data);
}
