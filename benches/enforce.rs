//! Wall-clock benches: our engine beside the seed's design and governor, in
//! one run, one `BenchmarkId` per implementation.
//!
//! Groups:
//!
//! - `enforce_hot`: `enforce_produce_quota` by id on one tenant, one thread;
//! - `enforce_spread`: the same over 10k and 100k tenants, ids precomputed and
//!   visited in a shuffled order;
//! - `enforce_cold`: 100k tenants, every call in a new bucket for its tenant
//!   (ours on a mock clock moved a bucket per pass; `ours-3-buckets` three
//!   buckets per pass, a tenant touched every few buckets);
//! - `enforce_zipf`: a Zipf(1.0) mix over 100k tenants, real clock;
//! - `enforce_tracker`: through the cached per-tenant handle;
//! - `refusal`: a tenant over its bytes quota (our engine on a frozen mock
//!   clock, so the window never frees), beside an admission on the same mock
//!   clock;
//! - `connection`: `enforce_connection_quota` + `release_connection`, and
//!   `acquire_connection` + drop;
//! - `contention`: one thread, two threads on one tenant, two threads on two
//!   tenants, timed per operation per thread (`iter_custom`, scoped threads);
//! - `throttle`: throttle mode (`throttle_produce`: recorded, answered
//!   with a delay) beside `enforce_produce` on the same hot tenant, by id and
//!   via the tracker, within its quotas (the delay is zero), and on a tenant
//!   over its bytes quota (every call delayed) on a frozen mock clock;
//! - `floor`: what the hardware and the building blocks cost on this machine
//!   (atomics, clock reads, hashing, a map lookup), for the "where the time
//!   goes" section of `BENCHMARKS.md`.
//!
//! Every throughput bench offers 64-byte, one-message produces, and every
//! implementation admits all of them (checked before measuring); see
//! `common/mod.rs` for the quotas that make that so.
//!
//! Run: `cargo bench --bench enforce` (one group: `cargo bench --bench enforce -- refusal`).

mod common;
mod seed_port;

use std::hash::BuildHasher;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use streambus_tenancy::Quotas;

use common::*;

const BYTES_I64: i64 = MSG_BYTES as i64;

/// Runs `op(thread)` `iters` times on each of `threads` threads started
/// together; returns the slowest thread's time, so criterion reports
/// nanoseconds per operation per thread.
fn run_threads<F>(iters: u64, threads: usize, op: F) -> Duration
where
    F: Fn(usize) + Sync,
{
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, op) = (&barrier, &op);
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters {
                        op(t);
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap()
    })
}

/// One value alone on its cache line (and the adjacent-line prefetcher's).
#[repr(align(128))]
struct Padded(AtomicU64);

