//! Instruction counts (iai-callgrind): stable on a noisy machine.
//!
//! Each benchmark makes [`OPS`] calls after a setup that built the fixture and
//! made one warm-up call of each kind (so thread-local registration in papaya's
//! and arc-swap's epoch schemes, and the first rotation of each window, fall
//! outside the count). Instructions per call = the reported `Instructions` /
//! `OPS`; `loop_baseline` shows the loop's own share (about 3 per call).
//!
//! Needs the runner, matching the library's version:
//! `cargo install iai-callgrind-runner --version 0.16.1`, and valgrind.
//! Run: `cargo bench --bench instructions`.

mod common;
mod seed_port;

use std::hint::black_box;
use std::sync::Arc;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter};
use iai_callgrind::{library_benchmark, library_benchmark_group, main};
use streambus_tenancy::{Manager, QuotaTracker};

use common::*;
use seed_port::{SeedManager, SeedTracker};

/// Calls per benchmark.
const OPS: usize = 1000;
const BYTES_I64: i64 = MSG_BYTES as i64;

struct Ours {
    m: Manager,
    id: String,
    tracker: Arc<QuotaTracker>,
    // Keeps a mock clock alive where the fixture uses one.
    _mock: Option<Arc<quanta::Mock>>,
}

struct Seed {
    m: SeedManager,
    id: String,
    tracker: Arc<SeedTracker>,
}

struct Gov {
    keyed: DefaultKeyedRateLimiter<String>,
    direct: DefaultDirectRateLimiter,
    id: String,
}

fn ours_admitting() -> &'static Ours {
    let id = tenant_id(0);
    let m = common::ours(1, roomy_quotas());
    let tracker = m.get_tracker(&id).unwrap();
    m.enforce_produce_quota(&id, MSG_BYTES, 1).unwrap();
    tracker.enforce_produce(MSG_BYTES, 1).unwrap();
    m.enforce_connection_quota(&id).unwrap();
    m.release_connection(&id);
    Box::leak(Box::new(Ours {
        m,
        id,
        tracker,
        _mock: None,
    }))
}

fn ours_refusing() -> &'static Ours {
    let id = tenant_id(0);
    let (m, mock) = ours_mock(1, tiny_bytes_quotas());
    m.enforce_produce_quota(&id, 1_000, 1).unwrap();
    let tracker = m.get_tracker(&id).unwrap();
    assert!(m.enforce_produce_quota(&id, MSG_BYTES, 1).is_err());
    assert!(tracker.enforce_produce(MSG_BYTES, 1).is_err());
    Box::leak(Box::new(Ours {
        m,
        id,
        tracker,
        _mock: Some(mock),
    }))
}

fn seed_admitting() -> &'static Seed {
    let id = tenant_id(0);
    let m = common::seed(1, roomy_quotas());
    let tracker = m.get_tracker(&id).unwrap();
    m.enforce_produce_quota(&id, BYTES_I64, 1).unwrap();
    m.enforce_connection_quota(&id).unwrap();
    m.release_connection(&id);
    Box::leak(Box::new(Seed { m, id, tracker }))
}

fn seed_refusing() -> &'static Seed {
    let id = tenant_id(0);
    let m = common::seed(1, tiny_bytes_quotas());
    m.enforce_produce_quota(&id, 1_000, 1).unwrap();
    let tracker = m.get_tracker(&id).unwrap();
    assert!(m.enforce_produce_quota(&id, BYTES_I64, 1).is_err());
    Box::leak(Box::new(Seed { m, id, tracker }))
}

fn gov_admitting() -> &'static Gov {
    let id = tenant_id(0);
    let keyed = governor_keyed(1, governor_roomy_quota());
    let direct = governor_direct(governor_roomy_quota());
    assert!(matches!(keyed.check_key_n(&id, gov_n()), Ok(Ok(_))));
    assert!(matches!(direct.check_n(gov_n()), Ok(Ok(_))));
    Box::leak(Box::new(Gov { keyed, direct, id }))
}

fn gov_refusing() -> &'static Gov {
    let id = tenant_id(0);
    let keyed = governor_keyed(0, governor_tiny_quota());
    let _ = keyed.check_key_n(&id, std::num::NonZeroU32::new(1_000).unwrap());
    assert!(matches!(keyed.check_key_n(&id, gov_n()), Ok(Err(_))));
    let direct = governor_direct(governor_tiny_quota());
    Box::leak(Box::new(Gov { keyed, direct, id }))
}

// ----- the loop alone ------------------------------------------------------

#[library_benchmark]
#[bench::ours(ours_admitting())]
fn loop_baseline(f: &'static Ours) {
    for _ in 0..OPS {
        black_box(black_box(&f.id).len());
    }
}

