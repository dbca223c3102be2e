//! Bounded stress: many threads x many tenants mixing every operation
//! (enforce by id and by tracker, acquire/drop, release, quota swaps,
//! suspend/activate, delete/re-create, storage updates), checking invariants
//! while it runs and at the end. The clock is a frozen mock, so every
//! incarnation of a tenant has one window that never expires: what it admits
//! over the whole run must fit in its largest limit.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use streambus_tenancy::{Error, Manager, Permit, QuotaTracker, Quotas};

const TENANTS: usize = 16;
const THREADS: usize = 8;
const RUN: Duration = Duration::from_secs(4);

const CONN_LIMITS: [i64; 2] = [4, 2];
const BYTE_LIMITS: [i64; 2] = [200_000, 50_000];
const TOPIC_LIMIT: i64 = 3;
const PARTITION_LIMIT: i64 = 6;

fn quotas(v: usize) -> Quotas {
    Quotas {
        max_connections: CONN_LIMITS[v % 2],
        max_bytes_per_second: BYTE_LIMITS[v % 2],
        max_messages_per_second: 1_000_000,
        max_topics: TOPIC_LIMIT,
        max_partitions: PARTITION_LIMIT,
        max_storage_bytes: 1 << 30,
        ..Quotas::unlimited()
    }
}

/// What the test knows about one incarnation of a tenant.
struct Incarnation {
    tracker: Arc<QuotaTracker>,
    /// Connections held through `tracker`, counted by the test: raised after
    /// an admission and lowered before the release, so it can only
    /// over-estimate what the engine holds.
    held: AtomicI64,
    peak: AtomicI64,
    admitted_bytes: AtomicU64,
}

struct Slot {
    id: String,
    current: Mutex<Arc<Incarnation>>,
    all: Mutex<Vec<Arc<Incarnation>>>,
}

fn incarnation(m: &Manager, id: &str) -> Arc<Incarnation> {
    Arc::new(Incarnation {
        tracker: m.get_tracker(id).unwrap(),
        held: AtomicI64::new(0),
        peak: AtomicI64::new(0),
        admitted_bytes: AtomicU64::new(0),
    })
}

/// A tiny deterministic generator per thread (no shared RNG state).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn everything_at_once() {
    let (clock, _frozen) = quanta::Clock::mock();
    let m = Manager::builder().clock(clock).build();
    let slots: Vec<Slot> = (0..TENANTS)
        .map(|i| {
            let id = format!("s{i}");
            m.create_tenant(&id, "stress", quotas(0)).unwrap();
            let inc = incarnation(&m, &id);
            Slot {
                id,
                current: Mutex::new(inc.clone()),
                all: Mutex::new(vec![inc]),
            }
        })
        .collect();
    let ops = AtomicU64::new(0);
    let start = Instant::now();

    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (m, slots, ops) = (&m, &slots, &ops);
            s.spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (t as u64 + 1));
                let mut permits: Vec<Permit> = Vec::new();
                while start.elapsed() < RUN {
                    ops.fetch_add(1, Ordering::Relaxed);
                    let slot = &slots[rng.below(TENANTS as u64) as usize];
                    let inc = slot.current.lock().unwrap().clone();
                    match rng.below(100) {
                        // Produce on the cached tracker.
                        0..=29 => {
                            let b = 1 + rng.below(900);
                            match inc.tracker.enforce_produce(b, 1) {
                                Ok(()) => {
                                    let total =
                                        inc.admitted_bytes.fetch_add(b, Ordering::Relaxed) + b;
                                    assert!(
                                        total <= BYTE_LIMITS[0] as u64,
                                        "{}: {total} bytes admitted in a frozen window",
                                        slot.id
                                    );
                                }
                                Err(Error::QuotaExceeded(_) | Error::TenantNotActive { .. }) => {}
                                Err(e) => panic!("{e}"),
                            }
                        }
                        // Produce and consume by id (may hit any incarnation).
                        30..=39 => {
                            let _ = m.enforce_produce_quota(&slot.id, 10, 1);
                            let _ = m.enforce_consume_quota(&slot.id, 10, 1);
                            let _ = m.enforce_request_quota(&slot.id);
                        }
                        // A connection on the tracker, held briefly.
                        40..=54 => {
                            if inc.tracker.add_connection().is_ok() {
                                let now = inc.held.fetch_add(1, Ordering::SeqCst) + 1;
                                inc.peak.fetch_max(now, Ordering::SeqCst);
                                assert!(now <= CONN_LIMITS[0], "{}: {now} held", slot.id);
                                let seen = inc.tracker.get_usage().connections;
                                assert!(seen <= CONN_LIMITS[0] as u64, "usage saw {seen}");
                                inc.held.fetch_sub(1, Ordering::SeqCst);
                                inc.tracker.remove_connection();
                            }
                        }
                        // Permits by id, kept a while, dropped later.
                        55..=64 => {
                            if let Ok(p) = m.acquire_producer(&slot.id) {
                                permits.push(p);
                            }
                            if permits.len() > 3 || rng.below(2) == 0 {
                                permits.clear();
                            }
                        }
                        // Topics: both or neither.
                        65..=72 => {
                            let parts = 1 + rng.below(3) as u32;
                            if inc.tracker.add_topic(parts).is_ok() {
                                let u = inc.tracker.get_usage();
                                assert!(u.topics <= TOPIC_LIMIT as u64);
                                assert!(u.partitions <= PARTITION_LIMIT as u64);
                                inc.tracker.remove_topic(parts);
                            }
                        }
                        // Storage reports and checks.
                        73..=79 => {
                            let _ = m.update_storage_usage(&slot.id, rng.below(1 << 31));
                            let _ = m.enforce_storage_quota(&slot.id, rng.below(1 << 30));
                        }
                        // Quota swaps.
                        80..=87 => {
                            let _ = m.update_tenant(
                                &slot.id,
                                None,
                                Some(quotas(rng.below(2) as usize)),
                            );
                        }
                        // Suspend / activate.
                        88..=94 => {
                            if rng.below(2) == 0 {
                                let _ = m.suspend_tenant(&slot.id);
                            } else {
                                let _ = m.activate_tenant(&slot.id);
                            }
                        }
                        // Delete and re-create (serialised per slot by the
                        // test so it knows which incarnation is current; the
                        // engine still sees it race every other operation).
                        _ => {
                            let mut cur = slot.current.lock().unwrap();
                            m.delete_tenant(&slot.id).unwrap();
                            assert!(cur.tracker.enforce_request().is_err());
                            m.create_tenant(&slot.id, "stress", quotas(0)).unwrap();
                            let fresh = incarnation(m, &slot.id);
                            slot.all.lock().unwrap().push(fresh.clone());
                            *cur = fresh;
                        }
                    }
                }
                drop(permits);
            });
        }
    });

    let ops = ops.load(Ordering::Relaxed);
    let mut incarnations = 0;
    for slot in &slots {
        for inc in slot.all.lock().unwrap().iter() {
            incarnations += 1;
            assert!(inc.peak.load(Ordering::SeqCst) <= CONN_LIMITS[0]);
            let u = inc.tracker.get_usage();
            assert_eq!(
                (u.connections, u.producers, u.topics, u.partitions),
                (0, 0, 0, 0),
                "{}: counts left behind",
                slot.id
            );
            // The window holds exactly what was admitted through the
            // tracker plus the by-id calls: never more than the larger limit.
            assert!(u.bytes_per_second <= BYTE_LIMITS[0] as u64);
        }
        let u = m.get_usage(&slot.id).unwrap();
        assert_eq!((u.connections, u.producers), (0, 0));
    }
    assert!(ops > 10_000, "only {ops} operations ran");
    println!("{ops} operations over {incarnations} tenant incarnations");
}

