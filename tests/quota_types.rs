//! Every quota type: admitted up to its limit, refused past it with the right
//! type, current and limit, and a release makes room again.

use std::time::Duration;

use streambus_tenancy::{Error, Manager, QuotaError, QuotaType, Quotas, TenantStatus};

fn refusal(r: Result<(), Error>) -> QuotaError {
    match r {
        Err(Error::QuotaExceeded(e)) => e,
        other => panic!("expected QuotaExceeded, got {other:?}"),
    }
}

fn check(e: &QuotaError, q: QuotaType, current: i64, limit: i64) {
    assert_eq!(&*e.tenant_id, "t");
    assert_eq!(e.quota_type, q, "{e}");
    assert_eq!((e.current, e.limit), (current, limit), "{e}");
}

fn manager(quotas: Quotas) -> (Manager, std::sync::Arc<quanta::Mock>) {
    let (clock, mock) = quanta::Clock::mock();
    let m = Manager::builder().clock(clock).build();
    m.create_tenant("t", "Tenant", quotas).unwrap();
    (m, mock)
}

type Enforce = fn(&Manager, &str) -> Result<(), Error>;
type Release = fn(&Manager, &str);

#[test]
fn held_counts() {
    let cases: [(QuotaType, Enforce, Release); 4] = [
        (
            QuotaType::Connections,
            Manager::enforce_connection_quota,
            Manager::release_connection,
        ),
        (
            QuotaType::Producers,
            Manager::enforce_producer_quota,
            Manager::release_producer,
        ),
        (
            QuotaType::Consumers,
            Manager::enforce_consumer_quota,
            Manager::release_consumer,
        ),
        (
            QuotaType::ConsumerGroups,
            Manager::enforce_consumer_group_quota,
            Manager::release_consumer_group,
        ),
    ];
    for (q, enforce, release) in cases {
        let limit = 3;
        let mut quotas = Quotas::unlimited();
        match q {
            QuotaType::Connections => quotas.max_connections = limit,
            QuotaType::Producers => quotas.max_producers = limit,
            QuotaType::Consumers => quotas.max_consumers = limit,
            _ => quotas.max_consumer_groups = limit,
        }
        let (m, _) = manager(quotas);
        for _ in 0..limit {
            enforce(&m, "t").unwrap();
        }
        check(&refusal(enforce(&m, "t")), q, 3, 3);
        assert_eq!(refusal(enforce(&m, "t")).retry_after, None);
        release(&m, "t");
        enforce(&m, "t").unwrap();
        // Releasing more than is held stops at 0.
        for _ in 0..10 {
            release(&m, "t");
        }
        let held = |m: &Manager| {
            let u = m.get_usage("t").unwrap();
            [u.connections, u.producers, u.consumers, u.consumer_groups]
        };
        assert_eq!(held(&m), [0, 0, 0, 0], "{q}");
        enforce(&m, "t").unwrap();
        assert_eq!(held(&m).iter().sum::<u64>(), 1);
    }
}

#[test]
fn permits_release_on_drop() {
    let quotas = Quotas {
        max_connections: 1,
        max_producers: 1,
        max_consumers: 1,
        max_consumer_groups: 1,
        ..Quotas::unlimited()
    };
    let (m, _) = manager(quotas);
    let permits = [
        m.acquire_connection("t").unwrap(),
        m.acquire_producer("t").unwrap(),
        m.acquire_consumer("t").unwrap(),
        m.acquire_consumer_group("t").unwrap(),
    ];
    let kinds: Vec<_> = permits.iter().map(|p| p.quota_type()).collect();
    assert_eq!(
        kinds,
        [
            QuotaType::Connections,
            QuotaType::Producers,
            QuotaType::Consumers,
            QuotaType::ConsumerGroups
        ]
    );
    assert!(permits.iter().all(|p| p.tenant_id() == "t"));
    check(
        &refusal(m.acquire_connection("t").map(drop)),
        QuotaType::Connections,
        1,
        1,
    );
    check(
        &refusal(m.acquire_producer("t").map(drop)),
        QuotaType::Producers,
        1,
        1,
    );
    check(
        &refusal(m.acquire_consumer("t").map(drop)),
        QuotaType::Consumers,
        1,
        1,
    );
    check(
        &refusal(m.acquire_consumer_group("t").map(drop)),
        QuotaType::ConsumerGroups,
        1,
        1,
    );
    drop(permits);
    let u = m.get_usage("t").unwrap();
    assert_eq!(
        (u.connections, u.producers, u.consumers, u.consumer_groups),
        (0, 0, 0, 0)
    );
    let _again = m.acquire_connection("t").unwrap();
}

