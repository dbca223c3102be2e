//! The Redis store against real `redis-server` processes: every field round
//! trips, racing creates of one id have one winner, concurrent updates lose
//! nothing, the change stream's versions only increase, a newer schema is
//! refused, and bad URLs, passwords and stored data get clear errors.
#![cfg(feature = "cluster")]

mod redis_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use redis_support::{tenant, RedisServer};
use streambus_tenancy::server::{RedisStore, Store, StoreErrorKind};
use streambus_tenancy::{Quotas, Tenant, TenantStatus};

const CHANGES: &str = "{streambus-tenancy}:changes";
const TENANTS: &str = "{streambus-tenancy}:tenants";
const SCHEMA: &str = "{streambus-tenancy}:schema";

/// Every stream entry as (stream ID, fields).
fn stream(redis: &RedisServer) -> Vec<(String, BTreeMap<String, String>)> {
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(CHANGES)
        .arg("-")
        .arg("+")
        .query(&mut redis.conn())
        .unwrap();
    reply
        .ids
        .into_iter()
        .map(|e| {
            let fields = e
                .map
                .iter()
                .map(|(k, v)| (k.clone(), redis::from_redis_value_ref::<String>(v).unwrap()))
                .collect();
            (e.id, fields)
        })
        .collect()
}

#[test]
fn every_field_round_trips_exactly() {
    let redis = RedisServer::start();
    let mut store = RedisStore::open(&redis.url()).unwrap();
    assert_eq!(store.load_all().unwrap(), vec![]);
    // Distinct values, so a field stored under another's name shows.
    let quotas = Quotas::from_fn(|q| 1_000_001 + q.index() as i64);
    let a = Tenant {
        id: "acme.prod-1_x".into(),
        name: "Acme \"Prod\" ünïcode".into(),
        description: "line one\nline two\ttab".into(),
        created_at: UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789),
        updated_at: UNIX_EPOCH + Duration::new(1_700_000_500, 987_654_321),
        quotas,
        metadata: [
            ("team".to_string(), "payments".to_string()),
            ("quote\"key".to_string(), "{not: json}".to_string()),
        ]
        .into(),
        status: TenantStatus::Active,
    };
    store.insert(&a).unwrap();
    let mut b = a.clone();
    b.name = "renamed".into();
    b.status = TenantStatus::Suspended;
    b.updated_at += Duration::from_nanos(1);
    store.update(&b).unwrap();
    Box::new(store).close().unwrap();

    let mut store = RedisStore::open(&redis.url()).unwrap();
    assert_eq!(store.load_all().unwrap(), vec![b.clone()]);
    assert_eq!(store.get(&b.id).unwrap(), Some((b.clone(), 2)));
    assert_eq!(store.insert(&a).unwrap_err().kind(), StoreErrorKind::Exists);
    store.delete(&b.id).unwrap();
    assert_eq!(store.load_all().unwrap(), vec![]);
    let e = store.delete(&b.id).unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::NotStored, "{e}");
    let e = store.update(&b).unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::NotStored, "{e}");
}

#[test]
fn of_racing_creates_of_one_id_exactly_one_wins() {
    const THREADS: usize = 8;
    const ROUNDS: usize = 10;
    let redis = RedisServer::start();
    let url = redis.url();
    let results = redis_support::race_creates(|_| url.clone(), THREADS, ROUNDS);
    let mut store = RedisStore::open(&url).unwrap();
    redis_support::assert_one_winner_per_round(&results, &mut store);
    assert_eq!(stream(&redis).len(), ROUNDS, "one stream entry per winner");
}

