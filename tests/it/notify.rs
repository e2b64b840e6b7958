//! systemd notifications: READY=1 once the port answers, watchdog pings at
//! half the configured interval, STOPPING=1 on shutdown.

use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::Exporter;

const BIN: &str = env!("CARGO_BIN_EXE_runner-health-exporter");

#[test]
fn ready_after_bind_then_watchdog_pings_then_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let messages: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let messages = Arc::clone(&messages);
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(n) = sock.recv(&mut buf) {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    messages.lock().unwrap().push((Instant::now(), text));
                }
            }
        })
    };
    let watchdog_usec = 400_000;
    let mut e = Exporter::start(
        BIN,
        &[],
        &[
            ("NOTIFY_SOCKET", path.to_str().unwrap()),
            ("WATCHDOG_USEC", &watchdog_usec.to_string()),
        ],
    );
    let ready = testkit::wait_for(Duration::from_secs(5), || {
        messages
            .lock()
            .unwrap()
            .iter()
            .find(|(_, m)| m.contains("READY=1"))
            .cloned()
    })
    .expect("READY=1 arrives");
    // The port answers as soon as READY=1 is out.
    assert_eq!(e.get("/metrics").status, 200);
    assert!(
        ready.1.contains(&format!("MAINPID={}", e.pid())),
        "{}",
        ready.1
    );
    assert!(
        ready.1.contains("STATUS=serving on 127.0.0.1:"),
        "{}",
        ready.1
    );

    std::thread::sleep(Duration::from_millis(2000));
    let window_start = ready.0 + Duration::from_millis(500);
    let pings: Vec<Instant> = messages
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, m)| m == "WATCHDOG=1" && *t >= window_start)
        .map(|(t, _)| *t)
        .collect();
    // Half the interval: 200 ms; about 7 in the 1.5 s window.
    assert!(
        (5..=10).contains(&pings.len()),
        "{} pings: {pings:?}",
        pings.len()
    );
    let gaps: Vec<Duration> = pings.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter()
            .all(|g| *g < Duration::from_micros(watchdog_usec)),
        "a gap reached the watchdog interval: {gaps:?}"
    );

    e.signal("TERM");
    assert!(e.wait_exit(Duration::from_secs(3)).unwrap().success());
    testkit::wait_for(Duration::from_secs(2), || {
        messages
            .lock()
            .unwrap()
            .iter()
            .any(|(_, m)| m == "STOPPING=1")
            .then_some(())
    })
    .expect("STOPPING=1 on shutdown");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    reader.join().unwrap();
}

#[test]
fn no_watchdog_pings_for_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let _e = Exporter::start(
        BIN,
        &[],
        &[
            ("NOTIFY_SOCKET", path.to_str().unwrap()),
            ("WATCHDOG_USEC", "200000"),
            ("WATCHDOG_PID", "1"),
        ],
    );
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    while let Ok(n) = sock.recv(&mut buf) {
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(got.iter().any(|m| m.contains("READY=1")), "{got:?}");
    assert!(
        !got.iter().any(|m| m == "WATCHDOG=1"),
        "pinged for pid 1: {got:?}"
    );
}
