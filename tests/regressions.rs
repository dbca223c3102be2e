//! Engine bugs found by the reference model, one test each, as the
//! smallest input that showed them. All are fixed; the tests keep them fixed.

use std::time::Duration;

use quanta::Mock;
use std::sync::Arc;
use streambus_tenancy::{Error, Manager, QuotaType, Quotas, MAX_RATE_QUOTA};

fn manager(window: Duration, buckets: usize) -> (Manager, Arc<Mock>) {
    let (clock, mock) = quanta::Clock::mock();
    let m = Manager::builder()
        .clock(clock)
        .window(window)
        .buckets(buckets)
        .build();
    (m, mock)
}

/// A refused call records nothing; counts neither wrap nor drift.
///
/// `QuotaTracker::admit_rates` records bytes in an unlimited window with
/// `Window::record`, which saturates the bucket at 2^39-1; when the messages
/// window then refuses, `Window::unrecord` takes back the whole `u64::MAX`,
/// not the part that was added, and the bucket drops to 0: the 100 bytes
/// admitted before vanish. Once the bytes quota becomes limited (100/s), the
/// window then admits 100 more bytes in the same second: 200 against a
/// limit of 100.
#[test]
fn refused_call_keeps_earlier_usage() {
    let (m, _mock) = manager(Duration::from_secs(1), 10);
    let quotas = Quotas {
        max_messages_per_second: 10,
        ..Quotas::unlimited()
    };
    m.create_tenant("t", "T", quotas).unwrap();
    m.enforce_produce_quota("t", 100, 1).unwrap();
    let refused = m.enforce_produce_quota("t", u64::MAX, 1000).unwrap_err();
    assert_eq!(
        refused.as_quota_error().map(|e| e.quota_type),
        Some(QuotaType::MessagesPerSecond)
    );
    assert_eq!(
        m.get_usage("t").unwrap().bytes_per_second,
        100,
        "the refused call changed what was recorded"
    );
    assert_eq!(m.get_counters("t").unwrap().admitted_bytes, 100);
    m.update_tenant(
        "t",
        None,
        Some(Quotas {
            max_bytes_per_second: 100,
            ..quotas
        }),
    )
    .unwrap();
    assert!(
        m.enforce_produce_quota("t", 100, 1).is_err(),
        "admitted 200 bytes in one second on a 100 B/s quota"
    );
}

/// A refused call records nothing, and a rate window never admits past its limit.
///
/// `Quotas::validate` accepts rate quotas up to 2^39-1 per second, the most
/// one bucket holds. With a window longer than 1 s, `Geometry::window_limit`
/// scales the quota to a window limit above that (10 s x (2^39-1) here),
/// while `Window::try_admit` saturates the bucket's count at 2^39-1: every
/// admission after the bucket is full sees the same count and is admitted
/// again, without bound.
#[test]
fn long_window_never_admits_past_limit() {
    let (m, _mock) = manager(Duration::from_secs(10), 10);
    let quotas = Quotas {
        max_bytes_per_second: MAX_RATE_QUOTA,
        ..Quotas::unlimited()
    };
    m.create_tenant("t", "T", quotas).unwrap();
    let limit = 10 * MAX_RATE_QUOTA as u128; // per 10 s window
    let mut admitted = 0u128;
    for _ in 0..40 {
        if m.enforce_produce_quota("t", 1 << 40, 1).is_ok() {
            admitted += 1 << 40;
        }
    }
    assert!(
        admitted <= limit,
        "admitted {admitted} bytes in one 10 s window; the limit is {limit}"
    );
}

/// A refused call records nothing, the window's accuracy bound holds, and the "long idle periods never alias" promise of
/// `Window::restamp`.
///
/// After exactly 2^24 idle buckets (19.4 days of 100 ms), the slot holding
/// the last traffic (tick 5) has the same 24-bit stamp as the new head's
/// tick, so `Window::restamp` takes it for a slot archived after the jump
/// and leaves it; one tick later it ages to 1 and its 1000 bytes count
/// again. The window refuses a 500-byte call with 10 bytes in use, and
/// `get_usage` (which reads the slots differently) says 10.
#[test]
fn idle_for_2_pow_24_buckets_forgets_old_traffic() {
    let (m, mock) = manager(Duration::from_secs(1), 10);
    let quotas = Quotas {
        max_bytes_per_second: 1000,
        ..Quotas::unlimited()
    };
    m.create_tenant("t", "T", quotas).unwrap();
    mock.increment(Duration::from_millis(500));
    m.enforce_produce_quota("t", 1000, 1).unwrap(); // tick 5
    mock.increment(Duration::from_millis(100) * (1 << 24)); // tick 5 + 2^24
    m.enforce_produce_quota("t", 10, 1).unwrap();
    mock.increment(Duration::from_millis(100));
    assert_eq!(m.get_usage("t").unwrap().bytes_per_second, 10);
    match m.enforce_produce_quota("t", 500, 1) {
        Ok(()) => {}
        Err(Error::QuotaExceeded(e)) => panic!(
            "refused with 10 of 1000 bytes in use: current {} (the 1000 bytes of 19 days ago)",
            e.current
        ),
        Err(e) => panic!("{e}"),
    }
}

/// The serde boundary: a `Quotas` config names its fields, and a name
/// that does not exist is refused.
///
/// The derived `Deserialize` of `quotas::de::QuotasDe` also accepts a JSON
/// array, filling the fields by position: `[]` loads silently as
/// `Quotas::default()` and `[1048576, 10]` sets bytes/s and messages/s,
/// without a field name in sight. (The same holds for `Tenant` and `Usage`.)
#[cfg(feature = "serde")]
#[test]
fn quotas_json_must_be_an_object() {
    for text in ["[]", "[1048576, 10]"] {
        let parsed = serde_json::from_str::<Quotas>(text);
        assert!(parsed.is_err(), "{text} parsed as {parsed:?}");
    }
}

/// A refused `add_topic` leaves a saturated topic count as it was.
///
/// `add_topic` takes the topic, then the partitions, and gives the topic
/// back if the partitions are refused. With the count restored to
/// `u64::MAX` and topics unlimited, the take adds nothing (the count
/// saturates), but the give-back took one: the refusal left `u64::MAX - 1`
/// where the model, all or nothing, leaves `u64::MAX`. The give-back is now
/// what the take added.
#[test]
fn refused_topic_leaves_saturated_count() {
    let (m, _mock) = manager(Duration::from_secs(1), 10);
    let quotas = Quotas {
        max_partitions: 0,
        ..Quotas::unlimited()
    };
    m.create_tenant("t", "T", quotas).unwrap();
    let t = m.get_tracker("t").unwrap();
    t.restore_usage(&streambus_tenancy::HeldUsage {
        topics: u64::MAX,
        ..Default::default()
    });
    let refused = t.add_topic(1).unwrap_err();
    assert_eq!(
        refused.as_quota_error().map(|e| e.quota_type),
        Some(QuotaType::Partitions)
    );
    assert_eq!(t.get_usage().topics, u64::MAX);
    // Below saturation the give-back is the one topic taken.
    t.restore_usage(&streambus_tenancy::HeldUsage {
        topics: 5,
        ..Default::default()
    });
    assert!(t.add_topic(1).is_err());
    assert_eq!(t.get_usage().topics, 5);
}