/// Connections opened concurrently against a connection-creation rate and
/// a count, on a frozen clock (one window for the whole run): the count is
/// never exceeded while it runs, and in the end exactly the rate's window
/// limit was opened: no overshoot, and no opening lost to a count refusal
/// (those are taken back).
#[test]
fn connection_openings_never_exceed_the_rate_and_none_are_lost() {
    const RATE: i64 = 200_000;
    const MAX_HELD: i64 = 1;
    let (clock, _mock) = quanta::Clock::mock();
    let m = Manager::builder().clock(clock).build();
    let quotas = Quotas {
        max_connection_creation_rate: RATE,
        max_connections: MAX_HELD,
        ..Quotas::unlimited()
    };
    m.create_tenant("t", "T", quotas).unwrap();
    let opened = AtomicU64::new(0);
    let count_refusals = AtomicU64::new(0);
    let deadline = Instant::now() + Duration::from_secs(10);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let t = m.get_tracker("t").unwrap();
                let mut rate_refusals_in_a_row = 0;
                while rate_refusals_in_a_row < 1000 && Instant::now() < deadline {
                    match t.add_connection() {
                        Ok(()) => {
                            rate_refusals_in_a_row = 0;
                            opened.fetch_add(1, Ordering::Relaxed);
                            let held = t.get_usage().connections;
                            std::hint::spin_loop();
                            assert!(held <= MAX_HELD as u64, "{held} held");
                            t.remove_connection();
                        }
                        Err(Error::QuotaExceeded(e)) => match e.quota_type {
                            streambus_tenancy::QuotaType::ConnectionCreationRate => {
                                rate_refusals_in_a_row += 1;
                            }
                            streambus_tenancy::QuotaType::Connections => {
                                count_refusals.fetch_add(1, Ordering::Relaxed);
                            }
                            other => panic!("refused by {other}"),
                        },
                        Err(e) => panic!("{e}"),
                    }
                }
            });
        }
    });
    println!(
        "opened {}, refused by the count {}",
        opened.load(Ordering::Relaxed),
        count_refusals.load(Ordering::Relaxed)
    );
    assert_eq!(opened.load(Ordering::Relaxed), RATE as u64);
    assert_eq!(m.get_usage("t").unwrap().connections, 0);
    assert_eq!(
        m.get_usage("t").unwrap().connection_creation_rate,
        RATE as u64
    );
}
