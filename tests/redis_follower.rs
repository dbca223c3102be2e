//! The follower against real `redis-server` processes: every change made
//! through a store reaches the follower's `Manager` in order and quickly;
//! it resumes after Redis restarts, reloads and reconciles when the stream
//! no longer holds what it missed, starts from its snapshot while Redis is
//! down, skips a malformed entry, and through a hung Redis (SIGSTOP for 5 s)
//! keeps the last known tenants, says so in its status, and catches up
//! within a second of SIGCONT.
#![cfg(feature = "cluster")]

mod redis_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_support::{tenant, RedisServer};
use streambus_tenancy::server::{Follower, RedisStore, Store};
use streambus_tenancy::{Manager, Quotas, TenantStatus};

const CHANGES: &str = "{streambus-tenancy}:changes";
const VERSION: &str = "{streambus-tenancy}:version";
const WAIT: Duration = Duration::from_secs(10);

fn version(redis: &RedisServer) -> u64 {
    redis::cmd("GET")
        .arg(VERSION)
        .query::<Option<u64>>(&mut redis.conn())
        .unwrap()
        .unwrap_or(0)
}

/// The follower's tenants equal the store's.
fn assert_same(manager: &Manager, store: &mut RedisStore) {
    assert_eq!(manager.list_tenants(), store.load_all().unwrap());
}

#[test]
fn every_change_reaches_the_manager_in_order_and_quickly() {
    let redis = RedisServer::start();
    let mut store = RedisStore::open(&redis.url()).unwrap();
    store.insert(&tenant("a")).unwrap();
    store.insert(&tenant("b")).unwrap();
    let manager = Arc::new(Manager::new());
    let follower = Follower::start(Arc::clone(&manager), &redis.url(), None).unwrap();
    assert!(follower.wait_for(2, WAIT));
    assert_same(&manager, &mut store);

    let (mut a, _) = store.get("a").unwrap().unwrap();
    a.status = TenantStatus::Suspended;
    store.update(&a).unwrap();
    store.delete("b").unwrap();
    store.insert(&tenant("c")).unwrap();
    assert!(follower.wait_for(5, WAIT));
    assert_same(&manager, &mut store);
    assert_eq!(
        manager.get_tenant("a").unwrap().status,
        TenantStatus::Suspended
    );
    // A deleted id created again is a new tenant.
    store.insert(&tenant("b")).unwrap();
    assert!(follower.wait_for(6, WAIT));
    assert_same(&manager, &mut store);

    // From a store write's return to the follower's manager.
    let mut lags = Vec::new();
    for i in 0..200u64 {
        let (mut t, _) = store.get("c").unwrap().unwrap();
        t.quotas.max_topics = 1 + i as i64;
        let start = Instant::now();
        store.update(&t).unwrap();
        assert!(follower.wait_for(version(&redis), WAIT));
        lags.push(start.elapsed());
        assert_eq!(
            manager.get_tenant("c").unwrap().quotas.max_topics,
            1 + i as i64
        );
    }
    lags.sort();
    let (p50, p99) = (lags[lags.len() / 2], lags[lags.len() * 99 / 100]);
    eprintln!(
        "follower lag over {} changes: p50 {p50:?}, p99 {p99:?}",
        lags.len()
    );
    follower.stop();
}

