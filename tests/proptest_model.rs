//! Property tests: random sequences of calls applied to the engine and to the
//! reference model (`tests/model`), which must agree on every answer (admitted,
//! or which error with quota type, current, limit and retry_after) and on every
//! reading (tenants, usage, utilization, counters) after every step.
//!
//! Amounts, quota values, ids, names and clock moves are drawn from menus that
//! weight the edges: 0, the limit and one either side, 2^39-1 and beyond,
//! `u64::MAX`; ids and names just inside and just outside their limits;
//! clock moves of 0, 1 ns, a bucket and one either side, a window, an hour,
//! 2^24 buckets, and backwards.

mod model;

use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::FileFailurePersistence;
use streambus_tenancy::{HeldUsage, QuotaType, Quotas, TenantStatus, MAX_RATE_QUOTA};

use model::diff::{invalid_ids, names, valid_ids, Call, Harness, Op};
use model::{Held, EDGE_AMOUNTS, ROUND_AMOUNTS};

/// Window geometries: mostly valid, a few the builder must refuse.
fn geometry() -> impl Strategy<Value = (Duration, usize)> {
    let s = Duration::from_secs;
    let ms = Duration::from_millis;
    prop_oneof![
        6 => Just((s(1), 10)),
        1 => Just((s(1), 1)),
        1 => Just((s(1), 4)),
        1 => Just((ms(100), 10)),
        1 => Just((s(2), 8)),
        1 => Just((ms(1), 1000)),
        1 => Just((s(3600), 1024)),
        1 => select(vec![
            (s(1), 0),
            (s(1), 3),
            (s(1), 1025),
            (s(7200), 10),
            (ms(1), 1001),
            (Duration::ZERO, 1),
        ]),
    ]
}

fn amount() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 0u64..=12,
        3 => select(&ROUND_AMOUNTS[..]),
        1 => select(&EDGE_AMOUNTS[..]),
        1 => any::<u64>(),
    ]
}

fn valid_quota() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => Just(-1i64),
        6 => 0i64..=12,
        2 => select(vec![100i64, 1000, 10_000]),
        1 => select(vec![MAX_RATE_QUOTA - 1, MAX_RATE_QUOTA]),
    ]
}

fn valid_quotas() -> impl Strategy<Value = Quotas> {
    proptest::collection::vec(valid_quota(), QuotaType::COUNT)
        .prop_map(|v| Quotas::from_fn(|q| v[q.index()]))
}

fn quotas() -> impl Strategy<Value = Quotas> {
    let valid = valid_quotas();
    // One field out of range: below -1, or a rate above 2^39-1, or a count
    // at i64::MAX (which is allowed).
    let bad = (
        valid_quotas(),
        0..QuotaType::COUNT,
        select(vec![-2i64, i64::MIN, MAX_RATE_QUOTA + 1, i64::MAX]),
    )
        .prop_map(|(mut q, field, v)| {
            let t = QuotaType::ALL[field];
            q.set(t, v);
            q
        });
    prop_oneof![9 => valid, 1 => bad, 1 => Just(Quotas::default()), 1 => Just(Quotas::free_tier())]
}

fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => select(vec!["a".to_string(), "b".to_string()]),
        2 => select(valid_ids()),
        1 => select(invalid_ids()),
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![6 => Just("A".to_string()), 2 => select(names())]
}

fn held() -> impl Strategy<Value = Held> {
    select(Held::ALL.to_vec())
}

fn partitions() -> impl Strategy<Value = u32> {
    prop_oneof![4 => 0u32..=5, 1 => select(vec![100u32, u32::MAX - 1, u32::MAX])]
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        8 => (amount(), amount()).prop_map(|(bytes, messages)| Call::Produce { bytes, messages }),
        3 => (amount(), amount()).prop_map(|(bytes, messages)| Call::Consume { bytes, messages }),
        3 => Just(Call::Request),
        2 => (amount(), amount()).prop_map(|(bytes, messages)| Call::Check { bytes, messages }),
        2 => (amount(), amount()).prop_map(|(bytes, messages)| Call::Record { bytes, messages }),
        4 => held().prop_map(Call::Acquire),
        3 => held().prop_map(Call::Release),
        2 => partitions().prop_map(Call::Topic),
        1 => partitions().prop_map(Call::ReleaseTopic),
        1 => amount().prop_map(Call::Storage),
        1 => amount().prop_map(Call::UpdateStorage),
        1 => amount().prop_map(Call::Retention),
        1 => held_usage().prop_map(Call::RestoreUsage),
        3 => (amount(), amount()).prop_map(|(bytes, messages)| Call::ThrottleProduce { bytes, messages }),
        1 => (amount(), amount()).prop_map(|(bytes, messages)| Call::ThrottleConsume { bytes, messages }),
    ]
}