fn enforce_hot(c: &mut Criterion) {
    let id = tenant_id(0);
    let ours = common::ours(1, roomy_quotas());
    let ours_unlimited = common::ours(1, Quotas::unlimited());
    let seed = common::seed(1, roomy_quotas());
    let gov = governor_keyed(1, governor_roomy_quota());
    let ours_cached = common::ours_cached_clock(1, roomy_quotas());
    let gov_upkeep = common::governor_keyed_upkeep(1, governor_roomy_quota());
    assert_admits("ours", 100_000, |_| {
        ours.enforce_produce_quota(&id, MSG_BYTES, 1).is_ok()
    });
    assert_admits("ours-cached-clock", 100_000, |_| {
        ours_cached.enforce_produce_quota(&id, MSG_BYTES, 1).is_ok()
    });
    assert_admits("governor-upkeep-clock", 100_000, |_| {
        matches!(gov_upkeep.check_key_n(&id, gov_n()), Ok(Ok(_)))
    });
    assert_admits("seed", 100_000, |_| {
        seed.enforce_produce_quota(&id, BYTES_I64, 1).is_ok()
    });
    assert_admits("governor", 100_000, |_| {
        matches!(gov.check_key_n(&id, gov_n()), Ok(Ok(_)))
    });

    let mut g = c.benchmark_group("enforce_hot");
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::new("ours", "hot"), |b| {
        b.iter(|| call::ours_produce(&ours, black_box(&id)))
    });
    g.bench_function(BenchmarkId::new("ours-unlimited", "hot"), |b| {
        b.iter(|| call::ours_produce(&ours_unlimited, black_box(&id)))
    });
    g.bench_function(BenchmarkId::new("seed", "hot"), |b| {
        b.iter(|| call::seed_produce(&seed, black_box(&id)))
    });
    g.bench_function(BenchmarkId::new("governor", "hot"), |b| {
        b.iter(|| call::governor_keyed(&gov, black_box(&id)))
    });
    g.bench_function(BenchmarkId::new("ours-cached-clock", "hot"), |b| {
        b.iter(|| call::ours_produce(&ours_cached, black_box(&id)))
    });
    g.bench_function(BenchmarkId::new("governor-upkeep-clock", "hot"), |b| {
        b.iter(|| call::governor_keyed_upkeep(&gov_upkeep, black_box(&id)))
    });
    g.finish();
    // Still admitting after the run: the comparison measured admissions.
    assert!(matches!(gov.check_key_n(&id, gov_n()), Ok(Ok(_))));
    assert!(ours.enforce_produce_quota(&id, MSG_BYTES, 1).is_ok());
}

fn enforce_spread(c: &mut Criterion) {
    let mut g = c.benchmark_group("enforce_spread");
    g.throughput(Throughput::Elements(1));
    for n in [10_000usize, 100_000] {
        let ids = shuffled_ids(n);
        let ours = common::ours(n, roomy_quotas());
        let seed = common::seed(n, roomy_quotas());
        let gov = governor_keyed(n, governor_roomy_quota());
        assert_admits("ours", n, |i| {
            ours.enforce_produce_quota(&ids[i], MSG_BYTES, 1).is_ok()
        });
        assert_admits("seed", n, |i| {
            seed.enforce_produce_quota(&ids[i], BYTES_I64, 1).is_ok()
        });
        assert_admits("governor", n, |i| {
            matches!(gov.check_key_n(&ids[i], gov_n()), Ok(Ok(_)))
        });

        g.bench_function(BenchmarkId::new("ours", n), |b| {
            let mut ids = Cycle::new(&ids);
            b.iter(|| call::ours_produce(&ours, ids.next()))
        });
        // The same on a frozen mock clock with every tenant warm: no window
        // ever rotates, so the difference to `ours` is the rotation work
        // (each tenant is revisited every n calls, about one 100 ms bucket at
        // 100k tenants).
        let (frozen, _mock) = ours_mock(n, roomy_quotas());
        assert_admits("ours-frozen-clock", n, |i| {
            frozen.enforce_produce_quota(&ids[i], MSG_BYTES, 1).is_ok()
        });
        g.bench_function(BenchmarkId::new("ours-frozen-clock", n), |b| {
            let mut ids = Cycle::new(&ids);
            b.iter(|| call::ours_produce(&frozen, ids.next()))
        });
        drop(frozen);
        g.bench_function(BenchmarkId::new("seed", n), |b| {
            let mut ids = Cycle::new(&ids);
            b.iter(|| call::seed_produce(&seed, ids.next()))
        });
        g.bench_function(BenchmarkId::new("governor", n), |b| {
            let mut ids = Cycle::new(&ids);
            b.iter(|| call::governor_keyed(&gov, ids.next()))
        });
    }
    g.finish();
}

/// Tenants in the cold case: 100k, each visited once per pass.
const COLD_TENANTS: usize = 100_000;

