//! Restoring held counts and storage after a broker restart
//! (`Manager::restore_usage`, `QuotaTracker::restore_usage`): accepted over
//! the limit, refusing new admissions until releases bring usage back
//! below it, never underflowing, and consistent under concurrent acquires.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use streambus_tenancy::{Error, HeldUsage, Manager, Permit, QuotaType, Quotas, Usage};

fn limits() -> Quotas {
    Quotas {
        max_connections: 2,
        max_producers: 2,
        max_consumers: 2,
        max_consumer_groups: 2,
        max_topics: 2,
        max_partitions: 8,
        max_storage_bytes: 1000,
        ..Quotas::unlimited()
    }
}

fn held(u: &Usage) -> HeldUsage {
    HeldUsage::from(u)
}

/// One held-count quota, driven by id.
struct Kind {
    quota: QuotaType,
    acquire: fn(&Manager, &str) -> Result<(), Error>,
    release: fn(&Manager, &str),
    count: fn(&Usage) -> u64,
}

const KINDS: [Kind; 4] = [
    Kind {
        quota: QuotaType::Connections,
        acquire: Manager::enforce_connection_quota,
        release: Manager::release_connection,
        count: |u| u.connections,
    },
    Kind {
        quota: QuotaType::Producers,
        acquire: Manager::enforce_producer_quota,
        release: Manager::release_producer,
        count: |u| u.producers,
    },
    Kind {
        quota: QuotaType::Consumers,
        acquire: Manager::enforce_consumer_quota,
        release: Manager::release_consumer,
        count: |u| u.consumers,
    },
    Kind {
        quota: QuotaType::ConsumerGroups,
        acquire: Manager::enforce_consumer_group_quota,
        release: Manager::release_consumer_group,
        count: |u| u.consumer_groups,
    },
];

#[test]
fn over_limit_restore_is_accepted_and_refuses_until_released_below() {
    let m = Manager::new();
    m.create_tenant("t", "T", limits()).unwrap();
    let restored = HeldUsage {
        connections: 5,
        producers: 5,
        consumers: 5,
        consumer_groups: 5,
        topics: 5,
        partitions: 20,
        storage_bytes: 5000,
    };
    m.restore_usage("t", &restored).unwrap();
    let u = m.get_usage("t").unwrap();
    assert_eq!(held(&u), restored);
    assert_eq!(m.get_utilization("t").unwrap()["topics"], 250.0);
    // Rates are untouched.
    assert_eq!(u.bytes_per_second + u.requests_per_second, 0);

    for k in &KINDS {
        let refused = (k.acquire)(&m, "t").unwrap_err();
        let e = refused.as_quota_error().expect("a quota refusal");
        assert_eq!((e.quota_type, e.current, e.limit), (k.quota, 5, 2));
        // 5 -> 2 held: at the limit, still refused.
        for _ in 0..3 {
            (k.release)(&m, "t");
        }
        assert!((k.acquire)(&m, "t").is_err(), "{:?} at its limit", k.quota);
        (k.release)(&m, "t");
        (k.acquire)(&m, "t").unwrap();
        assert_eq!((k.count)(&m.get_usage("t").unwrap()), 2);
    }

    // Topics and partitions: refused while either is over.
    let e = m.enforce_topic_quota("t", 1).unwrap_err();
    assert_eq!(e.as_quota_error().unwrap().quota_type, QuotaType::Topics);
    for _ in 0..4 {
        m.release_topic("t", 4);
    }
    // 1 topic, 4 partitions: a topic of 5 partitions would pass 8.
    let e = m.enforce_topic_quota("t", 5).unwrap_err();
    assert_eq!(
        e.as_quota_error().unwrap().quota_type,
        QuotaType::Partitions
    );
    m.enforce_topic_quota("t", 4).unwrap();
    let u = m.get_usage("t").unwrap();
    assert_eq!((u.topics, u.partitions), (2, 8));

    // Storage: checked against the restored figure.
    let e = m.enforce_storage_quota("t", 0).unwrap_err();
    assert_eq!(e.as_quota_error().unwrap().current, 5000);
    m.update_storage_usage("t", 900).unwrap();
    m.enforce_storage_quota("t", 100).unwrap();
}