/// A restore: mostly small counts (about the limits the quota menus give),
/// sometimes the edges.
fn held_usage() -> impl Strategy<Value = HeldUsage> {
    let count = || prop_oneof![6 => 0u64..=12, 1 => select(&EDGE_AMOUNTS[..])];
    (
        [count(), count(), count(), count(), count(), count()],
        amount(),
    )
        .prop_map(|(c, storage_bytes)| HeldUsage {
            connections: c[0],
            producers: c[1],
            consumers: c[2],
            consumer_groups: c[3],
            topics: c[4],
            partitions: c[5],
            storage_bytes,
        })
}

/// Clock moves for buckets of `b` nanoseconds and windows of `w`.
fn advance(b: u64, w: u64) -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => select(vec![0, 1, b - 1, b, b + 1, 2 * b, w - 1, w, w + 1, 3 * w])
            .prop_map(Op::Advance),
        3 => (0..3 * w).prop_map(Op::Advance),
        1 => select(vec![3_600_000_000_000u64, (1 << 24) * b, ((1 << 24) - 1) * b, u64::MAX])
            .prop_map(Op::Advance),
        1 => select(vec![1u64, b, w, u64::MAX]).prop_map(Op::Rewind),
    ]
}

fn op(b: u64, w: u64) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (id(), name(), quotas()).prop_map(|(id, name, quotas)| Op::Create { id, name, quotas }),
        1 => (id(), name(), quotas(), select(vec![
            TenantStatus::Active,
            TenantStatus::Suspended,
            TenantStatus::Deleted,
        ]))
            .prop_map(|(id, name, quotas, status)| Op::Restore { id, name, quotas, status }),
        2 => (id(), proptest::option::of(name()), proptest::option::of(quotas()))
            .prop_map(|(id, name, quotas)| Op::Update { id, name, quotas }),
        1 => id().prop_map(Op::Delete),
        1 => id().prop_map(Op::Suspend),
        1 => id().prop_map(Op::Activate),
        20 => (id(), call()).prop_map(|(id, call)| Op::Call { id, call }),
        2 => (id(), held()).prop_map(|(id, kind)| Op::Permit { id, kind }),
        2 => any::<usize>().prop_map(Op::DropPermit),
        2 => id().prop_map(Op::GetTracker),
        6 => (any::<usize>(), call()).prop_map(|(index, call)| Op::OnTracker { index, call }),
        8 => advance(b, w),
    ]
}

/// A geometry and a sequence of operations for it.
fn scenario(len: usize) -> impl Strategy<Value = ((Duration, usize), Vec<Op>)> {
    geometry().prop_flat_map(move |(window, buckets)| {
        let w = (window.as_nanos() as u64).max(2);
        let b = (w / buckets.max(1) as u64).max(2);
        (
            Just((window, buckets)),
            prop::collection::vec(op(b, w), 1..len),
        )
    })
}

/// `cases` random cases, after the seeds of past failures (committed in
/// `proptest-regressions/proptest_model.txt`).
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/proptest_model.txt",
        ))),
        ..ProptestConfig::default()
    }
}

fn run(window: Duration, buckets: usize, ops: &[Op]) -> Option<model::diff::Stats> {
    let mut watched = valid_ids();
    watched.extend(invalid_ids().into_iter().take(2));
    let mut h = Harness::new(window, buckets, &watched)?;
    for op in ops {
        h.step(op);
    }
    Some(h.stats)
}

proptest! {
    #![proptest_config(config(256))]

    /// Every kind of call, on several tenants, with handles and lifecycle.
    #[test]
    fn engine_agrees_with_model(((window, buckets), ops) in scenario(80)) {
        run(window, buckets, &ops);
    }
}