/// 100k tenants, every call in a new bucket for its tenant: our engine on a
/// mock clock moved one bucket forward after every pass over the tenants,
/// so each call finds its tenant's windows one bucket behind (deterministic,
/// whatever the machine's speed). governor has no buckets (its cost does not
/// depend on how long ago a key was touched) and the seed port reads
/// `Instant::now()`: both run the same pass on the real clock, where at
/// their speed a pass takes longer than a bucket, so the seed port rotates
/// on every call too.
fn enforce_cold(c: &mut Criterion) {
    let n = COLD_TENANTS;
    let ids = shuffled_ids(n);
    let (ours, mock) = ours_mock(n, roomy_quotas());
    let seed = common::seed(n, roomy_quotas());
    let gov = governor_keyed(n, governor_roomy_quota());
    assert_admits("ours", n, |i| {
        ours.enforce_produce_quota(&ids[i], MSG_BYTES, 1).is_ok()
    });
    assert_admits("seed", n, |i| {
        seed.enforce_produce_quota(&ids[i], BYTES_I64, 1).is_ok()
    });
    assert_admits("governor", n, |i| {
        matches!(gov.check_key_n(&ids[i], gov_n()), Ok(Ok(_)))
    });
    let bucket = Duration::from_millis(100);
    let mut g = c.benchmark_group("enforce_cold");
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::new("ours", n), |b| {
        let mut next = 0;
        b.iter(|| {
            if next == 0 {
                mock.increment(bucket);
            }
            let r = call::ours_produce(&ours, &ids[next]);
            next += 1;
            if next == ids.len() {
                next = 0;
            }
            r
        })
    });
    // The same tenants touched every three buckets: each call's windows are
    // three ticks behind (two skipped ticks leave the window with the call's).
    g.bench_function(BenchmarkId::new("ours-3-buckets", n), |b| {
        let mut next = 0;
        b.iter(|| {
            if next == 0 {
                mock.increment(3 * bucket);
            }
            let r = call::ours_produce(&ours, &ids[next]);
            next += 1;
            if next == ids.len() {
                next = 0;
            }
            r
        })
    });
    g.bench_function(BenchmarkId::new("seed", n), |b| {
        let mut ids = Cycle::new(&ids);
        b.iter(|| call::seed_produce(&seed, ids.next()))
    });
    g.bench_function(BenchmarkId::new("governor", n), |b| {
        let mut ids = Cycle::new(&ids);
        b.iter(|| call::governor_keyed(&gov, ids.next()))
    });
    g.finish();
    // Every call was admitted (the quotas are roomy), and ours rotated: the
    // windows now hold one pass's worth at most.
    assert!(ours.enforce_produce_quota(&ids[0], MSG_BYTES, 1).is_ok());
}

/// A Zipf(1.0) mix over 100k tenants on the real clock: a precomputed
/// sequence of 1M ids, the few popular tenants hot in cache and within
/// their bucket, the long tail cold and behind.
fn enforce_zipf(c: &mut Criterion) {
    let n = COLD_TENANTS;
    let seq = zipf_ids(n, 1_000_000);
    let ours = common::ours(n, roomy_quotas());
    let seed = common::seed(n, roomy_quotas());
    let gov = governor_keyed(n, governor_roomy_quota());
    assert_admits("ours", seq.len(), |i| {
        ours.enforce_produce_quota(&seq[i], MSG_BYTES, 1).is_ok()
    });
    assert_admits("seed", seq.len(), |i| {
        seed.enforce_produce_quota(&seq[i], BYTES_I64, 1).is_ok()
    });
    assert_admits("governor", seq.len(), |i| {
        matches!(gov.check_key_n(&seq[i], gov_n()), Ok(Ok(_)))
    });
    let mut g = c.benchmark_group("enforce_zipf");
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::new("ours", n), |b| {
        let mut ids = Cycle::new(&seq);
        b.iter(|| call::ours_produce(&ours, ids.next()))
    });
    g.bench_function(BenchmarkId::new("seed", n), |b| {
        let mut ids = Cycle::new(&seq);
        b.iter(|| call::seed_produce(&seed, ids.next()))
    });
    g.bench_function(BenchmarkId::new("governor", n), |b| {
        let mut ids = Cycle::new(&seq);
        b.iter(|| call::governor_keyed(&gov, ids.next()))
    });
    g.finish();
}