#[test]
fn concurrent_updates_of_one_tenant_lose_nothing() {
    const THREADS: usize = 4;
    const EACH: i64 = 25;
    let redis = RedisServer::start();
    let url = redis.url();
    let mut t = tenant("counted");
    t.quotas.max_topics = 1;
    RedisStore::open(&url).unwrap().insert(&t).unwrap();
    let conflicts: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let url = url.clone();
                s.spawn(move || {
                    let mut store = RedisStore::open(&url).unwrap();
                    let mut conflicts = 0;
                    for _ in 0..EACH {
                        loop {
                            // Read, add one, write back expecting what was read.
                            let (mut t, _) = store.get("counted").unwrap().unwrap();
                            t.quotas.max_topics += 1;
                            match store.update(&t) {
                                Ok(()) => break,
                                Err(e) if e.kind() == StoreErrorKind::Changed => conflicts += 1,
                                Err(e) => panic!("{e}"),
                            }
                        }
                    }
                    conflicts
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let (t, version) = RedisStore::open(&url)
        .unwrap()
        .get("counted")
        .unwrap()
        .unwrap();
    assert_eq!(t.quotas.max_topics, 1 + THREADS as i64 * EACH);
    assert_eq!(version, 1 + (THREADS as u64) * EACH as u64);
    assert_eq!(stream(&redis).len() as u64, version);
    eprintln!("{conflicts} conflicting updates were refused and retried");
}

#[test]
fn stream_versions_increase_by_one_and_carry_each_change() {
    let redis = RedisServer::start();
    let mut store = RedisStore::open(&redis.url()).unwrap();
    let a = tenant("a");
    store.insert(&a).unwrap();
    store.insert(&tenant("b")).unwrap();
    let mut a2 = a.clone();
    a2.status = TenantStatus::Suspended;
    store.update(&a2).unwrap();
    store.delete("b").unwrap();
    let entries = stream(&redis);
    let ops: Vec<(&str, &str)> = entries
        .iter()
        .map(|(_, f)| (f["op"].as_str(), f["id"].as_str()))
        .collect();
    assert_eq!(
        ops,
        [
            ("create", "a"),
            ("create", "b"),
            ("update", "a"),
            ("delete", "b")
        ]
    );
    let mut last_ms = 0;
    for (i, (id, f)) in entries.iter().enumerate() {
        let version = i as u64 + 1;
        assert_eq!(id, &format!("{version}-0"));
        assert_eq!(f["version"], version.to_string());
        let at_ms: u64 = f["at_ms"].parse().unwrap();
        assert!(at_ms >= last_ms && at_ms > 1_600_000_000_000, "{at_ms}");
        last_ms = at_ms;
        assert_eq!(f.contains_key("tenant"), f["op"] != "delete");
    }
    let stored: serde_json::Value = serde_json::from_str(&entries[2].1["tenant"]).unwrap();
    assert_eq!(stored["status"], "suspended");
}

#[test]
fn a_store_of_a_newer_schema_is_refused() {
    let redis = RedisServer::start();
    let mut store = RedisStore::open(&redis.url()).unwrap();
    store.insert(&tenant("a")).unwrap();
    let _: () = redis::cmd("SET")
        .arg(SCHEMA)
        .arg(2)
        .query(&mut redis.conn())
        .unwrap();
    // A server already running refuses to write over it...
    let e = store.insert(&tenant("b")).unwrap_err();
    assert!(e.to_string().contains("schema version is 2"), "{e}");
    // ...and a new one refuses to start.
    let e = RedisStore::open(&redis.url()).unwrap_err().to_string();
    assert!(e.contains("schema version 2") && e.contains("newer"), "{e}");
    let _: () = redis::cmd("SET")
        .arg(SCHEMA)
        .arg("banana")
        .query(&mut redis.conn())
        .unwrap();
    let e = RedisStore::open(&redis.url()).unwrap_err().to_string();
    assert!(e.contains("unknown schema version \"banana\""), "{e}");
}

#[test]
fn bad_urls_and_passwords_get_clear_errors_without_the_password() {
    let redis = RedisServer::start_with(Some("pw-s3cret-1"));
    let mut store = RedisStore::open(&redis.url()).unwrap();
    store.insert(&tenant("a")).unwrap();
    assert!(!format!("{store:?}").contains("pw-s3cret-1"));

    let wrong = format!("redis://:pw-wrong-2@127.0.0.1:{}/0", redis.port);
    let e = RedisStore::open(&wrong).unwrap_err().to_string();
    assert!(e.contains("refused the user name or password"), "{e}");
    assert!(!e.contains("pw-wrong-2") && e.contains(":***@"), "{e}");

    let none = format!("redis://127.0.0.1:{}/0", redis.port);
    let e = RedisStore::open(&none).unwrap_err().to_string();
    assert!(e.contains("refused the user name or password"), "{e}");

    // Nothing listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = RedisStore::open(&format!("redis://:pw-3@127.0.0.1:{port}"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("refused the connection"), "{e}");
    assert!(!e.contains("pw-3"), "{e}");

    for bad in ["127.0.0.1:6379", "redis://:pw-4@[nope", "http://:pw-4@h:1"] {
        let e = RedisStore::open(bad).unwrap_err().to_string();
        assert!(e.contains("redis://[USER:PASSWORD@]HOST:PORT[/DB]"), "{e}");
        assert!(!e.contains("pw-4"), "{e}");
    }
}

#[test]
fn a_tenant_edited_by_hand_into_nonsense_is_named_and_the_rest_load() {
    let redis = RedisServer::start();
    let mut store = RedisStore::open(&redis.url()).unwrap();
    store.insert(&tenant("a")).unwrap();
    store.insert(&tenant("b")).unwrap();
    let _: () = redis::cmd("HSET")
        .arg(TENANTS)
        .arg("a")
        .arg(r#"{"id":"a","name":"x"}"#)
        .query(&mut redis.conn())
        .unwrap();
    let rows = store.load_rows().unwrap();
    assert_eq!(rows.len(), 2);
    let bad: Vec<String> = rows
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| e.to_string()))
        .collect();
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(bad[0].contains("stored tenant \"a\""), "{bad:?}");
    assert!(rows.iter().any(|r| r.as_ref().is_ok_and(|t| t.id == "b")));
    assert!(store.load_all().is_err());
}

#[test]
fn the_admin_path_refuses_to_overwrite_a_change_it_has_not_seen() {
    use streambus_tenancy::server::{Admin, AdminError};
    use streambus_tenancy::{Manager, NewTenant, TenantUpdate};

    let redis = RedisServer::start();
    // Two admin servers on one Redis, without followers.
    let a = Admin::open(
        Arc::new(Manager::new()),
        RedisStore::open(&redis.url()).unwrap(),
    )
    .unwrap();
    a.create(NewTenant {
        id: "acme".into(),
        name: "Acme".into(),
        quotas: Quotas::free_tier(),
        ..NewTenant::default()
    })
    .unwrap();
    let b = Admin::open(
        Arc::new(Manager::new()),
        RedisStore::open(&redis.url()).unwrap(),
    )
    .unwrap();
    let rename = |to: &str| TenantUpdate {
        name: Some(to.into()),
        ..TenantUpdate::default()
    };
    a.update("acme", rename("By A")).unwrap();
    match b.update("acme", rename("By B")) {
        Err(AdminError::Changed(id)) => assert_eq!(id, "acme"),
        other => panic!("{other:?}"),
    }
    // B's engine is unchanged, and so is the store.
    assert_eq!(b.manager().get_tenant("acme").unwrap().name, "Acme");
    let mut store = RedisStore::open(&redis.url()).unwrap();
    assert_eq!(store.get("acme").unwrap().unwrap().0.name, "By A");
    // A create of an id B does not know yet is refused by the store.
    let c = Admin::open(
        Arc::new(Manager::new()),
        RedisStore::open(&redis.url()).unwrap(),
    )
    .unwrap();
    b.create(NewTenant {
        id: "new".into(),
        name: "New".into(),
        quotas: Quotas::free_tier(),
        ..NewTenant::default()
    })
    .unwrap();
    match c.create(NewTenant {
        id: "new".into(),
        name: "Again".into(),
        quotas: Quotas::free_tier(),
        ..NewTenant::default()
    }) {
        Err(AdminError::Engine(streambus_tenancy::Error::TenantExists(id))) => {
            assert_eq!(id, "new")
        }
        other => panic!("{other:?}"),
    }
}