#[test]
fn restore_sets_every_field_and_lowers_too() {
    let m = Manager::new();
    m.create_tenant("t", "T", Quotas::unlimited()).unwrap();
    let permits: Vec<Permit> = (0..4).map(|_| m.acquire_connection("t").unwrap()).collect();
    m.enforce_topic_quota("t", 3).unwrap();
    m.update_storage_usage("t", 77).unwrap();
    // Every field is set, zeros included.
    m.restore_usage(
        "t",
        &HeldUsage {
            connections: 1,
            ..HeldUsage::default()
        },
    )
    .unwrap();
    assert_eq!(
        held(&m.get_usage("t").unwrap()),
        HeldUsage {
            connections: 1,
            ..HeldUsage::default()
        }
    );
    // The four permits release into a count of 1: it stops at 0.
    drop(permits);
    assert_eq!(m.get_usage("t").unwrap().connections, 0);
}

#[test]
fn releases_never_underflow() {
    let m = Manager::new();
    m.create_tenant("t", "T", limits()).unwrap();
    m.restore_usage(
        "t",
        &HeldUsage {
            connections: 1,
            topics: 1,
            partitions: 3,
            ..HeldUsage::default()
        },
    )
    .unwrap();
    for _ in 0..3 {
        m.release_connection("t");
        m.release_producer("t");
        m.release_topic("t", 10);
    }
    assert_eq!(held(&m.get_usage("t").unwrap()), HeldUsage::default());
    // The largest count restores and saturates instead of wrapping.
    let max = HeldUsage {
        partitions: u64::MAX,
        ..HeldUsage::default()
    };
    m.restore_usage("t", &max).unwrap();
    let e = m.enforce_topic_quota("t", 1).unwrap_err();
    assert_eq!(
        (
            e.as_quota_error().unwrap().quota_type,
            e.as_quota_error().unwrap().current
        ),
        (QuotaType::Partitions, i64::MAX),
        "a count beyond i64 reports i64::MAX"
    );
    m.release_topic("t", u32::MAX);
    assert_eq!(
        m.get_usage("t").unwrap().partitions,
        u64::MAX - u64::from(u32::MAX)
    );
}

#[test]
fn unknown_tenant_is_an_error() {
    let m = Manager::new();
    assert_eq!(
        m.restore_usage("nope", &HeldUsage::default()),
        Err(Error::TenantNotFound("nope".into()))
    );
    m.create_tenant("t", "T", limits()).unwrap();
    m.delete_tenant("t").unwrap();
    assert_eq!(
        m.restore_usage("t", &HeldUsage::default()),
        Err(Error::TenantNotFound("t".into()))
    );
}

#[test]
fn works_while_suspended_and_on_a_held_tracker() {
    let m = Manager::new();
    m.create_tenant("t", "T", limits()).unwrap();
    m.suspend_tenant("t").unwrap();
    let h = HeldUsage {
        producers: 3,
        storage_bytes: 10,
        ..HeldUsage::default()
    };
    m.restore_usage("t", &h).unwrap();
    assert_eq!(held(&m.get_usage("t").unwrap()), h);
    m.activate_tenant("t").unwrap();
    assert!(m.enforce_producer_quota("t").is_err());

    // The tracker's own method, and a handle that outlived its tenant: it
    // never touches the tenant re-created with the same id.
    let tracker = m.get_tracker("t").unwrap();
    tracker.restore_usage(&HeldUsage::default());
    assert_eq!(held(&m.get_usage("t").unwrap()), HeldUsage::default());
    m.delete_tenant("t").unwrap();
    m.create_tenant("t", "T again", limits()).unwrap();
    tracker.restore_usage(&h);
    assert_eq!(held(&tracker.get_usage()), h);
    assert_eq!(held(&m.get_usage("t").unwrap()), HeldUsage::default());
}

