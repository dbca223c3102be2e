//! Throttle mode's four promises, as property tests on the engine with the
//! mock clock (never a sleep):
//!
//! 1. a tenant that stays within its quotas (every call would have been
//!    admitted by the refusing call) always gets `Duration::ZERO`;
//! 2. after waiting the returned delay an empty probe gets zero, and one
//!    bucket earlier it does not (the delay is the smallest wait, to within
//!    a bucket);
//! 3. a client that always waits the delay is admitted, over any span of at
//!    least a window from a bucket start to the end of its last call's delay,
//!    at most quota × span + one window's worth, a brand-new tenant included
//!    (debt is carried past the window);
//! 4. with several rate quotas over, the delay is the largest of theirs.
//!
//! The differential tests (`proptest_model.rs`, the fuzz target) check the
//! exact delays against the reference model; these check the promises the
//! definition is meant to keep.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use streambus_tenancy::{Manager, Quotas};

const SEC: u64 = 1_000_000_000;

fn manager(window: Duration, buckets: usize, max: Duration) -> (Manager, Arc<quanta::Mock>) {
    let (clock, mock) = quanta::Clock::mock();
    let m = Manager::builder()
        .clock(clock)
        .window(window)
        .buckets(buckets)
        .max_throttle(max)
        .build();
    (m, mock)
}

fn geometry() -> impl Strategy<Value = (Duration, usize)> {
    prop_oneof![
        3 => Just((Duration::from_secs(1), 10)),
        1 => Just((Duration::from_secs(1), 1)),
        1 => Just((Duration::from_millis(500), 5)),
        1 => Just((Duration::from_secs(2), 4)),
        1 => Just((Duration::from_millis(10), 10)),
    ]
}

fn bytes_only(q: i64) -> Quotas {
    Quotas {
        max_bytes_per_second: q,
        ..Quotas::unlimited()
    }
}

