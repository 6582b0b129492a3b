//! The QEMU firmware example (`firmware/qemu`) answering tandem-std over a serial line: QEMU
//! boots the image on an emulated `lm3s6965evb` with UART0 on a Unix socket; a relay carries the
//! bytes between that socket and a pseudo-terminal, flipping, dropping and duplicating some; the
//! client dials the pty as `serial://` and calls the device, streams chunks to it and checks that
//! the device executed everything exactly once.
//!
//! Needs `qemu-system-arm` and the `thumbv7m-none-eabi` target (the test builds the image with
//! `cargo build --release` in firmware/qemu), so it is ignored by
//! default; `.ci/run` runs it with `--ignored`:
//!
//! ```text
//! cargo test -p tandem-qemu-service --test qemu -- --ignored
//! ```
//!
//! `TANDEM_QEMU_IMAGE` names another image to boot instead (nothing is built then).

use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tandem_qemu_service::{device, Add, Chunk, DeviceError};
use tandem_std::{Client, ClientConfig, Handlers, Status};
use tandem_testkit::serial::{set_nonblocking, Noise, Pty, Relay};

/// Kills QEMU when the test ends, however it ends.
struct Qemu(Child);

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The firmware image: `TANDEM_QEMU_IMAGE` if set, else built here (`cargo build --release` in
/// firmware/qemu, a no-op when it is up to date), so that the test never runs a stale image.
fn image() -> PathBuf {
    if let Some(path) = std::env::var_os("TANDEM_QEMU_IMAGE").map(PathBuf::from) {
        assert!(path.exists(), "TANDEM_QEMU_IMAGE={} does not exist", path.display());
        return path;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../qemu");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // From the crate's directory: cargo reads its .cargo/config.toml (the target, the linker
    // script) from the working directory, not from the manifest's.
    let status = Command::new(cargo)
        .args(["build", "--release"])
        .current_dir(&dir)
        // The host build's settings are not the firmware's.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .expect("run cargo to build the firmware image");
    assert!(
        status.success(),
        "building the firmware image failed ({status}); it needs the target: rustup target add thumbv7m-none-eabi"
    );
    dir.join("target/thumbv7m-none-eabi/release/tandem-qemu-firmware")
}

/// Boots the image with UART0 connected to a Unix socket we listen on; returns QEMU and the
/// socket's connection (non-blocking).
fn boot(dir: &std::path::Path) -> (Qemu, std::os::unix::net::UnixStream) {
    let sock = dir.join("uart0.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let child = Command::new("qemu-system-arm")
        .args(["-machine", "lm3s6965evb", "-cpu", "cortex-m3", "-nographic", "-monitor", "none"])
        .arg("-serial")
        .arg(format!("unix:{}", sock.display()))
        .arg("-kernel")
        .arg(image())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start qemu-system-arm ({e}): install it (Debian/Ubuntu: apt-get install qemu-system-arm)")
        });
    let mut qemu = Qemu(child);
    listener.set_nonblocking(true).unwrap();
    let start = Instant::now();
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                set_nonblocking(&s).unwrap();
                return (qemu, s);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Ok(Some(status)) = qemu.0.try_wait() {
                    panic!("qemu-system-arm exited before connecting its UART: {status}");
                }
                assert!(start.elapsed() < Duration::from_secs(30), "QEMU did not connect its UART in 30 s");
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// Runs `f` on a thread; fails the test if it takes longer than `secs`.
fn bounded(secs: u64, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => h.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(p) = h.join() {
                std::panic::resume_unwind(p);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("the QEMU test did not finish in {secs} s"),
    }
}

#[test]
#[ignore = "needs qemu-system-arm and the firmware image; .ci/run runs it"]
fn the_emulated_device_answers_over_a_noisy_serial_line_exactly_once() {
    bounded(240, || {
        let dir = std::env::temp_dir().join(format!("tandem-qemu-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (_qemu, uart) = boot(&dir);
        let pty = Pty::open().unwrap();
        // Noise on the first 6000 bytes each way and the first 10 s, then a clean line: every
        // call ends within 2·10 s + initial RTO whatever the retransmission backoff reached
        // meanwhile (`Noise::window`; a byte budget alone is not spent while the line is quiet).
        let noise = Noise {
            seed: 0xD1B5_4A32_D192_ED03,
            per_million: 2_000,
            budget: 6_000,
            window: Duration::from_secs(10),
        };
        let relay = Relay::start(pty.master.try_clone().unwrap(), uart, noise);
        let mut config = ClientConfig::new("host");
        config.connection.handshake_timeout = Duration::from_secs(60);
        config.connect_timeout = Duration::from_secs(60);
        let client = Client::connect(&pty.address(115_200), config, Handlers::new()).unwrap();
        let dev = device::BlockingClient::new(client.peer().clone()).with_deadline(Duration::from_secs(60));

        // Unary calls, and the declared application error.
        const CALLS: u32 = 40;
        for tag in 0..CALLS {
            assert_eq!(dev.add(&Add { tag, a: tag, b: 1000 }), Ok(tag + 1000), "call {tag}");
        }
        let e = dev.add(&Add { tag: CALLS, a: u32::MAX, b: 1 }).unwrap_err();
        assert_eq!((e.status(), e.app()), (Status::APPLICATION_ERROR, Some(&DeviceError::Overflow)));

        // The stream the host sends: numbered chunks as reliable notifications.
        const CHUNKS: u32 = 30;
        for seq in 0..CHUNKS {
            dev.chunk(&Chunk { seq, value: seq * 3 }).unwrap_or_else(|e| panic!("chunk {seq}: {e}"));
        }

        let totals = dev.totals(&()).unwrap();
        eprintln!("{}; device: {totals:?}; client: {:?}", relay.counts(), client.stats().retransmissions);
        assert_eq!(totals.adds, CALLS + 1, "every call executed exactly once");
        assert_eq!(totals.chunks, CHUNKS, "every chunk applied once");
        assert_eq!(totals.sum, (0..CHUNKS).map(|s| u64::from(s * 3)).sum::<u64>());
        assert_eq!(totals.out_of_order, 0, "no chunk applied twice or skipped");
        assert!(relay.counts().damaged() > 0, "the line was damaged: {}", relay.counts());
        client.shutdown(Duration::from_secs(1));
        let _ = std::fs::remove_dir_all(&dir);
    });
}
