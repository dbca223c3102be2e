//! Bounded load: many concurrent clients mixing CRUD against the server
//! while threads enforce on the hot path. Nothing lost, no duplicate
//! tenants, the store equals the engine, and the hot path keeps working.
#![cfg(all(feature = "server", feature = "cli", feature = "cluster"))]

mod server_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use server_support::TestServer;
use streambus_tenancy::server::{SqliteStore, Store};
use streambus_tenancy::Quotas;

const CLIENTS: usize = 16;
const OPS_PER_CLIENT: usize = 60;
/// Ids every client tries to create: exactly one create of each may win.
const CONTESTED: usize = 10;

#[test]
fn concurrent_crud_with_the_hot_path_running() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path());
    let c = s.client();
    // The hot tenant: enforcement runs on it throughout; CRUD never touches it.
    let hot = json!({"id": "hot", "name": "Hot", "quotas": {"max_bytes_per_second": -1,
        "max_messages_per_second": -1, "max_requests_per_second": -1}});
    assert_eq!(c.post("/api/v1/tenants", &hot).status, 201);

    let done = Arc::new(AtomicBool::new(false));
    let enforcers: Vec<_> = (0..2)
        .map(|_| {
            let (m, done) = (Arc::clone(&s.manager), Arc::clone(&done));
            std::thread::spawn(move || {
                let tracker = m.get_tracker("hot").unwrap();
                let (mut calls, mut slowest) = (0u64, Duration::ZERO);
                let mut other = 0u64;
                while !done.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    for _ in 0..1000 {
                        m.enforce_produce_quota("hot", 1024, 1).unwrap();
                        tracker.enforce_consume(512, 1).unwrap();
                    }
                    slowest = slowest.max(t.elapsed());
                    calls += 2000;
                    // Enforce on tenants under CRUD too: any answer but a panic.
                    for i in 0..CONTESTED {
                        let _ = m.enforce_produce_quota(&format!("contested-{i}"), 10, 1);
                        other += 1;
                    }
                }
                (calls, slowest, other)
            })
        })
        .collect();

    let contested_wins = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|k| {
            let c = s.client();
            let wins = Arc::clone(&contested_wins);
            std::thread::spawn(move || {
                // What this client expects of its own tenants at the end.
                let mut mine: BTreeMap<String, Option<i64>> = BTreeMap::new();
                for op in 0..OPS_PER_CLIENT {
                    let own = format!("c{k}-{}", op / 6);
                    match op % 6 {
                        0 => {
                            let r = c.post(
                                "/api/v1/tenants",
                                &json!({"id": own, "name": own, "tier": "free"}),
                            );
                            assert_eq!(r.status, 201, "{r:?}");
                            mine.insert(own, Some(Quotas::free_tier().max_topics));
                        }
                        1 => {
                            let id = format!("contested-{}", (op / 6 + k) % CONTESTED);
                            let r =
                                c.post("/api/v1/tenants", &json!({"id": id, "name": "contested"}));
                            match r.status {
                                201 => {
                                    wins.fetch_add(1, Ordering::SeqCst);
                                }
                                409 => assert_eq!(r.code(), "tenant_exists"),
                                _ => panic!("{r:?}"),
                            }
                        }
                        2 => {
                            let topics = (k * 1000 + op) as i64;
                            let r = c.put(
                                &format!("/api/v1/tenants/{own}"),
                                &json!({"quotas": {"max_topics": topics}}),
                            );
                            assert_eq!(r.status, 200, "{r:?}");
                            mine.insert(own, Some(topics));
                        }
                        3 => {
                            assert_eq!(
                                c.post_empty(&format!("/api/v1/tenants/{own}/suspend"))
                                    .status,
                                200
                            );
                            assert_eq!(
                                c.post_empty(&format!("/api/v1/tenants/{own}/activate"))
                                    .status,
                                200
                            );
                        }
                        4 => {
                            let all = c.list_all();
                            let ids: Vec<&str> =
                                all.iter().map(|t| t["id"].as_str().unwrap()).collect();
                            let unique: BTreeSet<&str> = ids.iter().copied().collect();
                            assert_eq!(unique.len(), ids.len(), "duplicate tenants in a listing");
                            assert!(ids.contains(&own.as_str()), "own tenant {own} missing");
                            assert_eq!(c.get(&format!("/api/v1/tenants/{own}/stats")).status, 200);
                        }
                        _ => {
                            // Delete every other own tenant.
                            if (op / 6) % 2 == 1 {
                                assert_eq!(c.delete(&format!("/api/v1/tenants/{own}")).status, 204);
                                assert_eq!(c.get(&format!("/api/v1/tenants/{own}")).status, 404);
                                mine.insert(own, None);
                            }
                        }
                    }
                }
                mine
            })
        })
        .collect();
    let mut expected: BTreeMap<String, Option<i64>> = BTreeMap::new();
    for h in clients {
        expected.extend(h.join().unwrap());
    }
    let crud_time = started.elapsed();
    // Let the hot path run a moment with CRUD finished, then stop it.
    done.store(true, Ordering::Relaxed);
    let mut hot_calls = 0;
    let mut slowest = Duration::ZERO;
    for e in enforcers {
        let (calls, slow, _) = e.join().unwrap();
        hot_calls += calls;
        slowest = slowest.max(slow);
    }

    // Exactly one create of each contested id won.
    assert_eq!(contested_wins.load(Ordering::SeqCst), CONTESTED as u64);
    // Nothing lost, nothing resurrected, last acknowledged update kept.
    let engine = s.manager.list_tenants();
    let by_id: BTreeMap<&str, _> = engine.iter().map(|t| (t.id.as_str(), t)).collect();
    assert_eq!(by_id.len(), engine.len(), "no duplicate tenants");
    for (id, want) in &expected {
        match (want, by_id.get(id.as_str())) {
            (Some(topics), Some(t)) => {
                assert_eq!(t.quotas.max_topics, *topics, "{id}");
                assert_eq!(t.status, streambus_tenancy::TenantStatus::Active, "{id}");
            }
            (None, None) => {}
            (w, got) => panic!("{id}: expected {w:?}, engine has {got:?}"),
        }
    }
    let live = expected.values().filter(|v| v.is_some()).count();
    assert_eq!(engine.len(), live + CONTESTED + 1, "own + contested + hot");
    // The store holds exactly what the engine holds, field for field.
    let stored = SqliteStore::open(&s.db).unwrap().load_all().unwrap();
    assert_eq!(stored, engine);
    // The hot path kept admitting, and the engine counted all of it.
    let counters = s.manager.get_counters("hot").unwrap();
    assert_eq!(counters.admitted_requests, hot_calls);
    assert!(
        hot_calls >= 20_000,
        "the hot path stalled: {hot_calls} calls"
    );
    let requests = CLIENTS * OPS_PER_CLIENT * 3 / 2;
    eprintln!(
        "load test: {CLIENTS} clients, ~{requests} HTTP requests in {crud_time:?} ({:.0}/s); \
         hot path: {hot_calls} enforce calls meanwhile, slowest batch of 1000 pairs {slowest:?}; \
         {} tenants at the end",
        requests as f64 / crud_time.as_secs_f64(),
        engine.len()
    );
}