/// Clock moves and amounts: `(nanos to advance, bytes, messages)`.
fn steps(w: u64) -> impl Strategy<Value = Vec<(u64, u64, u64)>> {
    let b = w / 10;
    prop::collection::vec(
        (
            prop_oneof![Just(0u64), Just(1), Just(b), 0..w, 0..3 * w],
            prop_oneof![0u64..=30, Just(100), 0..500u64],
            0u64..=4,
        ),
        1..120,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Property 1: within the quotas, always zero. The refusing call on a
    /// twin tenant decides which calls are within; the throttled tenant gets
    /// exactly those.
    #[test]
    fn within_quotas_is_never_delayed(
        (window, buckets) in geometry(),
        quotas in (0i64..=200, prop_oneof![Just(-1i64), 0i64..=20], prop_oneof![Just(-1i64), 1i64..=20]),
        steps in steps(1_000_000_000),
    ) {
        let (m, mock) = manager(window, buckets, Duration::from_secs(30));
        let q = Quotas {
            max_bytes_per_second: quotas.0,
            max_messages_per_second: quotas.1,
            max_requests_per_second: quotas.2,
            ..Quotas::unlimited()
        };
        m.create_tenant("enforced", "E", q).unwrap();
        m.create_tenant("throttled", "T", q).unwrap();
        let w = window.as_nanos() as u64;
        let mut admitted = 0;
        for (advance, bytes, messages) in steps {
            mock.increment(advance % (3 * w));
            if m.enforce_produce_quota("enforced", bytes, messages).is_ok() {
                admitted += 1;
                let d = m.throttle_produce_quota("throttled", bytes, messages).unwrap();
                prop_assert_eq!(d, Duration::ZERO, "an admissible call was delayed");
            }
        }
        prop_assert_eq!(
            m.get_usage("enforced").unwrap(),
            streambus_tenancy::Usage { tenant_id: "enforced".into(), ..m.get_usage("throttled").unwrap() }
        );
        let _ = admitted;
    }

    /// Property 2: after the delay an empty probe is zero; a bucket earlier
    /// it is not. Two managers replay the same history, one probes at the
    /// delay, the other a bucket before it.
    #[test]
    fn the_delay_is_the_smallest_wait(
        (window, buckets) in geometry(),
        quotas in (1i64..=200, prop_oneof![Just(-1i64), 1i64..=20]),
        steps in steps(1_000_000_000),
    ) {
        let q = Quotas {
            max_bytes_per_second: quotas.0,
            max_messages_per_second: quotas.1,
            ..Quotas::unlimited()
        };
        let max = Duration::from_secs(3600);
        let (a, mock_a) = manager(window, buckets, max);
        let (b, mock_b) = manager(window, buckets, max);
        a.create_tenant("t", "T", q).unwrap();
        b.create_tenant("t", "T", q).unwrap();
        let bucket = window.as_nanos() as u64 / buckets as u64;
        let mut delay = Duration::ZERO;
        for (advance, bytes, messages) in steps {
            mock_a.increment(advance);
            mock_b.increment(advance);
            delay = a.throttle_produce_quota("t", bytes, messages).unwrap();
            prop_assert_eq!(b.throttle_produce_quota("t", bytes, messages).unwrap(), delay);
        }
        prop_assume!(delay > Duration::ZERO && delay < max);
        mock_a.increment(delay);
        prop_assert_eq!(a.throttle_produce_quota("t", 0, 0).unwrap(), Duration::ZERO);
        let d = delay.as_nanos() as u64;
        if d > bucket {
            mock_b.increment(Duration::from_nanos(d - bucket));
            prop_assert!(
                b.throttle_produce_quota("t", 0, 0).unwrap() > Duration::ZERO,
                "a bucket before the delay the backlog is already within the tolerance"
            );
        }
    }

    /// Property 3: a client that waits every delay (and sometimes longer) is
    /// admitted at most quota × span + one window over any span of at least
    /// a window, from the start of a call's bucket to the end of a later
    /// call's delay. Sending many windows' worth at once does not help: the
    /// debt is carried.
    #[test]
    fn a_client_that_waits_gets_at_most_its_quota(
        (window, buckets) in geometry(),
        quota in 1i64..=200,
        calls in prop::collection::vec((0u64..=1000, prop_oneof![3 => Just(0u64), 1 => 0u64..2_000_000_000]), 1..80),
    ) {
        let max = Duration::from_secs(3600);
        let (m, mock) = manager(window, buckets, max);
        m.create_tenant("t", "T", bytes_only(quota)).unwrap();
        let w = window.as_nanos() as u64;
        let bucket = w / buckets as u64;
        let limit = quota as u64 * w / SEC;
        // A window limit of 0 delays every call by the cap (a quota of 0).
        prop_assume!(limit > 0);
        // (bucket start of the call, end of its delay, bytes)
        let mut log: Vec<(u64, u64, u64)> = Vec::new();
        let mut now = 0u64;
        for (bytes, extra) in calls {
            let d = m.throttle_produce_quota("t", bytes, 1).unwrap();
            prop_assert!(d < max, "capped: the bound does not apply");
            let d = d.as_nanos() as u64;
            log.push((now / bucket * bucket, now + d, bytes));
            let wait = d + extra % (2 * w);
            mock.increment(wait);
            now += wait;
        }
        for i in 0..log.len() {
            let mut sum = 0u128;
            for j in i..log.len() {
                sum += log[j].2 as u128;
                let span = log[j].1.saturating_sub(log[i].0);
                if span < w {
                    continue;
                }
                // sum <= quota * span / 1 s + limit, in integers.
                prop_assert!(
                    sum * SEC as u128 <= quota as u128 * span as u128 + limit as u128 * SEC as u128,
                    "calls {}..={}: {} bytes over {} ns, quota {}/s, window limit {}", i, j, sum, span, quota, limit
                );
            }
        }
    }

    /// Property 4: the delay of a call over several quotas is the largest of
    /// the delays each quota alone would give.
    #[test]
    fn several_quotas_over_wait_for_the_slowest(
        (window, buckets) in geometry(),
        quotas in (1i64..=200, 1i64..=20, 1i64..=20),
        steps in steps(1_000_000_000),
    ) {
        let max = Duration::from_secs(3600);
        let all = Quotas {
            max_bytes_per_second: quotas.0,
            max_messages_per_second: quotas.1,
            max_requests_per_second: quotas.2,
            ..Quotas::unlimited()
        };
        let alone = [
            Quotas { max_bytes_per_second: quotas.0, ..Quotas::unlimited() },
            Quotas { max_messages_per_second: quotas.1, ..Quotas::unlimited() },
            Quotas { max_requests_per_second: quotas.2, ..Quotas::unlimited() },
        ];
        let (m, mock) = manager(window, buckets, max);
        m.create_tenant("all", "All", all).unwrap();
        for (i, q) in alone.iter().enumerate() {
            m.create_tenant(&format!("alone-{i}"), "One", *q).unwrap();
        }
        let mut several = 0;
        for (advance, bytes, messages) in steps {
            mock.increment(advance);
            let d = m.throttle_produce_quota("all", bytes, messages).unwrap();
            let each: Vec<Duration> = (0..3)
                .map(|i| m.throttle_produce_quota(&format!("alone-{i}"), bytes, messages).unwrap())
                .collect();
            prop_assert_eq!(d, each.iter().copied().max().unwrap(), "alone: {:?}", each);
            if each.iter().filter(|d| !d.is_zero()).count() > 1 {
                several += 1;
            }
        }
        let _ = several;
    }
}

/// The README's worked example, as the engine computes it.
#[test]
fn worked_example() {
    let (m, mock) = manager(Duration::from_secs(1), 10, Duration::from_secs(30));
    m.create_tenant("acme", "ACME", bytes_only(100)).unwrap();
    let t = |bytes| m.throttle_produce_quota("acme", bytes, 1).unwrap();
    assert_eq!(t(500), Duration::from_secs(4));
    mock.increment(Duration::from_secs(4));
    assert_eq!(t(0), Duration::ZERO);
    // The window's worth of burst is used up: the next 100 waits 1 s.
    assert_eq!(t(100), Duration::from_secs(1));
    mock.increment(Duration::from_millis(250));
    assert_eq!(t(0), Duration::from_millis(750));
    // Five windows' worth every window: the debt is carried.
    mock.increment(Duration::from_secs(10));
    let mut waits = Vec::new();
    for _ in 0..3 {
        let d = t(500);
        waits.push(d);
        mock.increment(Duration::from_secs(1));
    }
    assert_eq!(
        waits,
        // Mid-bucket (at 14.25 s): counted from the start of the bucket.
        [
            Duration::from_millis(3950),
            Duration::from_millis(7950),
            Duration::from_millis(11950)
        ]
    );
    // The cap answers 30 s but keeps the debt.
    assert_eq!(t(10_000), Duration::from_secs(30));
}

/// `max_throttle` is refused at 0 and above an hour, with a message saying so.
#[test]
fn max_throttle_is_validated() {
    for bad in [Duration::ZERO, Duration::from_secs(3601)] {
        let e = Manager::builder()
            .max_throttle(bad)
            .try_build()
            .unwrap_err();
        assert!(e.to_string().contains("max_throttle"), "{e}");
    }
    let m = Manager::builder()
        .max_throttle(Duration::from_secs(3600))
        .build();
    assert_eq!(m.max_throttle(), Duration::from_secs(3600));
    assert_eq!(Manager::new().max_throttle(), Duration::from_secs(30));
}

/// Throttle calls are recorded in the windows the refusing calls read, and
/// a suspended or missing tenant is an error with nothing recorded.
#[test]
fn throttled_calls_are_recorded_and_refused_only_when_not_active() {
    let (m, _mock) = manager(Duration::from_secs(1), 10, Duration::from_secs(30));
    m.create_tenant("t", "T", bytes_only(100)).unwrap();
    assert_eq!(
        m.throttle_consume_quota("t", 150, 3).unwrap(),
        Duration::from_millis(500)
    );
    assert!(m.enforce_produce_quota("t", 1, 1).is_err());
    let usage = m.get_usage("t").unwrap();
    assert_eq!(
        (
            usage.bytes_per_second,
            usage.messages_per_second,
            usage.requests_per_second
        ),
        (150, 3, 1)
    );
    m.suspend_tenant("t").unwrap();
    assert!(matches!(
        m.throttle_produce_quota("t", 1, 1),
        Err(streambus_tenancy::Error::TenantNotActive { .. })
    ));
    assert_eq!(m.get_usage("t").unwrap().bytes_per_second, 150);
    assert!(matches!(
        m.throttle_produce_quota("nobody", 1, 1),
        Err(streambus_tenancy::Error::TenantNotFound(_))
    ));
}