#[test]
fn topics_and_partitions_both_or_neither() {
    let (m, _) = manager(Quotas {
        max_topics: 3,
        max_partitions: 10,
        ..Quotas::unlimited()
    });
    m.enforce_topic_quota("t", 4).unwrap();
    m.enforce_topic_quota("t", 4).unwrap();
    // The topic fits, the partitions do not: neither is taken.
    check(
        &refusal(m.enforce_topic_quota("t", 3)),
        QuotaType::Partitions,
        8,
        10,
    );
    let u = m.get_usage("t").unwrap();
    assert_eq!((u.topics, u.partitions), (2, 8));
    m.enforce_topic_quota("t", 2).unwrap();
    check(
        &refusal(m.enforce_topic_quota("t", 0)),
        QuotaType::Topics,
        3,
        3,
    );
    m.release_topic("t", 4);
    m.enforce_topic_quota("t", 4).unwrap();
    let u = m.get_usage("t").unwrap();
    assert_eq!((u.topics, u.partitions), (3, 10));
    m.release_topic("t", u32::MAX);
    let u = m.get_usage("t").unwrap();
    assert_eq!((u.topics, u.partitions), (2, 0));
}

#[test]
fn storage_is_reported_then_checked() {
    let (m, _) = manager(Quotas {
        max_storage_bytes: 1000,
        ..Quotas::unlimited()
    });
    m.enforce_storage_quota("t", 1000).unwrap();
    m.update_storage_usage("t", 600).unwrap();
    m.enforce_storage_quota("t", 400).unwrap();
    check(
        &refusal(m.enforce_storage_quota("t", 401)),
        QuotaType::Storage,
        600,
        1000,
    );
    assert_eq!(m.get_usage("t").unwrap().storage_bytes, 600);
    // Checking records nothing; a new report replaces the old one.
    m.update_storage_usage("t", 100).unwrap();
    m.enforce_storage_quota("t", 900).unwrap();
    check(
        &refusal(m.enforce_storage_quota("t", u64::MAX)),
        QuotaType::Storage,
        100,
        1000,
    );
}

#[test]
fn retention_is_a_ceiling() {
    let (m, _) = manager(Quotas {
        max_retention_hours: 168,
        ..Quotas::unlimited()
    });
    m.enforce_retention_quota("t", 0).unwrap();
    m.enforce_retention_quota("t", 168).unwrap();
    check(
        &refusal(m.enforce_retention_quota("t", 169)),
        QuotaType::RetentionHours,
        169,
        168,
    );
    check(
        &refusal(m.enforce_retention_quota("t", u64::MAX)),
        QuotaType::RetentionHours,
        i64::MAX,
        168,
    );
}

#[test]
fn rate_types() {
    let (m, mock) = manager(Quotas {
        max_bytes_per_second: 100,
        max_messages_per_second: 10,
        max_requests_per_second: 5,
        ..Quotas::unlimited()
    });
    m.enforce_produce_quota("t", 100, 1).unwrap();
    let e = refusal(m.enforce_produce_quota("t", 1, 1));
    check(&e, QuotaType::BytesPerSecond, 100, 100);
    assert_eq!(e.retry_after, Some(Duration::from_secs(1)));
    mock.increment(Duration::from_secs(1));
    m.enforce_consume_quota("t", 0, 10).unwrap();
    check(
        &refusal(m.enforce_consume_quota("t", 0, 1)),
        QuotaType::MessagesPerSecond,
        10,
        10,
    );
    for _ in 0..4 {
        m.enforce_request_quota("t").unwrap();
    }
    check(
        &refusal(m.enforce_request_quota("t")),
        QuotaType::RequestsPerSecond,
        5,
        5,
    );
}

