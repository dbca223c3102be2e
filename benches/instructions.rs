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
    m.throttle_produce_quota(&id, MSG_BYTES, 1).unwrap();
    tracker.throttle_produce(MSG_BYTES, 1).unwrap();
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

/// 100k tenants and their ids in a shuffled order, for the spread benches.
const SPREAD: usize = 100_000;

struct Spread<T> {
    imp: T,
    ids: Vec<String>,
}

fn spread_ids() -> Vec<String> {
    shuffled_ids(SPREAD)
}

fn ids_only() -> &'static Spread<()> {
    Box::leak(Box::new(Spread {
        imp: (),
        ids: spread_ids(),
    }))
}

/// Enforces once on every tenant in the shuffled order, then rotates the ids
/// so that the measured tail holds the tenants touched longest ago (evicted
/// from every cache level since, in callgrind's model as on the machine).
fn warm(ids: &mut [String], mut touch: impl FnMut(&str)) {
    for id in ids.iter() {
        touch(id);
    }
    ids.rotate_left(OPS);
}

/// Real clock; the measured tenants untouched since their creation.
fn ours_spread_idle() -> &'static Spread<Manager> {
    let imp = common::ours(SPREAD, roomy_quotas());
    let ids = spread_ids();
    Box::leak(Box::new(Spread { imp, ids }))
}

/// Mock clock, every tenant warm; then the clock moves `advance` forward (0:
/// the calls land in the bucket of the warm-up; one bucket: each call's three
/// windows rotate first).
fn ours_spread_mock(advance: std::time::Duration) -> &'static Spread<Manager> {
    let (imp, mock) = ours_mock(SPREAD, roomy_quotas());
    let mut ids = spread_ids();
    warm(&mut ids, |id| {
        imp.enforce_produce_quota(id, MSG_BYTES, 1).unwrap()
    });
    mock.increment(advance);
    std::mem::forget(mock);
    Box::leak(Box::new(Spread { imp, ids }))
}

fn seed_spread() -> &'static Spread<SeedManager> {
    let imp = common::seed(SPREAD, roomy_quotas());
    let mut ids = spread_ids();
    warm(&mut ids, |id| {
        imp.enforce_produce_quota(id, BYTES_I64, 1).unwrap()
    });
    Box::leak(Box::new(Spread { imp, ids }))
}

fn gov_spread() -> &'static Spread<DefaultKeyedRateLimiter<String>> {
    let imp = governor_keyed(SPREAD, governor_roomy_quota());
    let mut ids = spread_ids();
    warm(&mut ids, |id| {
        let _ = imp.check_key_n(&id.to_owned(), gov_n());
    });
    Box::leak(Box::new(Spread { imp, ids }))
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
        let _ = black_box(call::ours_produce(&f.m, black_box(&f.id)));
    }
}

#[library_benchmark]
#[bench::seed(seed_admitting())]
fn enforce_by_id_seed(f: &'static Seed) {
    for _ in 0..OPS {
        let _ = black_box(call::seed_produce(&f.m, black_box(&f.id)));
    }
}

#[library_benchmark]
#[bench::governor(gov_admitting())]
fn enforce_by_id_governor(f: &'static Gov) {
    for _ in 0..OPS {
        let _ = black_box(call::governor_keyed(&f.keyed, black_box(&f.id)));
    }
}

// ----- enforce by id over 100k tenants --------------------------------------
//
// The calls walk OPS tenants of 100k in a shuffled order, the ones touched
// longest ago, so every call meets a tenant evicted from every cache level.
// Callgrind's cache model (L1 and an 8 MiB last level) turns that into "RAM
// hits": the cache lines each call brings in from memory.

#[library_benchmark]
#[bench::ids(ids_only())]
fn spread_ids_baseline(f: &'static Spread<()>) {
    for id in &f.ids[SPREAD - OPS..] {
        black_box(black_box(id.as_str()).as_bytes()[14]);
    }
}

// `warm_same_bucket`: tenants warm, no time passed (lookup and cache misses
// only). `warm_next_bucket`: the clock moved one 100 ms bucket, so each call
// rotates its windows. `warm_three_buckets`: the clock moved three buckets, so
// each call's windows are three ticks behind (a tenant touched every few
// buckets: two skipped ticks and their leaving slots). `idle_real_clock`: the
// real clock, tenants untouched
// since they were created more than a window earlier (valgrind is slow), so
// each call also re-stamps every slot.
#[library_benchmark]
#[bench::warm_same_bucket(ours_spread_mock(std::time::Duration::ZERO))]
#[bench::warm_next_bucket(ours_spread_mock(std::time::Duration::from_millis(100)))]
#[bench::warm_three_buckets(ours_spread_mock(std::time::Duration::from_millis(300)))]
#[bench::idle_real_clock(ours_spread_idle())]
fn enforce_spread_ours(f: &'static Spread<Manager>) {
    for id in &f.ids[SPREAD - OPS..] {
        let _ = black_box(call::ours_produce(&f.imp, black_box(id)));
    }
}

