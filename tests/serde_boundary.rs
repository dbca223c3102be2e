//! Serde at the boundary: the JSON every public data type writes,
//! the configs `Quotas` reads (snake_case or the seed's Go names, in JSON or
//! TOML), what is refused and how the refusal reads, and round trips.

#![cfg(feature = "serde")]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use streambus_tenancy::{
    Error, HeldUsage, Manager, QuotaError, QuotaType, Quotas, Tenant, TenantStatus, Usage,
    MAX_RATE_QUOTA,
};

/// The wire names, written out (not taken from the declaration) so that a
/// renamed field fails here; in declaration order.
const QUOTA_FIELDS: [&str; 12] = [
    "max_bytes_per_second",
    "max_messages_per_second",
    "max_requests_per_second",
    "max_storage_bytes",
    "max_topics",
    "max_partitions",
    "max_connections",
    "max_producers",
    "max_consumers",
    "max_consumer_groups",
    "max_retention_hours",
    "max_connection_creation_rate",
];

const GO_FIELDS: [&str; 12] = [
    "MaxBytesPerSecond",
    "MaxMessagesPerSecond",
    "MaxRequestsPerSecond",
    "MaxStorageBytes",
    "MaxTopics",
    "MaxPartitions",
    "MaxConnections",
    "MaxProducers",
    "MaxConsumers",
    "MaxConsumerGroups",
    "MaxRetentionHours",
    "MaxConnectionCreationRate",
];

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