#[test]
fn connection_creation_rate() {
    // 3 connections opened per second (a 1 s window of 10 buckets), at most
    // 2 held at once.
    let (m, mock) = manager(Quotas {
        max_connection_creation_rate: 3,
        max_connections: 2,
        ..Quotas::unlimited()
    });
    let t = m.get_tracker("t").unwrap();
    m.enforce_connection_quota("t").unwrap();
    let permit = m.acquire_connection("t").unwrap();
    // The count refuses the third: its opening is taken back.
    check(&refusal(t.add_connection()), QuotaType::Connections, 2, 2);
    assert_eq!(m.get_usage("t").unwrap().connection_creation_rate, 2);
    drop(permit);
    mock.increment(Duration::from_millis(250));
    t.add_connection().unwrap();
    m.release_connection("t");
    m.release_connection("t");
    // Three opened in this window: a fourth is refused by the rate, however
    // few are held, until the first bucket's two openings leave the window.
    let e = refusal(m.enforce_connection_quota("t"));
    check(&e, QuotaType::ConnectionCreationRate, 3, 3);
    assert_eq!(e.retry_after, Some(Duration::from_millis(750)));
    assert!(m.acquire_connection("t").is_err());
    assert_eq!(m.get_usage("t").unwrap().connections, 0);
    assert_eq!(
        m.get_counters("t")
            .unwrap()
            .refused(QuotaType::ConnectionCreationRate),
        2
    );
    mock.increment(e.retry_after.unwrap());
    t.add_connection().unwrap();
    m.enforce_connection_quota("t").unwrap();
    // The rate is checked first: three opened in the window again.
    check(
        &refusal(t.add_connection()),
        QuotaType::ConnectionCreationRate,
        3,
        3,
    );
    assert_eq!(m.get_usage("t").unwrap().connection_creation_rate, 3);
    // A zero rate opens nothing and says it never will.
    let mut quotas = m.get_tenant("t").unwrap().quotas;
    quotas.max_connection_creation_rate = 0;
    m.update_tenant("t", None, Some(quotas)).unwrap();
    m.release_connection("t");
    let e = refusal(m.enforce_connection_quota("t"));
    check(&e, QuotaType::ConnectionCreationRate, 3, 0);
    assert_eq!(e.retry_after, None);
}

#[test]
fn zero_allows_nothing_and_unlimited_everything() {
    let zero = Quotas::from_fn(|_| 0);
    let (m, _) = manager(zero);
    assert!(m.enforce_produce_quota("t", 1, 1).is_err());
    assert!(m.enforce_request_quota("t").is_err());
    assert!(m.enforce_connection_quota("t").is_err());
    assert!(m.enforce_topic_quota("t", 0).is_err());
    assert!(m.enforce_storage_quota("t", 1).is_err());
    assert!(m.enforce_retention_quota("t", 1).is_err());
    m.enforce_retention_quota("t", 0).unwrap();
    m.enforce_storage_quota("t", 0).unwrap();

    let (m, _) = manager(Quotas::unlimited());
    for _ in 0..1000 {
        m.enforce_produce_quota("t", u64::MAX / 2, u64::MAX / 2)
            .unwrap();
        m.enforce_connection_quota("t").unwrap();
        m.enforce_topic_quota("t", u32::MAX).unwrap();
    }
    m.enforce_storage_quota("t", u64::MAX).unwrap();
    m.enforce_retention_quota("t", u64::MAX).unwrap();
    let u = m.get_usage("t").unwrap();
    assert_eq!(u.connections, 1000);
    assert_eq!(u.partitions, 1000 * u64::from(u32::MAX));
}

#[test]
fn lowering_a_count_quota_keeps_what_is_held() {
    let (m, _) = manager(Quotas {
        max_connections: 5,
        ..Quotas::unlimited()
    });
    for _ in 0..5 {
        m.enforce_connection_quota("t").unwrap();
    }
    m.update_tenant(
        "t",
        None,
        Some(Quotas {
            max_connections: 2,
            ..Quotas::unlimited()
        }),
    )
    .unwrap();
    assert_eq!(m.get_usage("t").unwrap().connections, 5);
    check(
        &refusal(m.enforce_connection_quota("t")),
        QuotaType::Connections,
        5,
        2,
    );
    for _ in 0..3 {
        m.release_connection("t");
    }
    // Usage is now at the limit: still no room until it falls below.
    assert!(m.enforce_connection_quota("t").is_err());
    m.release_connection("t");
    m.enforce_connection_quota("t").unwrap();
}

