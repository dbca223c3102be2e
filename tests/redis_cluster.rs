//! The Redis store and the follower on a real Redis Cluster: three masters
//! on free loopback ports, created by the test with `redis-cli --cluster
//! create`. The store finds the cluster through any node, every field round
//! trips, racing creates of one id have one winner, the follower applies
//! every change in order, and notices the node serving the tenants' slot
//! stop answering and come back.
#![cfg(feature = "cluster")]

mod redis_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_support::{tenant, RedisCluster};
use streambus_tenancy::server::{Follower, RedisStore, Store, StoreErrorKind};
use streambus_tenancy::{Manager, TenantStatus};

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn the_store_and_the_follower_work_on_a_redis_cluster() {
    let cluster = RedisCluster::start();

    // Round trip, through one node; every node's URL finds the same store
    // (two of them do not serve the tenants' slot: the client follows).
    let mut store = RedisStore::open(&cluster.url(0)).unwrap();
    assert_eq!(store.load_all().unwrap(), vec![]);
    let a = tenant("acme");
    store.insert(&a).unwrap();
    let mut b = a.clone();
    b.name = "renamed".into();
    b.status = TenantStatus::Suspended;
    b.updated_at += Duration::from_nanos(1);
    store.update(&b).unwrap();
    for i in 0..cluster.nodes.len() {
        let mut other = RedisStore::open(&cluster.url(i)).unwrap();
        assert_eq!(other.load_all().unwrap(), vec![b.clone()], "node {i}");
        assert_eq!(other.get("acme").unwrap(), Some((b.clone(), 2)), "node {i}");
    }
    assert_eq!(store.insert(&a).unwrap_err().kind(), StoreErrorKind::Exists);
    store.delete("acme").unwrap();
    assert_eq!(store.load_all().unwrap(), vec![]);
    let e = store.update(&b).unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::NotStored, "{e}");
    // Versions so far: create, update, delete.
    let mut version = 3;

    // A follower, started before the changes below, applies them all.
    let manager = Arc::new(Manager::new());
    let follower = Follower::start(Arc::clone(&manager), &cluster.url(1), None).unwrap();
    assert!(follower.wait_for(version, WAIT));
    assert!(manager.list_tenants().is_empty());

    // Racing creates of one id through stores on different nodes: exactly
    // one wins each round; the others are told it exists.
    const THREADS: usize = 6;
    const ROUNDS: usize = 5;
    let results =
        redis_support::race_creates(|t| cluster.url(t % cluster.nodes.len()), THREADS, ROUNDS);
    redis_support::assert_one_winner_per_round(&results, &mut store);
    version += ROUNDS as u64;
    assert!(
        follower.wait_for(version, WAIT),
        "at {}",
        follower.applied_version()
    );
    assert_eq!(manager.list_tenants(), store.load_all().unwrap());

    // From a store write's return to the follower's manager.
    let mut lags = Vec::new();
    for i in 0..200i64 {
        let (mut t, _) = store.get("race-0").unwrap().unwrap();
        t.quotas.max_topics = 1 + i;
        let start = Instant::now();
        store.update(&t).unwrap();
        version += 1;
        assert!(follower.wait_for(version, WAIT));
        lags.push(start.elapsed());
        assert_eq!(
            manager.get_tenant("race-0").unwrap().quotas.max_topics,
            1 + i
        );
    }
    lags.sort();
    let (p50, p99) = (lags[lags.len() / 2], lags[lags.len() * 99 / 100]);
    eprintln!(
        "Redis Cluster: follower lag over {} changes: p50 {p50:?}, p99 {p99:?}",
        lags.len()
    );
    let status = follower.status();
    assert!(status.redis_up());
    assert_eq!(status.lag_versions(), 0);
    assert_eq!(manager.list_tenants(), store.load_all().unwrap());

    // The node that serves the tenants' slot hangs (SIGSTOP): the follower
    // says Redis is down, and the engine keeps its tenants.
    let owner = (0..cluster.nodes.len())
        .find(|&i| {
            redis::cmd("EXISTS")
                .arg("{streambus-tenancy}:version")
                .query::<u64>(&mut cluster.nodes[i].conn())
                .is_ok()
        })
        .expect("a node serves the slot");
    cluster.nodes[owner].pause();
    let deadline = Instant::now() + Duration::from_secs(15);
    while status.redis_up() {
        assert!(Instant::now() < deadline, "the follower never noticed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(status.lag() > Duration::ZERO);
    assert_eq!(manager.len(), ROUNDS);

    // It answers again: a change is applied, and the lag is 0.
    cluster.nodes[owner].resume();
    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut t, _) = loop {
        match store.get("race-1") {
            Ok(found) => break found.unwrap(),
            Err(e) => assert!(Instant::now() < deadline, "no reconnect: {e}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    t.quotas.max_topics = 12345;
    store.update(&t).unwrap();
    version += 1;
    assert!(
        follower.wait_for(version, Duration::from_secs(15)),
        "at {}",
        follower.applied_version()
    );
    while !(status.redis_up() && status.lag() == Duration::ZERO) {
        assert!(Instant::now() < deadline, "still lagging: {status:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        manager.get_tenant("race-1").unwrap().quotas.max_topics,
        12345
    );
    follower.stop();
}