fn enforce_tracker(c: &mut Criterion) {
    let id = tenant_id(0);
    let ours = common::ours(1, roomy_quotas());
    let tracker = ours.get_tracker(&id).unwrap();
    let ours_unlimited = common::ours(1, Quotas::unlimited());
    let tracker_unlimited = ours_unlimited.get_tracker(&id).unwrap();
    let seed = common::seed(1, roomy_quotas());
    let seed_tracker = seed.get_tracker(&id).unwrap();
    let gov = governor_direct(governor_roomy_quota());
    let ours_cached = common::ours_cached_clock(1, roomy_quotas());
    let tracker_cached = ours_cached.get_tracker(&id).unwrap();
    let gov_upkeep = common::governor_direct_upkeep(governor_roomy_quota());
    assert_admits("ours", 100_000, |_| {
        tracker.enforce_produce(MSG_BYTES, 1).is_ok()
    });
    assert_admits("ours-cached-clock", 100_000, |_| {
        tracker_cached.enforce_produce(MSG_BYTES, 1).is_ok()
    });
    assert_admits("governor-upkeep-clock", 100_000, |_| {
        matches!(gov_upkeep.check_n(gov_n()), Ok(Ok(_)))
    });
    assert_admits("seed", 100_000, |_| {
        seed_tracker.enforce_produce(BYTES_I64, 1).is_ok()
    });
    assert_admits("governor", 100_000, |_| {
        matches!(gov.check_n(gov_n()), Ok(Ok(_)))
    });

    let mut g = c.benchmark_group("enforce_tracker");
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::new("ours", "cached"), |b| {
        b.iter(|| call::ours_tracker_produce(black_box(&tracker)))
    });
    g.bench_function(BenchmarkId::new("ours-unlimited", "cached"), |b| {
        b.iter(|| call::ours_tracker_produce(black_box(&tracker_unlimited)))
    });
    g.bench_function(BenchmarkId::new("seed", "cached"), |b| {
        b.iter(|| call::seed_tracker_produce(black_box(&seed_tracker)))
    });
    g.bench_function(BenchmarkId::new("governor-direct", "cached"), |b| {
        b.iter(|| call::governor_direct(black_box(&gov)))
    });
    g.bench_function(BenchmarkId::new("ours-cached-clock", "cached"), |b| {
        b.iter(|| call::ours_tracker_produce(black_box(&tracker_cached)))
    });
    g.bench_function(
        BenchmarkId::new("governor-direct-upkeep-clock", "cached"),
        |b| b.iter(|| call::governor_direct_upkeep(black_box(&gov_upkeep))),
    );
    g.finish();
    assert!(matches!(gov.check_n(gov_n()), Ok(Ok(_))));
}

fn throttle(c: &mut Criterion) {
    let id = tenant_id(0);
    let ours = common::ours(1, roomy_quotas());
    let tracker = ours.get_tracker(&id).unwrap();
    assert_admits("ours", 100_000, |_| {
        tracker.enforce_produce(MSG_BYTES, 1).is_ok()
            && ours.throttle_produce_quota(&id, MSG_BYTES, 1) == Ok(Duration::ZERO)
    });
    // Over its quota on a frozen clock: every call is delayed.
    let (over, _mock) = ours_mock(1, tiny_bytes_quotas());
    let over_tracker = over.get_tracker(&id).unwrap();
    assert!(over_tracker.throttle_produce(10_000, 1).unwrap() > Duration::ZERO);

    let mut g = c.benchmark_group("throttle");
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::new("enforce_produce", "by-id"), |b| {
        b.iter(|| call::ours_produce(&ours, black_box(&id)))
    });
    g.bench_function(BenchmarkId::new("throttle_produce", "by-id"), |b| {
        b.iter(|| call::ours_throttle(&ours, black_box(&id)))
    });
    g.bench_function(BenchmarkId::new("enforce_produce", "tracker"), |b| {
        b.iter(|| call::ours_tracker_produce(black_box(&tracker)))
    });
    g.bench_function(BenchmarkId::new("throttle_produce", "tracker"), |b| {
        b.iter(|| call::ours_tracker_throttle(black_box(&tracker)))
    });
    g.bench_function(
        BenchmarkId::new("throttle_produce", "tracker-delayed"),
        |b| b.iter(|| call::ours_tracker_throttle(black_box(&over_tracker))),
    );
    g.finish();
}

