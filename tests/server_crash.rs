//! Crash safety with the real binary: concurrent creates and updates, SIGKILL
//! mid-stream, restart, and check that every acknowledged change is there
//! and nothing unacknowledged is half-present.
#![cfg(all(feature = "server", feature = "cli", feature = "cluster"))]

mod server_support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use server_support::ServerProcess;

const WRITERS: usize = 6;
/// Kill once this many changes were acknowledged (or after KILL_AFTER).
const KILL_AT_ACKS: usize = 1000;
const KILL_AFTER: Duration = Duration::from_secs(20);

/// What one writer did to one tenant it owns. Writers own disjoint ids, so
/// each tenant's changes are sequential and the expected state is exact.
#[derive(Debug, Default, Clone)]
struct Ledger {
    /// The create was sent.
    create_sent: bool,
    /// The create was acknowledged (201).
    create_acked: bool,
    /// Highest version sent (0 = the create).
    max_sent: u64,
    /// Versions acknowledged.
    acked: Vec<u64>,
}

/// Every field of version `v` of tenant `id`: a half-applied change would
/// show fields of two versions.
fn version_body(id: &str, v: u64) -> Value {
    json!({
        "name": format!("v{v} of {id}"),
        "description": format!("description {v}"),
        "metadata": {"version": v.to_string(), "owner": id},
        "quotas": {"max_topics": v, "max_connections": 1000 + v, "MaxProducers": 2000 + v},
    })
}

fn check_whole(t: &Value) -> u64 {
    let id = t["id"].as_str().unwrap();
    let v: u64 = t["metadata"]["version"].as_str().unwrap().parse().unwrap();
    let want = version_body(id, v);
    assert_eq!(t["name"], want["name"], "{t}");
    assert_eq!(t["description"], want["description"], "{t}");
    assert_eq!(t["metadata"], want["metadata"], "{t}");
    assert_eq!(t["quotas"]["max_topics"], json!(v), "{t}");
    assert_eq!(t["quotas"]["max_connections"], json!(1000 + v), "{t}");
    assert_eq!(t["quotas"]["max_producers"], json!(2000 + v), "{t}");
    v
}

#[test]
fn sigkill_mid_stream_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(dir.path(), &[]);
    let base = server.base.clone();

    let acks = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let ledgers: Arc<Mutex<BTreeMap<String, Ledger>>> = Arc::default();
    let started = Instant::now();

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (acks, stop, ledgers) = (acks.clone(), stop.clone(), ledgers.clone());
            let c = server_support::Client::new(&base, Some(server_support::TOKEN));
            std::thread::spawn(move || {
                let mut mine: Vec<String> = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    // Mostly creates; every other step updates an own tenant.
                    let (method, path, id, v, body) = if i.is_multiple_of(2) || mine.is_empty() {
                        let id = format!("w{w}-t{}", mine.len());
                        let mut body = version_body(&id, 0);
                        body["id"] = json!(id);
                        mine.push(id.clone());
                        ("POST", "/api/v1/tenants".to_owned(), id, 0, body)
                    } else {
                        let id = mine[(i as usize / 2) % mine.len()].clone();
                        let v = ledgers.lock().unwrap()[&id].max_sent + 1;
                        let path = format!("/api/v1/tenants/{id}");
                        ("PUT", path, id.clone(), v, version_body(&id, v))
                    };
                    i += 1;
                    {
                        let mut l = ledgers.lock().unwrap();
                        let e = l.entry(id.clone()).or_default();
                        if v == 0 {
                            e.create_sent = true;
                        } else if v > e.max_sent {
                            e.max_sent = v;
                        }
                    }
                    let r = match c.try_request(method, &path, Some(&body.to_string())) {
                        Ok(r) => r,
                        Err(_) => break, // the server is gone
                    };
                    if !(200..300).contains(&r.status) {
                        if method == "PUT" && r.status == 404 {
                            // An update of a tenant whose create was not acknowledged.
                            continue;
                        }
                        panic!("{method} {path}: {r:?}");
                    }
                    let mut l = ledgers.lock().unwrap();
                    let e = l.get_mut(&id).unwrap();
                    if v == 0 {
                        e.create_acked = true;
                    }
                    e.acked.push(v);
                    acks.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();

    // Kill mid-stream: writers are busy sending when the signal lands.
    while acks.load(Ordering::SeqCst) < KILL_AT_ACKS && started.elapsed() < KILL_AFTER {
        std::thread::sleep(Duration::from_millis(2));
    }
    let acked_at_kill = acks.load(Ordering::SeqCst);
    server.kill();
    let killed_after = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acks.load(Ordering::SeqCst);
    assert!(
        acked_at_kill >= 50,
        "too few changes before the kill: {acked_at_kill}"
    );
    // (A change acknowledged between reading the counter and the kill is
    // counted in `acked`, which is what is checked.)

    let server = ServerProcess::start(dir.path(), &[]);
    let list = server.client().list_all();
    let found: BTreeMap<String, Value> = list
        .iter()
        .map(|t| (t["id"].as_str().unwrap().to_owned(), t.clone()))
        .collect();
    assert_eq!(found.len(), list.len(), "no duplicates");

    let ledgers = ledgers.lock().unwrap();
    let (mut acked_creates, mut acked_updates, mut found_acked, mut inflight_present) =
        (0, 0, 0, 0);
    for (id, l) in ledgers.iter() {
        if l.create_acked {
            acked_creates += 1;
        }
        acked_updates += l.acked.iter().filter(|v| **v > 0).count();
        let max_acked = l.acked.iter().copied().max();
        match found.get(id) {
            None => assert!(
                !l.create_acked,
                "acknowledged tenant {id} is missing: {l:?}"
            ),
            Some(t) => {
                assert!(l.create_sent, "{id} was never sent");
                let v = check_whole(t);
                if let Some(a) = max_acked {
                    assert!(v >= a, "{id}: acknowledged v{a} but found v{v}");
                }
                found_acked += l.acked.iter().filter(|a| **a <= v).count();
                assert!(
                    v <= l.max_sent,
                    "{id}: found v{v}, never sent past v{}",
                    l.max_sent
                );
                if max_acked != Some(v) {
                    inflight_present += 1;
                }
            }
        }
    }
    for id in found.keys() {
        assert!(ledgers.contains_key(id), "{id} appeared from nowhere");
    }
    eprintln!(
        "crash test: killed after {killed_after:?}; {acked} changes acknowledged \
         ({acked_creates} creates, {acked_updates} updates) by {WRITERS} writers; \
         after restart {found_acked} of them found, {} tenants present, \
         {inflight_present} carrying an unacknowledged in-flight change (whole)",
        found.len()
    );
    assert_eq!(found_acked, acked, "every acknowledged change is there");
}