#[library_benchmark]
#[bench::seed(seed_spread())]
fn enforce_spread_seed(f: &'static Spread<SeedManager>) {
    for id in &f.ids[SPREAD - OPS..] {
        let _ = black_box(call::seed_produce(&f.imp, black_box(id)));
    }
}

#[library_benchmark]
#[bench::governor(gov_spread())]
fn enforce_spread_governor(f: &'static Spread<DefaultKeyedRateLimiter<String>>) {
    for id in &f.ids[SPREAD - OPS..] {
        let _ = black_box(call::governor_keyed(&f.imp, black_box(id)));
    }
}

// ----- 100k tenants, every call in a new bucket; a Zipf mix ------------------

// `enforce_cold`: every tenant warm, then the mock clock one bucket on, so
// each measured call rotates its tenant's windows (the same fixture as
// `warm_next_bucket` above, under the name the criterion group has). The
// baselines have no buckets to rotate (governor) or rotate on the real clock
// anyway under valgrind (the seed port): their spread fixtures.
#[library_benchmark]
#[bench::ours(ours_spread_mock(std::time::Duration::from_millis(100)))]
fn enforce_cold_ours(f: &'static Spread<Manager>) {
    for id in &f.ids[SPREAD - OPS..] {
        let _ = black_box(call::ours_produce(&f.imp, black_box(id)));
    }
}

#[library_benchmark]
#[bench::seed(seed_spread())]
fn enforce_cold_seed(f: &'static Spread<SeedManager>) {
    for id in &f.ids[SPREAD - OPS..] {
        let _ = black_box(call::seed_produce(&f.imp, black_box(id)));
    }
}

#[library_benchmark]
#[bench::governor(gov_spread())]
fn enforce_cold_governor(f: &'static Spread<DefaultKeyedRateLimiter<String>>) {
    for id in &f.ids[SPREAD - OPS..] {
        let _ = black_box(call::governor_keyed(&f.imp, black_box(id)));
    }
}

/// Calls of the Zipf sequence replayed before the measured `OPS`.
const ZIPF_WARM: usize = 200_000;

/// A Zipf(1.0) sequence over the spread's tenants, replayed once (real
/// clock) before the measured tail.
fn zipf_fixture<T>(imp: T, mut touch: impl FnMut(&T, &str)) -> &'static Spread<T> {
    let ids = zipf_ids(SPREAD, ZIPF_WARM + OPS);
    for id in &ids[..ZIPF_WARM] {
        touch(&imp, id);
    }
    Box::leak(Box::new(Spread { imp, ids }))
}

fn ours_zipf() -> &'static Spread<Manager> {
    zipf_fixture(common::ours(SPREAD, roomy_quotas()), |m, id| {
        m.enforce_produce_quota(id, MSG_BYTES, 1).unwrap()
    })
}

fn seed_zipf() -> &'static Spread<SeedManager> {
    zipf_fixture(common::seed(SPREAD, roomy_quotas()), |m, id| {
        m.enforce_produce_quota(id, BYTES_I64, 1).unwrap()
    })
}

fn gov_zipf() -> &'static Spread<DefaultKeyedRateLimiter<String>> {
    zipf_fixture(governor_keyed(SPREAD, governor_roomy_quota()), |g, id| {
        let _ = g.check_key_n(&id.to_owned(), gov_n());
    })
}

#[library_benchmark]
#[bench::ours(ours_zipf())]
fn enforce_zipf_ours(f: &'static Spread<Manager>) {
    for id in &f.ids[ZIPF_WARM..] {
        let _ = black_box(call::ours_produce(&f.imp, black_box(id)));
    }
}

#[library_benchmark]
#[bench::seed(seed_zipf())]
fn enforce_zipf_seed(f: &'static Spread<SeedManager>) {
    for id in &f.ids[ZIPF_WARM..] {
        let _ = black_box(call::seed_produce(&f.imp, black_box(id)));
    }
}