/// One tenant with tight rate quotas, many calls and small clock moves: the
/// windows, roll-backs and retry_after get most of the attention.
fn rate_scenario() -> impl Strategy<Value = ((Duration, usize), Quotas, Vec<Op>)> {
    let limits = (
        prop_oneof![Just(-1i64), 0i64..=50, Just(1000)],
        prop_oneof![Just(-1i64), 0i64..=20],
        prop_oneof![Just(-1i64), 0i64..=20],
    )
        .prop_map(|(b, m, r)| Quotas {
            max_bytes_per_second: b,
            max_messages_per_second: m,
            max_requests_per_second: r,
            ..Quotas::unlimited()
        });
    let geometry = prop_oneof![
        3 => Just((Duration::from_secs(1), 10)),
        1 => Just((Duration::from_secs(1), 1)),
        1 => Just((Duration::from_millis(500), 5)),
        1 => Just((Duration::from_secs(2), 4)),
    ];
    (geometry, limits).prop_flat_map(|((window, buckets), quotas)| {
        let w = window.as_nanos() as u64;
        let b = w / buckets as u64;
        let small = prop_oneof![3 => 0u64..=30, 1 => Just(1000u64), 1 => Just(u64::MAX)];
        let ops = prop_oneof![
            6 => (small.clone(), 0u64..=3)
                .prop_map(|(bytes, messages)| Op::Call { id: "a".into(), call: Call::Produce { bytes, messages } }),
            2 => Just(Op::Call { id: "a".into(), call: Call::Request }),
            1 => (small.clone(), 0u64..=3)
                .prop_map(|(bytes, messages)| Op::Call { id: "a".into(), call: Call::Check { bytes, messages } }),
            1 => (small.clone(), 0u64..=3)
                .prop_map(|(bytes, messages)| Op::Call { id: "a".into(), call: Call::Record { bytes, messages } }),
            3 => (small, 0u64..=3)
                .prop_map(|(bytes, messages)| Op::Call { id: "a".into(), call: Call::ThrottleProduce { bytes, messages } }),
            4 => prop_oneof![
                select(vec![0, 1, b - 1, b, b + 1, w - 1, w]),
                0..2 * w
            ].prop_map(Op::Advance),
            1 => select(vec![b, w]).prop_map(Op::Rewind),
        ];
        (Just((window, buckets)), Just(quotas), prop::collection::vec(ops, 1..200))
    })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn rate_windows_agree_with_model(((window, buckets), quotas, ops) in rate_scenario()) {
        let mut h = Harness::new(window, buckets, &["a".to_string()]).expect("valid geometry");
        h.step(&Op::Create { id: "a".into(), name: "A".into(), quotas });
        for op in &ops {
            h.step(op);
        }
    }
}

/// The harness itself: a fixed sequence that must exercise admission,
/// refusal with a retry probe, permits, handles across a delete, and a
/// re-created id.
#[test]
fn harness_exercises_every_path() {
    let a = || "a".to_string();
    let produce = |bytes| Op::Call {
        id: a(),
        call: Call::Produce { bytes, messages: 1 },
    };
    let quotas = Quotas {
        max_bytes_per_second: 100,
        max_connections: 1,
        ..Quotas::unlimited()
    };
    let ops = vec![
        Op::Create {
            id: a(),
            name: "A".into(),
            quotas,
        },
        produce(60),
        Op::Advance(500_000_000),
        produce(40),
        produce(1),
        produce(101),
        Op::Permit {
            id: a(),
            kind: Held::Connections,
        },
        Op::Permit {
            id: a(),
            kind: Held::Connections,
        },
        Op::GetTracker(a()),
        Op::Delete(a()),
        Op::Create {
            id: a(),
            name: "A2".into(),
            quotas,
        },
        Op::DropPermit(0),
        Op::OnTracker {
            index: 0,
            call: Call::Produce {
                bytes: 1,
                messages: 1,
            },
        },
        Op::OnTracker {
            index: 0,
            call: Call::Release(Held::Connections),
        },
        Op::Permit {
            id: a(),
            kind: Held::Connections,
        },
        Op::Advance(u64::MAX),
        produce(100),
    ];
    let stats = run(Duration::from_secs(1), 10, &ops).unwrap();
    assert!(stats.admitted >= 4, "{stats:?}");
    assert!(stats.rate_refusals >= 2, "{stats:?}");
    assert!(stats.retry_probes >= 1, "{stats:?}");
}