fn refusal(c: &mut Criterion) {
    let id = tenant_id(0);
    // Ours: 1,000 bytes/s, exhausted, on a clock that never moves.
    let (ours, _mock) = ours_mock(1, tiny_bytes_quotas());
    ours.enforce_produce_quota(&id, 1_000, 1).unwrap();
    let tracker = ours.get_tracker(&id).unwrap();
    // The admission path on the same frozen mock clock, for a like-for-like
    // "no slower than admission" comparison.
    let (ours_admit, _mock_admit) = ours_mock(1, roomy_quotas());
    // Seed: 1,000 bytes/s exhausted on the real clock (it has no other); the
    // window frees once a second and admits ~15 calls, out of millions.
    let seed = common::seed(1, tiny_bytes_quotas());
    seed.enforce_produce_quota(&id, 1_000, 1).unwrap();
    // governor: 1,000 bytes/s with a burst of 1,000, exhausted; it
    // replenishes 64 bytes every 64 ms.
    let gov = governor_keyed(0, governor_tiny_quota());
    let _ = gov.check_key_n(&id, std::num::NonZeroU32::new(1_000).unwrap());
    assert!(ours.enforce_produce_quota(&id, MSG_BYTES, 1).is_err());
    assert!(seed.enforce_produce_quota(&id, BYTES_I64, 1).is_err());
    assert!(matches!(gov.check_key_n(&id, gov_n()), Ok(Err(_))));

    let mut g = c.benchmark_group("refusal");
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::new("ours", "refuse"), |b| {
        b.iter(|| call::ours_produce(&ours, black_box(&id)))
    });
    g.bench_function(BenchmarkId::new("ours", "admit-mock-clock"), |b| {
        b.iter(|| call::ours_produce(&ours_admit, black_box(&id)))
    });
    g.bench_function(BenchmarkId::new("ours-tracker", "refuse"), |b| {
        b.iter(|| call::ours_tracker_produce(black_box(&tracker)))
    });
    g.bench_function(BenchmarkId::new("seed", "refuse"), |b| {
        b.iter(|| call::seed_produce(&seed, black_box(&id)))
    });
    g.bench_function(BenchmarkId::new("governor", "refuse"), |b| {
        b.iter(|| call::governor_keyed(&gov, black_box(&id)))
    });
    g.finish();
    assert!(ours.enforce_produce_quota(&id, MSG_BYTES, 1).is_err());
}

fn connection(c: &mut Criterion) {
    let id = tenant_id(0);
    let ours = common::ours(1, roomy_quotas());
    let seed = common::seed(1, roomy_quotas());

    let mut g = c.benchmark_group("connection");
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::new("ours", "enforce+release"), |b| {
        b.iter(|| call::ours_connection_pair(&ours, black_box(&id)))
    });
    g.bench_function(BenchmarkId::new("ours", "acquire+drop"), |b| {
        b.iter(|| call::ours_permit(&ours, black_box(&id)))
    });
    g.bench_function(BenchmarkId::new("seed", "enforce+release"), |b| {
        b.iter(|| call::seed_connection_pair(&seed, black_box(&id)))
    });
    g.finish();
    assert_eq!(ours.get_usage(&id).unwrap().connections, 0);
}