#[test]
fn it_resumes_after_redis_restarts() {
    let mut redis = RedisServer::start();
    let mut store = RedisStore::open(&redis.url()).unwrap();
    store.insert(&tenant("a")).unwrap();
    let manager = Arc::new(Manager::new());
    let follower = Follower::start(Arc::clone(&manager), &redis.url(), None).unwrap();
    assert!(follower.wait_for(1, WAIT));

    redis.kill9();
    let deadline = Instant::now() + WAIT;
    while follower.is_connected() {
        assert!(Instant::now() < deadline, "the follower never noticed");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The last known tenants are still enforced.
    assert!(manager.get_tenant("a").is_ok());

    redis.restart();
    let mut store = RedisStore::open(&redis.url()).unwrap();
    store.load_all().unwrap();
    store.insert(&tenant("b")).unwrap();
    store.delete("a").unwrap();
    assert!(
        follower.wait_for(3, WAIT),
        "at {}",
        follower.applied_version()
    );
    assert!(follower.is_connected());
    assert_same(&manager, &mut store);
}

#[test]
fn behind_the_stream_it_reloads_and_reconciles_and_starts_from_its_snapshot() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("tenants.snapshot");
    let mut store = RedisStore::open(&redis.url()).unwrap();
    for id in ["a", "b", "c"] {
        store.insert(&tenant(id)).unwrap();
    }
    let manager = Arc::new(Manager::new());
    let follower =
        Follower::start(Arc::clone(&manager), &redis.url(), Some(snapshot.clone())).unwrap();
    assert!(follower.wait_for(3, WAIT));
    follower.stop();
    assert!(snapshot.exists());

    // While it is away: b is deleted, d created, c changed, and the stream
    // trimmed to its last entry, so the follower cannot read what it missed.
    store.delete("b").unwrap();
    store.insert(&tenant("d")).unwrap();
    let (mut c, _) = store.get("c").unwrap().unwrap();
    c.quotas.max_topics = 99;
    store.update(&c).unwrap();
    let _: u64 = redis::cmd("XTRIM")
        .arg(CHANGES)
        .arg("MAXLEN")
        .arg(1)
        .query(&mut redis.conn())
        .unwrap();

    // Redis is down: a new broker starts from the snapshot.
    redis.kill9();
    let manager = Arc::new(Manager::new());
    let follower =
        Follower::start(Arc::clone(&manager), &redis.url(), Some(snapshot.clone())).unwrap();
    let ids: Vec<String> = manager.list_tenants().into_iter().map(|t| t.id).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert_eq!(follower.applied_version(), 3);
    assert!(!follower.is_connected());

    // Redis returns: the follower finds the gap, reloads, deletes b.
    redis.restart();
    assert!(
        follower.wait_for(6, WAIT),
        "at {}",
        follower.applied_version()
    );
    let mut store = RedisStore::open(&redis.url()).unwrap();
    assert_same(&manager, &mut store);
    assert_eq!(manager.get_tenant("c").unwrap().quotas.max_topics, 99);

    // A damaged snapshot is refused, naming the file.
    follower.stop();
    std::fs::write(&snapshot, "{\"version\":1}\n{\"id\":\"x\"}\n").unwrap();
    let e = Follower::start(
        Arc::new(Manager::new()),
        &redis.url(),
        Some(snapshot.clone()),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("tenants.snapshot is damaged at line 2"), "{e}");
}

#[test]
fn a_malformed_stream_entry_is_skipped_and_the_next_applied() {
    let redis = RedisServer::start();
    let mut store = RedisStore::open(&redis.url()).unwrap();
    store.insert(&tenant("a")).unwrap();
    let manager = Arc::new(Manager::new());
    let follower = Follower::start(Arc::clone(&manager), &redis.url(), None).unwrap();
    assert!(follower.wait_for(1, WAIT));
    // Version 2 written by hand: nonsense in place of a tenant.
    let mut c = redis.conn();
    let _: String = redis::cmd("XADD")
        .arg(CHANGES)
        .arg("2-0")
        .arg(&["version", "2", "op", "update", "id", "a", "tenant", "{oops"])
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("SET").arg(VERSION).arg(2).query(&mut c).unwrap();
    store.insert(&tenant("b")).unwrap();
    assert!(follower.wait_for(3, WAIT));
    assert!(manager.get_tenant("a").is_ok());
    assert!(manager.get_tenant("b").is_ok());
}

#[test]
fn through_a_hung_redis_it_enforces_the_last_known_tenants_and_then_catches_up() {
    let redis = RedisServer::start();
    let mut store = RedisStore::open(&redis.url()).unwrap();
    store.insert(&tenant("a")).unwrap();
    let manager = Arc::new(Manager::new());
    let follower = Follower::start(Arc::clone(&manager), &redis.url(), None).unwrap();
    assert!(follower.wait_for(1, WAIT));
    let status = follower.status();
    assert!(status.redis_up());

    // SIGSTOP for 5 s: noticed, and the last known tenants stay.
    redis.pause();
    let paused = Instant::now();
    while status.redis_up() {
        assert!(paused.elapsed() < WAIT, "the follower never noticed");
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("a hung Redis noticed after {:?}", paused.elapsed());
    while paused.elapsed() < Duration::from_secs(5) {
        assert!(!status.redis_up());
        assert_eq!(manager.get_tenant("a").unwrap().quotas, Quotas::free_tier());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Counted from before the pause: the last instant it was caught up.
    assert!(status.lag() >= Duration::from_secs(5), "{status:?}");
    assert_eq!(status.applied_version(), 1);

    // SIGCONT, and a change at once: applied (how fast is printed, not
    // asserted: CI machines are shared).
    redis.resume();
    let resumed = Instant::now();
    let (mut a, _) = store.get("a").unwrap().unwrap();
    a.quotas.max_topics = 4242;
    store.update(&a).unwrap();
    assert!(follower.wait_for(2, WAIT));
    let caught_up = resumed.elapsed();
    eprintln!("after SIGCONT, a change applied within {caught_up:?}");
    assert_eq!(manager.get_tenant("a").unwrap().quotas.max_topics, 4242);
    while !(status.redis_up() && status.lag() == Duration::ZERO) {
        assert!(resumed.elapsed() < WAIT, "still lagging: {status:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