// ----- enforce by id ---------------------------------------------------------

#[library_benchmark]
#[bench::ours(ours_admitting())]
fn enforce_by_id_ours(f: &'static Ours) {
    for _ in 0..OPS {
        let _ = black_box(f.m.enforce_produce_quota(black_box(&f.id), MSG_BYTES, 1));
    }
}

#[library_benchmark]
#[bench::seed(seed_admitting())]
fn enforce_by_id_seed(f: &'static Seed) {
    for _ in 0..OPS {
        let _ = black_box(f.m.enforce_produce_quota(black_box(&f.id), BYTES_I64, 1));
    }
}

#[library_benchmark]
#[bench::governor(gov_admitting())]
fn enforce_by_id_governor(f: &'static Gov) {
    for _ in 0..OPS {
        let _ = black_box(f.keyed.check_key_n(black_box(&f.id), gov_n()));
    }
}

// ----- enforce via the cached handle ----------------------------------------

#[library_benchmark]
#[bench::ours(ours_admitting())]
fn enforce_tracker_ours(f: &'static Ours) {
    for _ in 0..OPS {
        let _ = black_box(black_box(&f.tracker).enforce_produce(MSG_BYTES, 1));
    }
}

#[library_benchmark]
#[bench::seed(seed_admitting())]
fn enforce_tracker_seed(f: &'static Seed) {
    for _ in 0..OPS {
        let _ = black_box(black_box(&f.tracker).enforce_produce(BYTES_I64, 1));
    }
}

#[library_benchmark]
#[bench::governor_direct(gov_admitting())]
fn enforce_tracker_governor(f: &'static Gov) {
    for _ in 0..OPS {
        let _ = black_box(black_box(&f.direct).check_n(gov_n()));
    }
}

// ----- refusal ---------------------------------------------------------------

#[library_benchmark]
#[bench::ours(ours_refusing())]
fn refusal_ours(f: &'static Ours) {
    for _ in 0..OPS {
        let _ = black_box(f.m.enforce_produce_quota(black_box(&f.id), MSG_BYTES, 1));
    }
}

#[library_benchmark]
#[bench::ours(ours_refusing())]
fn refusal_tracker_ours(f: &'static Ours) {
    for _ in 0..OPS {
        let _ = black_box(black_box(&f.tracker).enforce_produce(MSG_BYTES, 1));
    }
}

#[library_benchmark]
#[bench::seed(seed_refusing())]
fn refusal_seed(f: &'static Seed) {
    for _ in 0..OPS {
        let _ = black_box(f.m.enforce_produce_quota(black_box(&f.id), BYTES_I64, 1));
    }
}

#[library_benchmark]
#[bench::governor(gov_refusing())]
fn refusal_governor(f: &'static Gov) {
    for _ in 0..OPS {
        let _ = black_box(f.keyed.check_key_n(black_box(&f.id), gov_n()));
    }
}

// ----- connection enforce + release ------------------------------------------

#[library_benchmark]
#[bench::ours(ours_admitting())]
fn connection_pair_ours(f: &'static Ours) {
    for _ in 0..OPS {
        let _ = black_box(f.m.enforce_connection_quota(black_box(&f.id)));
        f.m.release_connection(black_box(&f.id));
    }
}

#[library_benchmark]
#[bench::ours(ours_admitting())]
fn connection_permit_ours(f: &'static Ours) {
    for _ in 0..OPS {
        drop(black_box(f.m.acquire_connection(black_box(&f.id))));
    }
}

#[library_benchmark]
#[bench::seed(seed_admitting())]
fn connection_pair_seed(f: &'static Seed) {
    for _ in 0..OPS {
        let _ = black_box(f.m.enforce_connection_quota(black_box(&f.id)));
        f.m.release_connection(black_box(&f.id));
    }
}

library_benchmark_group!(
    name = baseline;
    benchmarks = loop_baseline
);
library_benchmark_group!(
    name = enforce_by_id;
    benchmarks = enforce_by_id_ours, enforce_by_id_seed, enforce_by_id_governor
);
library_benchmark_group!(
    name = enforce_tracker;
    benchmarks = enforce_tracker_ours, enforce_tracker_seed, enforce_tracker_governor
);
library_benchmark_group!(
    name = refusal;
    benchmarks = refusal_ours, refusal_tracker_ours, refusal_seed, refusal_governor
);
library_benchmark_group!(
    name = connection;
    benchmarks = connection_pair_ours, connection_permit_ours, connection_pair_seed
);

main!(
    library_benchmark_groups = baseline,
    enforce_by_id,
    enforce_tracker,
    refusal,
    connection
);