fn contention(c: &mut Criterion) {
    let ids = [tenant_id(0), tenant_id(1)];
    let ours = common::ours(2, roomy_quotas());
    let seed = common::seed(2, roomy_quotas());
    let gov = governor_keyed(2, governor_roomy_quota());

    let mut g = c.benchmark_group("contention");
    g.throughput(Throughput::Elements(1));
    // (label, threads, tenant of thread t)
    type Case = (&'static str, usize, fn(usize) -> usize);
    let cases: [Case; 3] = [
        ("1-thread", 1, |_| 0),
        ("2-threads-one-tenant", 2, |_| 0),
        ("2-threads-two-tenants", 2, |t| t),
    ];
    for (label, threads, tenant) in cases {
        g.bench_function(BenchmarkId::new("ours", label), |b| {
            b.iter_custom(|iters| {
                run_threads(iters, threads, |t| {
                    let _ = black_box(call::ours_produce(&ours, &ids[tenant(t)]));
                })
            })
        });
        g.bench_function(BenchmarkId::new("seed", label), |b| {
            b.iter_custom(|iters| {
                run_threads(iters, threads, |t| {
                    let _ = black_box(call::seed_produce(&seed, &ids[tenant(t)]));
                })
            })
        });
        g.bench_function(BenchmarkId::new("governor", label), |b| {
            b.iter_custom(|iters| {
                run_threads(iters, threads, |t| {
                    let _ = black_box(call::governor_keyed(&gov, &ids[tenant(t)]));
                })
            })
        });
    }
    g.finish();
    for id in &ids {
        assert!(ours.enforce_produce_quota(id, MSG_BYTES, 1).is_ok());
        assert!(matches!(gov.check_key_n(id, gov_n()), Ok(Ok(_))));
    }
}

fn floor(c: &mut Criterion) {
    let mut g = c.benchmark_group("floor");
    g.throughput(Throughput::Elements(1));

    let a = AtomicU64::new(0);
    g.bench_function(BenchmarkId::new("atomic", "fetch_add"), |b| {
        b.iter(|| black_box(&a).fetch_add(1, Ordering::Relaxed))
    });
    g.bench_function(
        BenchmarkId::new("atomic", "fetch_add-same-line-2-threads"),
        |b| {
            b.iter_custom(|iters| {
                run_threads(iters, 2, |_| {
                    black_box(&a).fetch_add(1, Ordering::Relaxed);
                })
            })
        },
    );
    // The control for every two-thread figure: two threads on two different
    // cache lines share nothing, so this shows how much parallelism the
    // machine gave the run (equal to `fetch_add` if both threads really ran at
    // once, about double if they were time-sliced onto one core).
    let own = [Padded(AtomicU64::new(0)), Padded(AtomicU64::new(0))];
    g.bench_function(
        BenchmarkId::new("atomic", "fetch_add-own-line-2-threads"),
        |b| {
            b.iter_custom(|iters| {
                run_threads(iters, 2, |t| {
                    black_box(&own[t].0).fetch_add(1, Ordering::Relaxed);
                })
            })
        },
    );
    let cas = AtomicU64::new(0);
    g.bench_function(BenchmarkId::new("atomic", "load+compare_exchange"), |b| {
        b.iter(|| {
            let cur = black_box(&cas).load(Ordering::Acquire);
            cas.compare_exchange(cur, cur + 1, Ordering::AcqRel, Ordering::Acquire)
        })
    });

    let clock = quanta::Clock::new();
    g.bench_function(BenchmarkId::new("clock", "quanta-now"), |b| {
        b.iter(|| black_box(&clock).now())
    });
    g.bench_function(BenchmarkId::new("clock", "quanta-raw"), |b| {
        b.iter(|| black_box(&clock).raw())
    });
    let origin = clock.raw();
    g.bench_function(
        BenchmarkId::new("clock", "quanta-raw+delta_as_nanos"),
        |b| {
            // What the engine's TickClock::now does, less the division.
            b.iter(|| clock.delta_as_nanos(origin, black_box(&clock).raw()))
        },
    );
    {
        // `recent()` is only fresh while an upkeep thread refreshes it.
        let _upkeep = quanta::Upkeep::new(Duration::from_millis(1)).start().ok();
        g.bench_function(BenchmarkId::new("clock", "quanta-recent"), |b| {
            b.iter(|| black_box(&clock).recent())
        });
    }
    g.bench_function(BenchmarkId::new("clock", "Instant::now"), |b| {
        b.iter(Instant::now)
    });
    let (mock_clock, _mock) = quanta::Clock::mock();
    g.bench_function(BenchmarkId::new("clock", "quanta-mock-raw"), |b| {
        b.iter(|| black_box(&mock_clock).raw())
    });

    let id = tenant_id(12_345);
    assert_eq!(id.len(), 15);
    let fold = foldhash::fast::RandomState::default();
    let sip = std::collections::hash_map::RandomState::new();
    g.bench_function(BenchmarkId::new("hash-15B-id", "foldhash"), |b| {
        b.iter(|| fold.hash_one(black_box(id.as_str())))
    });
    g.bench_function(BenchmarkId::new("hash-15B-id", "siphash"), |b| {
        b.iter(|| sip.hash_one(black_box(id.as_str())))
    });

    let quotas = arc_swap::ArcSwap::from_pointee(Quotas::default());
    g.bench_function(BenchmarkId::new("arc-swap", "load"), |b| {
        b.iter(|| black_box(&quotas).load().max_bytes_per_second)
    });

    let keys = shuffled_ids(100_000);
    let papaya_fold: papaya::HashMap<Arc<str>, u64, foldhash::fast::RandomState> =
        papaya::HashMap::builder()
            .hasher(foldhash::fast::RandomState::default())
            .build();
    let papaya_sip: papaya::HashMap<Arc<str>, u64> = papaya::HashMap::new();
    let mut std_sip = std::collections::HashMap::<Arc<str>, u64>::new();
    for (i, k) in keys.iter().enumerate() {
        papaya_fold.pin().insert(Arc::from(k.as_str()), i as u64);
        papaya_sip.pin().insert(Arc::from(k.as_str()), i as u64);
        std_sip.insert(Arc::from(k.as_str()), i as u64);
    }
    g.bench_function(BenchmarkId::new("lookup-100k", "papaya-foldhash"), |b| {
        let mut keys = Cycle::new(&keys);
        b.iter(|| {
            let guard = papaya_fold.guard();
            papaya_fold.get(keys.next().as_str(), &guard).copied()
        })
    });
    g.bench_function(BenchmarkId::new("lookup-100k", "papaya-siphash"), |b| {
        let mut keys = Cycle::new(&keys);
        b.iter(|| {
            let guard = papaya_sip.guard();
            papaya_sip.get(keys.next().as_str(), &guard).copied()
        })
    });
    g.bench_function(
        BenchmarkId::new("lookup-100k", "std-hashmap-siphash"),
        |b| {
            let mut keys = Cycle::new(&keys);
            b.iter(|| std_sip.get(keys.next().as_str()).copied())
        },
    );
    let hot = Arc::<str>::from(keys[0].as_str());
    g.bench_function(BenchmarkId::new("lookup-hot", "papaya-foldhash"), |b| {
        b.iter(|| {
            let guard = papaya_fold.guard();
            papaya_fold.get(black_box(&*hot), &guard).copied()
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = enforce_hot, enforce_spread, enforce_cold, enforce_zipf, enforce_tracker, throttle, refusal, connection, contention, floor
}
criterion_main!(benches);