fn sorted<const N: usize>(names: [&'static str; N]) -> Vec<&'static str> {
    let mut v = names.to_vec();
    v.sort_unstable();
    v
}

fn parse_quotas(text: &str) -> Result<Quotas, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// A quota set with every field different, so a field swapped with another
/// cannot go unnoticed.
fn distinct() -> Quotas {
    Quotas::from_fn(|q| q.index() as i64 + 1)
}

fn tenant() -> Tenant {
    Tenant {
        id: "acme-corp".into(),
        name: "ACME Corporation".into(),
        description: "the usual".into(),
        created_at: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        updated_at: UNIX_EPOCH + Duration::from_millis(1_700_000_123_250),
        quotas: distinct(),
        metadata: BTreeMap::from([("tier".to_string(), "pro".to_string())]),
        status: TenantStatus::Suspended,
    }
}

// ----- what each type writes --------------------------------------------------

#[test]
fn quotas_serialize_snake_case_and_round_trip() {
    let v = serde_json::to_value(distinct()).unwrap();
    assert_eq!(keys(&v), sorted(QUOTA_FIELDS));
    for (i, field) in QUOTA_FIELDS.iter().enumerate() {
        assert_eq!(v[field], json!(i + 1), "{field}");
    }
    for q in [
        distinct(),
        Quotas::default(),
        Quotas::unlimited(),
        Quotas::free_tier(),
        Quotas::pro_tier(),
        Quotas::enterprise_tier(),
        Quotas {
            max_bytes_per_second: MAX_RATE_QUOTA,
            max_storage_bytes: i64::MAX,
            max_topics: 0,
            ..Quotas::unlimited()
        },
    ] {
        let text = serde_json::to_string(&q).unwrap();
        assert_eq!(parse_quotas(&text), Ok(q), "{text}");
        let toml_text = toml::to_string(&q).unwrap();
        assert_eq!(toml::from_str::<Quotas>(&toml_text), Ok(q), "{toml_text}");
    }
}

#[test]
fn status_and_quota_type_are_snake_case_strings() {
    for (s, text) in [
        (TenantStatus::Active, "\"active\""),
        (TenantStatus::Suspended, "\"suspended\""),
        (TenantStatus::Deleted, "\"deleted\""),
    ] {
        assert_eq!(serde_json::to_string(&s).unwrap(), text);
        assert_eq!(serde_json::from_str::<TenantStatus>(text).unwrap(), s);
    }
    for q in QuotaType::ALL {
        let text = serde_json::to_string(&q).unwrap();
        assert_eq!(text, format!("\"{}\"", q.as_str()));
        assert_eq!(serde_json::from_str::<QuotaType>(&text).unwrap(), q);
    }
    for bad in [
        "\"Active\"",
        "\"ACTIVE\"",
        "\"paused\"",
        "0",
        "null",
        "\"\"",
    ] {
        assert!(serde_json::from_str::<TenantStatus>(bad).is_err(), "{bad}");
    }
    for bad in ["\"BytesPerSecond\"", "\"bytes\"", "1"] {
        assert!(serde_json::from_str::<QuotaType>(bad).is_err(), "{bad}");
    }
}

#[test]
fn tenant_serializes_snake_case_and_round_trips() {
    let t = tenant();
    let v = serde_json::to_value(&t).unwrap();
    assert_eq!(
        keys(&v),
        sorted([
            "id",
            "name",
            "description",
            "created_at",
            "updated_at",
            "quotas",
            "metadata",
            "status"
        ])
    );
    assert_eq!(v["status"], "suspended");
    assert_eq!(v["created_at"], json!(1_700_000_000.0));
    assert_eq!(v["updated_at"], json!(1_700_000_123.25));
    assert_eq!(keys(&v["quotas"]), sorted(QUOTA_FIELDS));
    let back: Tenant = serde_json::from_value(v).unwrap();
    assert_eq!(back, t);
}

#[test]
fn tenant_from_the_engine_round_trips_to_the_microsecond() {
    // Timestamps travel as f64 seconds: about 0.2 µs of resolution today,
    // so a `SystemTime::now()` with nanoseconds comes back within a
    // microsecond, and what came back is then stable.
    let m = Manager::new();
    let t = m.create_tenant("t", "T", Quotas::free_tier()).unwrap();
    let once: Tenant = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
    let twice: Tenant = serde_json::from_str(&serde_json::to_string(&once).unwrap()).unwrap();
    assert_eq!(twice, once);
    let diff = |a: SystemTime, b: SystemTime| {
        a.duration_since(b)
            .unwrap_or_else(|e| e.duration())
            .as_nanos()
    };
    assert!(diff(once.created_at, t.created_at) < 1_000);
    assert!(diff(once.updated_at, t.updated_at) < 1_000);
    assert_eq!(
        (once.id, once.name, once.quotas, once.status),
        (t.id, t.name, t.quotas, t.status)
    );
}

#[test]
fn usage_serializes_snake_case_and_round_trips() {
    let u = Usage {
        tenant_id: "t".into(),
        connections: 1,
        producers: 2,
        consumers: 3,
        consumer_groups: 4,
        topics: 5,
        partitions: 6,
        storage_bytes: u64::MAX,
        bytes_per_second: 8,
        messages_per_second: 9,
        requests_per_second: 10,
        connection_creation_rate: 11,
    };
    let v = serde_json::to_value(&u).unwrap();
    assert_eq!(
        keys(&v),
        sorted([
            "tenant_id",
            "connections",
            "producers",
            "consumers",
            "consumer_groups",
            "topics",
            "partitions",
            "storage_bytes",
            "bytes_per_second",
            "messages_per_second",
            "requests_per_second",
            "connection_creation_rate"
        ])
    );
    assert_eq!(v["storage_bytes"], json!(u64::MAX));
    assert_eq!(serde_json::from_value::<Usage>(v).unwrap(), u);
}

#[test]
fn held_usage_serializes_snake_case_and_refuses_missing_or_unknown_fields() {
    let h = HeldUsage {
        connections: 1,
        producers: 2,
        consumers: 3,
        consumer_groups: 4,
        topics: 5,
        partitions: 6,
        storage_bytes: u64::MAX,
    };
    let v = serde_json::to_value(h).unwrap();
    assert_eq!(
        keys(&v),
        sorted([
            "connections",
            "producers",
            "consumers",
            "consumer_groups",
            "topics",
            "partitions",
            "storage_bytes"
        ])
    );
    assert_eq!(serde_json::from_value::<HeldUsage>(v.clone()).unwrap(), h);

    let mut missing = v.clone();
    missing.as_object_mut().unwrap().remove("partitions");
    let err = serde_json::from_value::<HeldUsage>(missing)
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing field `partitions`"), "{err}");
    let mut misspelt = v;
    misspelt["topic"] = json!(1);
    let err = serde_json::from_value::<HeldUsage>(misspelt)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `topic`"), "{err}");
}

#[test]
fn tenant_stats_serialize_snake_case() {
    let m = Manager::new();
    m.create_tenant("t", "T", Quotas::default()).unwrap();
    let _conn = m.acquire_connection("t").unwrap();
    let stats = m.get_tenant_stats("t").unwrap();
    let v = serde_json::to_value(&stats).unwrap();
    assert_eq!(keys(&v), ["tenant", "usage", "utilization"]);
    assert_eq!(v["tenant"]["id"], "t");
    assert_eq!(v["usage"]["connections"], 1);
    assert_eq!(v["utilization"]["connections"], json!(1.0));
    let util = keys(&v["utilization"]);
    assert_eq!(
        util,
        sorted([
            "bytes_per_second",
            "messages_per_second",
            "requests_per_second",
            "storage",
            "topics",
            "partitions",
            "connections",
            "producers",
            "consumers",
            "consumer_groups",
            "connection_creation_rate"
        ])
    );
}

#[test]
fn quota_error_serializes_snake_case() {
    let e = QuotaError {
        tenant_id: Arc::from("t"),
        quota_type: QuotaType::BytesPerSecond,
        current: 900,
        limit: 1000,
        retry_after: Some(Duration::from_micros(1500)),
    };
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(
        v,
        json!({
            "tenant_id": "t",
            "quota_type": "bytes_per_second",
            "current": 900,
            "limit": 1000,
            "retry_after_ms": 1.5,
        })
    );
    let never = QuotaError {
        retry_after: None,
        ..e.clone()
    };
    assert_eq!(
        serde_json::to_value(&never).unwrap()["retry_after_ms"],
        Value::Null
    );
    // The enum wraps it with a snake_case kind.
    let v = serde_json::to_value(Error::QuotaExceeded(e)).unwrap();
    assert_eq!(v["kind"], "quota_exceeded");
    assert_eq!(v["detail"]["quota_type"], "bytes_per_second");
    let v = serde_json::to_value(Error::TenantNotActive {
        id: "t".into(),
        status: TenantStatus::Suspended,
    })
    .unwrap();
    assert_eq!(
        v,
        json!({"kind": "tenant_not_active", "detail": {"id": "t", "status": "suspended"}})
    );
}

// ----- what Quotas reads ------------------------------------------------------

#[test]
fn go_field_names_load_unchanged() {
    let go: serde_json::Map<String, Value> = GO_FIELDS
        .iter()
        .enumerate()
        .map(|(i, f)| (f.to_string(), json!(i + 1)))
        .collect();
    let text = Value::Object(go).to_string();
    assert_eq!(parse_quotas(&text), Ok(distinct()));
    // The seed's free tier, as a Go config would write it.
    let seed = r#"{"MaxBytesPerSecond": 1048576, "MaxMessagesPerSecond": 1000,
        "MaxStorageBytes": 10737418240, "MaxTopics": 10, "MaxPartitions": 50,
        "MaxConnections": 10, "MaxProducers": 5, "MaxConsumers": 10}"#;
    assert_eq!(parse_quotas(seed), Ok(Quotas::free_tier()));
    // Mixed spellings, and TOML.
    let mixed = r#"{"MaxTopics": 4, "max_partitions": 5}"#;
    let q = parse_quotas(mixed).unwrap();
    assert_eq!((q.max_topics, q.max_partitions), (4, 5));
    let q: Quotas = toml::from_str("MaxTopics = 4\nmax_partitions = 5\n").unwrap();
    assert_eq!((q.max_topics, q.max_partitions), (4, 5));
    let tiers: BTreeMap<String, Quotas> =
        toml::from_str("[free]\nMaxTopics = 10\n[pro]\nmax_topics = 500\n").unwrap();
    assert_eq!(tiers["free"].max_topics, 10);
    assert_eq!(tiers["pro"].max_topics, 500);
}

#[test]
fn omitted_fields_take_the_default() {
    assert_eq!(parse_quotas("{}"), Ok(Quotas::default()));
    for (i, field) in QUOTA_FIELDS.iter().enumerate() {
        let q = parse_quotas(&format!(r#"{{"{field}": -1}}"#)).unwrap();
        let mut expected = serde_json::to_value(Quotas::default()).unwrap();
        expected[field] = json!(-1);
        assert_eq!(serde_json::to_value(q).unwrap(), expected, "{field}");
        let go = GO_FIELDS[i];
        assert_eq!(parse_quotas(&format!(r#"{{"{go}": -1}}"#)), Ok(q), "{go}");
    }
    assert_eq!(toml::from_str::<Quotas>(""), Ok(Quotas::default()));
}

#[test]
fn values_below_minus_one_are_refused_naming_the_field() {
    for (i, field) in QUOTA_FIELDS.iter().enumerate() {
        for v in [-2i64, -100, i64::MIN] {
            for name in [*field, GO_FIELDS[i]] {
                let err = parse_quotas(&format!(r#"{{"{name}": {v}}}"#)).unwrap_err();
                assert!(
                    err.contains(field) && err.contains(&v.to_string()),
                    "{name} = {v}: {err}"
                );
            }
        }
        // -1 and 0 are fine.
        assert!(parse_quotas(&format!(r#"{{"{field}": 0}}"#)).is_ok());
    }
    let err = toml::from_str::<Quotas>("MaxTopics = -5")
        .unwrap_err()
        .to_string();
    assert!(err.contains("max_topics"), "{err}");
}

#[test]
fn rate_quotas_above_the_window_capacity_are_refused_naming_the_field() {
    for field in [
        "max_bytes_per_second",
        "max_messages_per_second",
        "max_requests_per_second",
    ] {
        let ok = parse_quotas(&format!(r#"{{"{field}": {MAX_RATE_QUOTA}}}"#));
        assert!(ok.is_ok(), "{field}: {ok:?}");
        for v in [MAX_RATE_QUOTA + 1, i64::MAX] {
            let err = parse_quotas(&format!(r#"{{"{field}": {v}}}"#)).unwrap_err();
            assert!(err.contains(field), "{field} = {v}: {err}");
        }
    }
    // Count and size quotas take any non-negative i64.
    assert!(parse_quotas(&format!(r#"{{"max_storage_bytes": {}}}"#, i64::MAX)).is_ok());
}

#[test]
fn unknown_fields_are_refused_naming_them() {
    for name in [
        "max_topic",
        "MaxTopic",
        "maxTopics",
        "max-topics",
        "MAX_TOPICS",
        "",
        "max_bytes_per_second ",
    ] {
        let text = json!({ name: 1 }).to_string();
        let err = parse_quotas(&text).unwrap_err();
        assert!(err.contains(&format!("`{name}`")), "{name:?}: {err}");
    }
    let err = toml::from_str::<Quotas>("max_topic = 1")
        .unwrap_err()
        .to_string();
    assert!(err.contains("max_topic"), "{err}");
}

#[test]
fn malformed_values_and_shapes_are_refused() {
    for text in [
        r#"{"max_topics": 1.5}"#,
        r#"{"max_topics": "5"}"#,
        r#"{"max_topics": null}"#,
        r#"{"max_topics": true}"#,
        r#"{"max_topics": [5]}"#,
        r#"{"max_topics": 9223372036854775808}"#,
        r#"{"max_topics": -9223372036854775809}"#,
        r#"{"max_topics": 1e3}"#,
        r#"{"max_topics": 5, "max_topics": 6}"#,
        r#"{"max_topics": 5, "MaxTopics": 6}"#,
        "[-2]",
        "null",
        "5",
        "\"quotas\"",
        "",
        "{",
        r#"{"max_topics": 5,}"#,
    ] {
        let err = parse_quotas(text).unwrap_err();
        assert!(!err.is_empty(), "{text}");
    }
    let dup = parse_quotas(r#"{"max_topics": 5, "MaxTopics": 6}"#).unwrap_err();
    assert!(dup.contains("max_topics"), "{dup}");
}

#[test]
fn tenants_read_with_defaults_and_refuse_bad_timestamps() {
    let t: Tenant = serde_json::from_value(json!({
        "id": "a", "name": "A", "created_at": 0, "updated_at": 1e12,
        "quotas": {"MaxTopics": 3}, "status": "active",
    }))
    .unwrap();
    assert_eq!(t.description, "");
    assert!(t.metadata.is_empty());
    assert_eq!(t.quotas.max_topics, 3);
    assert_eq!(t.quotas.max_partitions, Quotas::default().max_partitions);
    for (field, v) in [
        ("created_at", json!(-1)),
        ("created_at", json!(1e13)),
        ("updated_at", json!("yesterday")),
        ("status", json!("paused")),
        ("quotas", json!({"max_topics": -2})),
        ("id", json!(5)),
    ] {
        let mut doc = json!({
            "id": "a", "name": "A", "created_at": 1, "updated_at": 2,
            "quotas": {}, "status": "active",
        });
        doc[field] = v;
        let err = serde_json::from_value::<Tenant>(doc)
            .unwrap_err()
            .to_string();
        assert!(!err.is_empty(), "{field}");
    }
    for missing in ["id", "name", "created_at", "updated_at", "quotas", "status"] {
        let mut doc = json!({
            "id": "a", "name": "A", "created_at": 1, "updated_at": 2,
            "quotas": {}, "status": "active",
        });
        doc.as_object_mut().unwrap().remove(missing);
        let err = serde_json::from_value::<Tenant>(doc)
            .unwrap_err()
            .to_string();
        assert!(err.contains(missing), "{missing}: {err}");
    }
}

#[test]
fn a_parsed_tenant_with_a_bad_id_or_name_is_refused_by_the_engine() {
    let m = Manager::new();
    for (id, name, code) in [
        ("", "A", "invalid_tenant_id"),
        ("a b", "A", "invalid_tenant_id"),
        ("a", "", "invalid_name"),
        ("a", "bell\u{7}", "invalid_name"),
    ] {
        let t: Tenant = serde_json::from_value(json!({
            "id": id, "name": name, "created_at": 1, "updated_at": 2,
            "quotas": {}, "status": "active",
        }))
        .unwrap();
        assert_eq!(m.restore(t).unwrap_err().code(), code, "{id:?} {name:?}");
    }
    let deleted: Tenant = serde_json::from_value(json!({
        "id": "a", "name": "A", "created_at": 1, "updated_at": 2,
        "quotas": {}, "status": "deleted",
    }))
    .unwrap();
    assert_eq!(m.restore(deleted).unwrap_err().code(), "invalid_config");
}