#[library_benchmark]
#[bench::governor(gov_zipf())]
fn enforce_zipf_governor(f: &'static Spread<DefaultKeyedRateLimiter<String>>) {
    for id in &f.ids[ZIPF_WARM..] {
        let _ = black_box(call::governor_keyed(&f.imp, black_box(id)));
    }
}

// ----- enforce via the cached handle ----------------------------------------

#[library_benchmark]
#[bench::ours(ours_admitting())]
fn enforce_tracker_ours(f: &'static Ours) {
    for _ in 0..OPS {
        let _ = black_box(call::ours_tracker_produce(black_box(&f.tracker)));
    }
}

#[library_benchmark]
#[bench::seed(seed_admitting())]
fn enforce_tracker_seed(f: &'static Seed) {
    for _ in 0..OPS {
        let _ = black_box(call::seed_tracker_produce(black_box(&f.tracker)));
    }
}

#[library_benchmark]
#[bench::governor_direct(gov_admitting())]
fn enforce_tracker_governor(f: &'static Gov) {
    for _ in 0..OPS {
        let _ = black_box(call::governor_direct(black_box(&f.direct)));
    }
}

// ----- throttle mode beside enforce -------------------------------------------

#[library_benchmark]
#[bench::ours(ours_admitting())]
fn throttle_by_id_ours(f: &'static Ours) {
    for _ in 0..OPS {
        let _ = black_box(call::ours_throttle(&f.m, black_box(&f.id)));
    }
}

#[library_benchmark]
#[bench::ours(ours_admitting())]
fn throttle_tracker_ours(f: &'static Ours) {
    for _ in 0..OPS {
        let _ = black_box(call::ours_tracker_throttle(black_box(&f.tracker)));
    }
}

// ----- refusal ---------------------------------------------------------------

#[library_benchmark]
#[bench::ours(ours_refusing())]
fn refusal_ours(f: &'static Ours) {
    for _ in 0..OPS {
        let _ = black_box(call::ours_produce(&f.m, black_box(&f.id)));
    }
}

#[library_benchmark]
#[bench::ours(ours_refusing())]
fn refusal_tracker_ours(f: &'static Ours) {
    for _ in 0..OPS {
        let _ = black_box(call::ours_tracker_produce(black_box(&f.tracker)));
    }
}

#[library_benchmark]
#[bench::seed(seed_refusing())]
fn refusal_seed(f: &'static Seed) {
    for _ in 0..OPS {
        let _ = black_box(call::seed_produce(&f.m, black_box(&f.id)));
    }
}

#[library_benchmark]
#[bench::governor(gov_refusing())]
fn refusal_governor(f: &'static Gov) {
    for _ in 0..OPS {
        let _ = black_box(call::governor_keyed(&f.keyed, black_box(&f.id)));
    }
}

// ----- connection enforce + release ------------------------------------------

#[library_benchmark]
#[bench::ours(ours_admitting())]
fn connection_pair_ours(f: &'static Ours) {
    for _ in 0..OPS {
        let _ = black_box(call::ours_connection_pair(&f.m, black_box(&f.id)));
    }
}

#[library_benchmark]
#[bench::ours(ours_admitting())]
fn connection_permit_ours(f: &'static Ours) {
    for _ in 0..OPS {
        black_box(call::ours_permit(&f.m, black_box(&f.id)));
    }
}

#[library_benchmark]
#[bench::seed(seed_admitting())]
fn connection_pair_seed(f: &'static Seed) {
    for _ in 0..OPS {
        let _ = black_box(call::seed_connection_pair(&f.m, black_box(&f.id)));
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
    name = enforce_spread;
    benchmarks = spread_ids_baseline, enforce_spread_ours, enforce_spread_seed, enforce_spread_governor
);
library_benchmark_group!(
    name = enforce_cold;
    benchmarks = enforce_cold_ours, enforce_cold_seed, enforce_cold_governor
);
library_benchmark_group!(
    name = enforce_zipf;
    benchmarks = enforce_zipf_ours, enforce_zipf_seed, enforce_zipf_governor
);
library_benchmark_group!(
    name = enforce_tracker;
    benchmarks = enforce_tracker_ours, enforce_tracker_seed, enforce_tracker_governor
);
library_benchmark_group!(
    name = throttle;
    benchmarks = throttle_by_id_ours, throttle_tracker_ours
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
    enforce_spread,
    enforce_cold,
    enforce_zipf,
    enforce_tracker,
    throttle,
    refusal,
    connection
);