/// Workers acquire and release connections (as permits) and producers (by
/// id) while a restorer sets both counts again and again, some values over
/// the limit. Checked all along: no count is ever above the largest of the
/// limit and the values restored (an underflow would wrap to near
/// `u64::MAX`). At the end, with every permit and producer given back, each
/// count is what the last restore set less the units held at that moment
/// (which were released after it), stopping at 0: no release got lost or
/// counted twice.
#[test]
fn restores_racing_acquires_and_releases() {
    const WORKERS: usize = 3;
    const MAX_HELD: usize = 4; // per worker and per count
    const LIMIT: i64 = 8;
    const RESTORES: [u64; 5] = [0, 3, 20, LIMIT as u64, 1];
    const LAST: u64 = 40;
    const RUN: Duration = Duration::from_millis(1500);

    let m = Arc::new(Manager::new());
    m.create_tenant(
        "t",
        "T",
        Quotas {
            max_connections: LIMIT,
            max_producers: LIMIT,
            ..Quotas::unlimited()
        },
    )
    .unwrap();
    let stop_workers = Arc::new(AtomicBool::new(false));
    let stop_restorer = Arc::new(AtomicBool::new(false));
    let admitted = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(WORKERS + 2));
    // An acquire never takes a count past the limit; only a restore does.
    let ceiling = *RESTORES
        .iter()
        .chain([&LAST, &(LIMIT as u64)])
        .max()
        .unwrap();

    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (m, stop, admitted, start) = (
                Arc::clone(&m),
                Arc::clone(&stop_workers),
                Arc::clone(&admitted),
                Arc::clone(&start),
            );
            std::thread::spawn(move || {
                let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (w as u64 + 1);
                let mut next = move || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                let mut permits: Vec<Permit> = Vec::new();
                let mut producers = 0usize;
                start.wait();
                while !stop.load(Ordering::Relaxed) {
                    match next() % 4 {
                        0 if permits.len() < MAX_HELD => {
                            if let Ok(p) = m.acquire_connection("t") {
                                permits.push(p);
                                admitted.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        1 => drop(permits.pop()),
                        2 if producers < MAX_HELD && m.enforce_producer_quota("t").is_ok() => {
                            producers += 1;
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                        3 if producers > 0 => {
                            m.release_producer("t");
                            producers -= 1;
                        }
                        _ => {}
                    }
                }
                drop(permits);
                for _ in 0..producers {
                    m.release_producer("t");
                }
            })
        })
        .collect();

    let restorer = {
        let (m, stop, start) = (
            Arc::clone(&m),
            Arc::clone(&stop_restorer),
            Arc::clone(&start),
        );
        std::thread::spawn(move || {
            start.wait();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let v = RESTORES[i % RESTORES.len()];
                m.restore_usage(
                    "t",
                    &HeldUsage {
                        connections: v,
                        producers: v,
                        ..HeldUsage::default()
                    },
                )
                .unwrap();
                i += 1;
                std::thread::yield_now();
            }
            // The last restore, over the limit, with the workers still busy.
            m.restore_usage(
                "t",
                &HeldUsage {
                    connections: LAST,
                    producers: LAST,
                    ..HeldUsage::default()
                },
            )
            .unwrap();
            i + 1
        })
    };

    start.wait();
    let deadline = Instant::now() + RUN;
    let mut readings = 0u64;
    while Instant::now() < deadline {
        let u = m.get_usage("t").unwrap();
        assert!(
            u.connections <= ceiling && u.producers <= ceiling,
            "a count went past every limit and restore: {u:?}"
        );
        readings += 1;
    }
    stop_restorer.store(true, Ordering::Relaxed);
    let restores = restorer.join().unwrap();
    // The workers run on after the last restore for a while, then stop.
    let deadline = Instant::now() + RUN / 10;
    while Instant::now() < deadline {
        let u = m.get_usage("t").unwrap();
        assert!(u.connections <= LAST && u.producers <= LAST, "{u:?}");
    }
    stop_workers.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }

    let u = m.get_usage("t").unwrap();
    let held_at_last = (WORKERS * MAX_HELD) as u64;
    for (name, v) in [("connections", u.connections), ("producers", u.producers)] {
        assert!(
            (LAST - held_at_last..=LAST).contains(&v),
            "{name}: {v} after the last restore of {LAST} with at most {held_at_last} held"
        );
    }
    assert!(
        restores > 100 && readings > 100,
        "{restores} restores, {readings} readings"
    );
    assert!(
        admitted.load(Ordering::Relaxed) > 1000,
        "the workers were admitted"
    );
}