#[test]
fn utilization_of_every_limited_quota() {
    let (m, mock) = manager(Quotas {
        max_connections: 4,
        max_storage_bytes: 1000,
        max_bytes_per_second: 200,
        max_topics: 0,
        ..Quotas::unlimited()
    });
    m.enforce_connection_quota("t").unwrap();
    m.update_storage_usage("t", 900).unwrap();
    m.enforce_produce_quota("t", 50, 1).unwrap();
    let u = m.get_utilization("t").unwrap();
    let keys: Vec<&str> = u.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "bytes_per_second",
            "connection_creation_rate",
            "connections",
            "consumer_groups",
            "consumers",
            "messages_per_second",
            "partitions",
            "producers",
            "requests_per_second",
            "storage",
            "topics"
        ]
    );
    assert_eq!(u["connections"], 25.0);
    assert_eq!(u["storage"], 90.0);
    assert_eq!(u["bytes_per_second"], 25.0);
    assert_eq!(u["producers"], 0.0); // unlimited
    assert_eq!(u["topics"], 0.0); // zero quota, nothing in use
    let t = m.get_tracker("t").unwrap();
    assert_eq!(t.utilization_percent("storage"), 90.0);
    assert_eq!(t.utilization_percent("no_such_quota"), 0.0);
    mock.increment(Duration::from_secs(1));
    assert_eq!(m.get_utilization("t").unwrap()["bytes_per_second"], 0.0);
}

#[test]
fn counters_track_admissions_and_refusals() {
    let (m, mock) = manager(Quotas {
        max_bytes_per_second: 1000,
        max_connections: 1,
        ..Quotas::unlimited()
    });
    for _ in 0..25 {
        mock.increment(Duration::from_millis(70));
        let _ = m.enforce_produce_quota("t", 100, 2);
    }
    m.enforce_connection_quota("t").unwrap();
    assert!(m.enforce_connection_quota("t").is_err());
    m.suspend_tenant("t").unwrap();
    assert!(m.enforce_request_quota("t").is_err());
    let c = m.get_counters("t").unwrap();
    let refused_bytes = c.refused(QuotaType::BytesPerSecond);
    assert_eq!(c.admitted_bytes, (25 - refused_bytes) * 100);
    assert_eq!(c.admitted_messages, (25 - refused_bytes) * 2);
    assert_eq!(c.admitted_requests, 25 - refused_bytes);
    assert_eq!(c.refused(QuotaType::Connections), 1);
    assert_eq!(c.refused_not_active, 1);
    assert_eq!(m.get_tenant("t").unwrap().status, TenantStatus::Suspended);
}

/// The one declaration of the quota types: every shape derived from it
/// agrees with the others.
#[test]
fn the_declaration_is_consistent() {
    use streambus_tenancy::{QuotaKind, Usage};
    assert_eq!(QuotaType::ALL.len(), QuotaType::COUNT);
    let mut q = Quotas::unlimited();
    let mut usage = Usage::default();
    for (i, t) in QuotaType::ALL.into_iter().enumerate() {
        assert_eq!(t.index(), i);
        assert_eq!(QuotaType::parse(t.as_str()), Some(t));
        assert_eq!(
            t.field_name(),
            format!("max_{}", t.as_str()).replace("max_storage", "max_storage_bytes")
        );
        // The Go name is the field's in CamelCase.
        let camel: String = t
            .field_name()
            .split('_')
            .map(|w| w[..1].to_uppercase() + &w[1..])
            .collect();
        assert_eq!(t.go_name(), camel);
        assert_eq!(t.is_rate(), t.kind() == QuotaKind::Rate, "{t}");
        assert!(!t.description().is_empty());
        // get and set reach one field each, in declaration order.
        q.set(t, i as i64);
        assert_eq!(q.get(t), i as i64);
        // Usage has a value for every type but the ceiling.
        assert_eq!(t.has_usage(), t.kind() != QuotaKind::Ceiling, "{t}");
        usage.set(t, 100 + i as u64);
        assert_eq!(usage.get(t), t.has_usage().then_some(100 + i as u64), "{t}");
    }
    let values: Vec<i64> = q.iter().map(|(_, v)| v).collect();
    assert_eq!(values, (0..QuotaType::COUNT as i64).collect::<Vec<_>>());
    assert_eq!(Quotas::from_fn(|t| q.get(t)), q);
}

/// Serde reads both names of every field, and writes the declared ones.
#[cfg(feature = "serde")]
#[test]
fn the_declaration_drives_serde() {
    for t in QuotaType::ALL {
        for name in [t.field_name(), t.go_name()] {
            let json = format!("{{\"{name}\": 7}}");
            let read: Quotas = serde_json::from_str(&json).unwrap();
            assert_eq!(read.get(t), 7, "{name}");
            let mut expected = Quotas::default();
            expected.set(t, 7);
            assert_eq!(read, expected, "{name}");
        }
    }
    let json = serde_json::to_value(Quotas::default()).unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut declared: Vec<&str> = QuotaType::ALL.iter().map(|t| t.field_name()).collect();
    keys.sort_unstable();
    declared.sort_unstable();
    assert_eq!(keys, declared);
}
