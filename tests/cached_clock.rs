//! `ManagerBuilder::cached_clock`: calls read a reading a thread refreshes.
//!
//! Time is a mock clock moved by hand; what the tests wait for is the
//! refresher thread's next round (bounded polls, no timing assertion).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use streambus_tenancy::{Error, Manager, QuotaType, Quotas};

/// The tests count the process's `streambus-clock` threads: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Polls `f` until it holds, for at most 10 s (the refresher runs every
/// millisecond; 10 s only matters on a machine that has stalled).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "not within 10 s: {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Threads of this process named `streambus-clock` (Linux: /proc).
fn clock_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task (the tests run on Linux)")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "streambus-clock")
        .count()
}

/// Drops `m` once its clock thread runs, and waits for the thread to stop,
/// so that no test counting threads sees another test's.
fn drop_and_join(m: Manager) {
    eventually("the clock thread starts", || clock_threads() == 1);
    drop(m);
    eventually("the clock thread stops", || clock_threads() == 0);
}

/// A manager on a mock clock read through a cached reading refreshed every
/// millisecond, with tenant `t` at 1,000 bytes/s.
fn cached_mock_manager() -> (Manager, std::sync::Arc<quanta::Mock>) {
    let (clock, mock) = quanta::Clock::mock();
    let m = Manager::builder()
        .clock(clock)
        .cached_clock(Duration::from_millis(1))
        .build();
    let quotas = Quotas {
        max_bytes_per_second: 1000,
        ..Quotas::unlimited()
    };
    m.create_tenant("t", "T", quotas).unwrap();
    (m, mock)
}

#[test]
fn refresh_is_validated() {
    // Default geometry: 1 s in 10 buckets of 100 ms.
    for bad in [
        Duration::ZERO,
        Duration::from_micros(99),
        Duration::from_millis(101),
    ] {
        let e = Manager::builder()
            .cached_clock(bad)
            .try_build()
            .unwrap_err();
        assert!(matches!(e, Error::InvalidConfig(_)), "{e:?}");
        assert!(e.to_string().contains("cached_clock refresh"), "{e}");
    }
    // 100 µs is the shortest refresh, one bucket the longest; with 1 s
    // buckets, 1 s is fine.
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    drop_and_join(
        Manager::builder()
            .cached_clock(Duration::from_micros(100))
            .build(),
    );
    drop_and_join(
        Manager::builder()
            .cached_clock(Duration::from_millis(100))
            .build(),
    );
    drop_and_join(
        Manager::builder()
            .window(Duration::from_secs(10))
            .cached_clock(Duration::from_secs(1))
            .build(),
    );
}

/// The windows move with the mock clock once the thread has refreshed the
/// reading: a full window refuses, and admits again a window later.
#[test]
fn calls_see_the_clock_through_the_refresher() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (m, mock) = cached_mock_manager();
    m.enforce_produce_quota("t", 1000, 1).unwrap();
    match m.enforce_produce_quota("t", 1, 1) {
        Err(Error::QuotaExceeded(e)) => assert_eq!(e.quota_type, QuotaType::BytesPerSecond),
        other => panic!("a full window must refuse: {other:?}"),
    }
    mock.increment(Duration::from_secs(1));
    eventually("the 1000 bytes leave the window", || {
        m.enforce_produce_quota("t", 1, 1).is_ok()
    });
    // Nothing was admitted on the way: the refusals counted, the byte did.
    assert_eq!(m.get_usage("t").unwrap().bytes_per_second, 1);
    drop_and_join(m);
}

/// The thread runs while anything holds the manager's clock (the manager
/// or a tracker taken from it) and stops after the last goes.
#[test]
fn the_refresher_stops_with_the_last_handle() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The other tests join their clock threads before letting go of SERIAL.
    assert_eq!(clock_threads(), 0);
    let (m, mock) = cached_mock_manager();
    // A new thread names itself once it runs.
    eventually("the clock thread starts", || clock_threads() == 1);
    let tracker = m.get_tracker("t").unwrap();
    drop(m);
    // The tracker still reads the clock: the thread keeps refreshing it, so
    // a full window still empties when the mock clock moves on.
    tracker.enforce_produce(1000, 1).unwrap();
    assert!(tracker.enforce_produce(1, 1).is_err());
    mock.increment(Duration::from_secs(1));
    eventually("the tracker sees the clock move", || {
        tracker.enforce_produce(1, 1).is_ok()
    });
    assert_eq!(clock_threads(), 1, "the tracker still needs the clock");
    drop(tracker);
    eventually("the clock thread stops", || clock_threads() == 0);
    // A manager on the clock read on every call starts no thread.
    let _m = Manager::new();
    assert_eq!(clock_threads(), 0);
}
