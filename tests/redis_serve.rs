//! `serve --redis` as an operator runs it: the real binary, several of them
//! on one real `redis-server`. A change through one server is read through
//! the other within a second (each runs a follower); racing creates of one
//! id through two servers get one 201 and 409s; a change acknowledged with
//! a 2xx survives SIGKILL of Redis; the servers reconnect when Redis is
//! back; the URL's password never reaches a log or the terminal; `/healthz`
//! and `/metrics` show Redis hung or gone and back; a server SIGKILLed
//! while another takes changes reads every change once restarted; and two
//! servers share their tenants on a Redis Cluster too.
#![cfg(all(feature = "server", feature = "cli", feature = "cluster"))]

mod redis_support;
mod server_support;

use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use redis_support::{RedisCluster, RedisServer};
use serde_json::{json, Value};
use server_support::{announced_address, bin, Client, ServerProcess, TOKEN};

fn serve(redis: &RedisServer) -> (ServerProcess, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let s = ServerProcess::start(&dir.path().join("data"), &["--redis", &redis.url()]);
    (s, dir)
}

fn create(c: &Client, id: &str) -> u16 {
    c.post(
        "/api/v1/tenants",
        &json!({"id": id, "name": format!("Name of {id}"), "quotas": {"max_topics": 7}}),
    )
    .status
}

#[test]
fn two_servers_on_one_redis_share_the_tenants() {
    let redis = RedisServer::start();
    let (mut a, _da) = serve(&redis);
    let (mut b, _db) = serve(&redis);
    let (ca, cb) = (a.client(), b.client());
    assert_eq!(create(&ca, "acme"), 201);
    // B's store refuses what A stored, as one server refuses an existing id.
    let r = cb.post("/api/v1/tenants", &json!({"id": "acme", "name": "Other"}));
    assert_eq!((r.status, r.code()), (409, "tenant_exists"), "{r:?}");

    // B's follower applies A's change: B reads it without a restart. (The
    // deadline only bounds a broken follower; how fast it is, is measured
    // below and printed, not asserted: CI machines are shared.)
    let seen = |c: &Client, path: &str, check: &dyn Fn(&Value) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let r = c.get(path);
            if r.status == 200 && check(&r.body) {
                return r.body;
            }
            assert!(Instant::now() < deadline, "not seen within 15 s: {r:?}");
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    let got = seen(&cb, "/api/v1/tenants/acme", &|_| true);
    assert_eq!(got["quotas"]["max_topics"], 7);
    assert_eq!(got, ca.get("/api/v1/tenants/acme").body);

    // Changes through either server reach the other; measure how fast.
    let mut lags = Vec::new();
    for i in 0..200u64 {
        let (from, to) = if i % 2 == 0 { (&ca, &cb) } else { (&cb, &ca) };
        let start = Instant::now();
        let r = from.put(
            "/api/v1/tenants/acme",
            &json!({"quotas": {"max_topics": 100 + i}}),
        );
        assert_eq!(r.status, 200, "{r:?}");
        seen(to, "/api/v1/tenants/acme", &|b| {
            b["quotas"]["max_topics"] == 100 + i
        });
        lags.push(start.elapsed());
    }
    lags.sort();
    let (p50, p99) = (lags[lags.len() / 2], lags[lags.len() * 99 / 100]);
    eprintln!(
        "change through one server seen through the other (PUT + polling GET every 2 ms), \
         over {} changes: p50 {p50:?}, p99 {p99:?}",
        lags.len()
    );
    let r = cb.post_empty("/api/v1/tenants/acme/suspend");
    assert_eq!(r.status, 200, "{r:?}");
    seen(&ca, "/api/v1/tenants/acme", &|b| b["status"] == "suspended");
    let r = ca.delete("/api/v1/tenants/acme");
    assert_eq!(r.status, 204, "{r:?}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while cb.get("/api/v1/tenants/acme").status != 404 {
        assert!(Instant::now() < deadline, "the delete never reached B");
        std::thread::sleep(Duration::from_millis(2));
    }

    // A server started later reads what the others wrote.
    assert_eq!(create(&ca, "later"), 201);
    b.terminate();
    let b = ServerProcess::start(&_db.path().join("data"), &["--redis", &redis.url()]);
    assert_eq!(b.client().get("/api/v1/tenants/later").status, 200);
    drop(b);
    a.terminate();

    // Racing creates of one id through both servers: exactly one wins.
    let a = serve(&redis);
    let b = serve(&redis);
    let clients = [a.0.client(), b.0.client()];
    for round in 0..5 {
        let id = format!("race-{round}");
        let barrier = Arc::new(Barrier::new(6));
        let statuses: Vec<u16> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|i| {
                    let (c, barrier, id) = (clients[i % 2].clone(), Arc::clone(&barrier), &id);
                    s.spawn(move || {
                        barrier.wait();
                        create(&c, id)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let wins = statuses.iter().filter(|&&s| s == 201).count();
        assert_eq!(wins, 1, "{statuses:?}");
        assert!(
            statuses.iter().all(|&s| s == 201 || s == 409),
            "{statuses:?}"
        );
    }
}

#[test]
fn an_acknowledged_change_survives_sigkill_of_redis_and_servers_reconnect() {
    let mut redis = RedisServer::start();
    let (mut a, da) = serve(&redis);
    let c = a.client();
    assert_eq!(create(&c, "kept"), 201);
    let r = c.post_empty("/api/v1/tenants/kept/suspend");
    assert_eq!(r.status, 200, "{r:?}");

    redis.kill9();
    // While Redis is down a change fails, in an operator's words: the
    // server cannot tell whether Redis ran it before the connection broke,
    // so it says so.
    let r = c.post("/api/v1/tenants", &json!({"id": "lost", "name": "L"}));
    assert_eq!((r.status, r.code()), (500, "store_error"), "{r:?}");
    assert!(r.error().contains("Redis at redis://127.0.0.1:"), "{r:?}");
    assert!(
        r.error().contains("may or may not have been applied"),
        "{r:?}"
    );
    assert_eq!(c.get("/api/v1/tenants/lost").status, 404);

    redis.restart();
    // The running server reconnects by itself.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = c.post("/api/v1/tenants", &json!({"id": "after", "name": "A"}));
        if r.status == 201 {
            break;
        }
        assert!(Instant::now() < deadline, "no reconnect: {r:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    a.kill();
    let a = ServerProcess::start(&da.path().join("data"), &["--redis", &redis.url()]);
    let c = a.client();
    let kept = c.get("/api/v1/tenants/kept");
    assert_eq!(kept.status, 200, "{kept:?}");
    assert_eq!(kept.body["status"], "suspended");
    assert_eq!(c.get("/api/v1/tenants/after").status, 200);
    assert_eq!(c.get("/api/v1/tenants/lost").status, 404);
}

#[test]
fn the_password_in_the_url_is_never_shown() {
    const PASSWORD: &str = "pw-n0t-in-logs";
    let redis = RedisServer::start_with(Some(PASSWORD));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr");
    // From the environment (not in `ps`), logging everything.
    let mut child = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("STREAMBUS_TENANCY_TOKEN", TOKEN)
        .env("STREAMBUS_TENANCY_REDIS", redis.url())
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let base = announced_address(&mut child);
    let c = Client::new(&base, Some(TOKEN));
    assert_eq!(create(&c, "a"), 201);
    assert_eq!(c.get("/api/v1/tenants/a").status, 200);
    let _ = child.kill();
    let _ = child.wait();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("tenant store in Redis"), "{logged}");
    assert!(!logged.contains(PASSWORD), "the password is in the log");

    // A wrong password, on the command line: a clear refusal, the password
    // hidden, and a warning that `ps` shows it.
    let wrong = format!("redis://:pw-wr0ng@127.0.0.1:{}/0", redis.port);
    let out = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data2"))
        .args(["--redis", &wrong])
        .env("STREAMBUS_TENANCY_TOKEN", TOKEN)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("refused the user name or password"), "{said}");
    assert!(said.contains("visible to every user in `ps`"), "{said}");
    assert!(!said.contains("pw-wr0ng"), "{said}");

    // A malformed URL is refused before anything is opened.
    let out = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data3"))
        .args(["--redis", "localhost:6379"])
        .env("STREAMBUS_TENANCY_TOKEN", TOKEN)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(said.contains("not a Redis URL"), "{said}");
    assert!(!dir.path().join("data3").exists(), "a data dir was made");
}

/// The value of the unlabelled series `name` in a `/metrics` text.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
        .parse()
        .unwrap()
}

/// Polls (every 20 ms, up to `within`) until `ok` holds for `/healthz` and
/// `/metrics`; returns how long that took.
fn until(c: &Client, within: Duration, what: &str, ok: impl Fn(&Value, &str) -> bool) -> Duration {
    let start = Instant::now();
    loop {
        let health = c.get("/healthz");
        let metrics = c.get("/metrics");
        assert_eq!((health.status, metrics.status), (200, 200), "{health:?}");
        if ok(&health.body, &metrics.text) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "not {what} within {within:?}: {health:?}\n{}",
            metrics.text
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn healthz_and_metrics_show_redis_going_away_and_coming_back() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr");
    let mut child = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--redis", &redis.url()])
        .env("STREAMBUS_TENANCY_TOKEN", TOKEN)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let base = announced_address(&mut child);
    let _child = Kill(child);
    let c = Client::new(&base, Some(TOKEN));
    let healthy = |h: &Value, m: &str| {
        h == &json!({"status": "ok", "redis": "reachable"})
            && metric(m, "streambus_redis_up") == 1.0
            && metric(m, "streambus_follower_lag_versions") == 0.0
            && metric(m, "streambus_follower_lag_seconds") == 0.0
    };
    let degraded = |h: &Value, m: &str| {
        h == &json!({"status": "degraded", "redis": "unreachable"})
            && metric(m, "streambus_redis_up") == 0.0
    };
    until(&c, Duration::from_secs(10), "healthy", healthy);
    assert_eq!(create(&c, "acme"), 201);
    until(&c, Duration::from_secs(10), "at version 1", |h, m| {
        healthy(h, m) && metric(m, "streambus_follower_applied_version") == 1.0
    });

    // Each way of losing Redis: hung (SIGSTOP), then gone (SIGKILL).
    for outage in ["SIGSTOP", "SIGKILL"] {
        if outage == "SIGSTOP" {
            redis.pause();
        } else {
            redis.kill9();
        }
        let noticed = until(&c, Duration::from_secs(15), "degraded", degraded);
        eprintln!("Redis {outage}: /healthz degraded after {noticed:?}");
        // Reads answer from the last known tenants; the lag grows.
        assert_eq!(c.get("/api/v1/tenants/acme").status, 200);
        until(&c, Duration::from_secs(10), "lagging", |h, m| {
            degraded(h, m) && metric(m, "streambus_follower_lag_seconds") > 0.0
        });
        let health = c.get("/healthz").text;
        assert!(!health.contains("acme"), "{health}");

        if outage == "SIGSTOP" {
            redis.resume();
        } else {
            redis.restart();
        }
        let back = until(&c, Duration::from_secs(15), "healthy again", healthy);
        eprintln!("Redis back after {outage}: /healthz ok after {back:?}");
    }

    // A change is applied, and the lag is 0 again. (The store's own
    // connection met Redis gone: its first command fails, the next one
    // reconnects.)
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = c.put(
            "/api/v1/tenants/acme",
            &json!({"quotas": {"max_topics": 9}}),
        );
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "no reconnect: {r:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    until(&c, Duration::from_secs(10), "at version 2", |h, m| {
        healthy(h, m) && metric(m, "streambus_follower_applied_version") == 2.0
    });

    // One line each time Redis goes away or comes back, not one per retry.
    let logged = std::fs::read_to_string(&log).unwrap();
    let lines = |s: &str| logged.lines().filter(|l| l.contains(s)).count();
    assert_eq!(
        lines("enforcing the last known tenants until Redis is back"),
        2,
        "{logged}"
    );
    assert_eq!(lines("follower: Redis reachable"), 3, "{logged}");
}

#[test]
fn a_server_killed_during_changes_catches_up_when_restarted() {
    const CHANGES: usize = 1000;
    const KILL_AT: usize = 300;
    let redis = RedisServer::start();
    let (a, _da) = serve(&redis);
    let (mut b, db) = serve(&redis);
    let ca = a.client();

    // Through A, one change after another: every fifth a create, a delete
    // now and then, else an update of the newest tenant. Each is one
    // version in the store.
    let done = std::sync::atomic::AtomicUsize::new(0);
    let b = std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..CHANGES {
                let newest = i / 5 * 5;
                let r = if i % 5 == 0 {
                    let body = json!({"id": format!("t-{i}"), "name": format!("T{i}")});
                    ca.post("/api/v1/tenants", &body)
                } else if i % 50 == 26 {
                    ca.delete(&format!("/api/v1/tenants/t-{}", i - 26))
                } else {
                    let body = json!({"quotas": {"max_topics": i}});
                    ca.put(&format!("/api/v1/tenants/t-{newest}"), &body)
                };
                assert!(matches!(r.status, 200 | 201 | 204), "change {i}: {r:?}");
                done.store(i + 1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        // B dies in the middle, and comes back while A still takes changes.
        let deadline = Instant::now() + Duration::from_secs(60);
        while done.load(std::sync::atomic::Ordering::SeqCst) < KILL_AT {
            assert!(Instant::now() < deadline, "the changes stalled");
            std::thread::sleep(Duration::from_millis(5));
        }
        b.kill();
        let b = ServerProcess::start(&db.path().join("data"), &["--redis", &redis.url()]);
        let at = done.load(std::sync::atomic::Ordering::SeqCst);
        eprintln!("B killed after change {KILL_AT}, serving again after change {at} of {CHANGES}");
        b
    });

    // B reads every change: the same tenants as A, field for field.
    let cb = b.client();
    let expected = ca.list_all();
    assert_eq!(expected.len(), CHANGES / 5 - CHANGES / 50);
    let deadline = Instant::now() + Duration::from_secs(5);
    while cb.list_all() != expected {
        assert!(Instant::now() < deadline, "B never caught up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let m = cb.get("/metrics").text;
    assert_eq!(
        metric(&m, "streambus_follower_applied_version"),
        CHANGES as f64
    );
    assert_eq!(metric(&m, "streambus_follower_lag_versions"), 0.0);
    drop(a);
}

#[test]
fn two_servers_on_a_redis_cluster_share_the_tenants() {
    // Three masters and three replicas.
    let cluster = RedisCluster::start_with_replicas(1);
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Each through another node (b's a replica): the cluster client finds
    // the master of the tenants' slot.
    let role = |i: usize| {
        let role: Vec<redis::Value> = redis::cmd("ROLE")
            .query(&mut cluster.nodes[i].conn())
            .unwrap();
        redis::from_redis_value_ref::<String>(&role[0]).unwrap()
    };
    assert_eq!((role(0).as_str(), role(4).as_str()), ("master", "slave"));
    let a = ServerProcess::start(&da.path().join("data"), &["--redis", &cluster.url(0)]);
    let b = ServerProcess::start(&db.path().join("data"), &["--redis", &cluster.url(4)]);
    let (ca, cb) = (a.client(), b.client());
    assert_eq!(create(&ca, "acme"), 201);
    let r = cb.post("/api/v1/tenants", &json!({"id": "acme", "name": "Other"}));
    assert_eq!((r.status, r.code()), (409, "tenant_exists"), "{r:?}");

    let mut lags = Vec::new();
    for i in 0..200u64 {
        let (from, to) = if i % 2 == 0 { (&ca, &cb) } else { (&cb, &ca) };
        let start = Instant::now();
        loop {
            // The other server may not have read the last change yet: 409
            // tenant_changed, read again and retry.
            let r = from.put(
                "/api/v1/tenants/acme",
                &json!({"quotas": {"max_topics": 100 + i}}),
            );
            if r.status == 200 {
                break;
            }
            assert_eq!((r.status, r.code()), (409, "tenant_changed"), "{r:?}");
            assert!(start.elapsed() < Duration::from_secs(15), "{r:?}");
        }
        let start = Instant::now();
        loop {
            let r = to.get("/api/v1/tenants/acme");
            if r.status == 200 && r.body["quotas"]["max_topics"] == 100 + i {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "not seen within 15 s: {r:?}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        lags.push(start.elapsed());
    }
    lags.sort();
    let (p50, p99) = (lags[lags.len() / 2], lags[lags.len() * 99 / 100]);
    eprintln!(
        "Redis Cluster: from a change's 200 through one server to reading it through the \
         other (GET every 2 ms), over {} changes: p50 {p50:?}, p99 {p99:?}",
        lags.len()
    );
    let m = cb.get("/metrics").text;
    assert_eq!(metric(&m, "streambus_redis_up"), 1.0);
    assert_eq!(
        cb.get("/healthz").body,
        json!({"status": "ok", "redis": "reachable"})
    );
}

/// Two admin servers and three more processes that only follow (each
/// `serve --redis` runs a follower into its own engine, as a broker
/// embedding `Follower` does): every change made through either admin
/// server is read through every follower. Prints p50 and p99 of the time
/// from a change's 2xx to the slowest follower reading it.
#[test]
fn three_followers_and_two_admin_servers_on_one_redis() {
    let redis = RedisServer::start();
    let admins: Vec<_> = (0..2).map(|_| serve(&redis)).collect();
    let followers: Vec<_> = (0..3).map(|_| serve(&redis)).collect();
    let admin_clients: Vec<Client> = admins.iter().map(|(s, _)| s.client()).collect();
    let follower_clients: Vec<Client> = followers.iter().map(|(s, _)| s.client()).collect();
    assert_eq!(create(&admin_clients[0], "fan"), 201);
    let mut lags = Vec::new();
    for i in 0..200u64 {
        let from = &admin_clients[(i % 2) as usize];
        let want = 1000 + i;
        // The other admin server may not have read the last change yet:
        // 409 tenant_changed, read again and retry.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let r = from.put(
                "/api/v1/tenants/fan",
                &json!({"quotas": {"max_topics": want}}),
            );
            if r.status == 200 {
                break;
            }
            assert_eq!((r.status, r.code()), (409, "tenant_changed"), "{r:?}");
            assert!(Instant::now() < deadline, "{r:?}");
            std::thread::sleep(Duration::from_millis(2));
        }
        let acked = Instant::now();
        for c in &follower_clients {
            loop {
                let r = c.get("/api/v1/tenants/fan");
                if r.status == 200 && r.body["quotas"]["max_topics"] == want {
                    break;
                }
                assert!(
                    acked.elapsed() < Duration::from_secs(15),
                    "change {i} not seen within 15 s: {r:?}"
                );
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        lags.push(acked.elapsed());
    }
    lags.sort();
    let (p50, p99) = (lags[lags.len() / 2], lags[lags.len() * 99 / 100]);
    eprintln!(
        "2 admin servers, 3 followers: from a change's 200 to the slowest of 3 followers \
         reading it (GET every 2 ms), over {} changes: p50 {p50:?}, p99 {p99:?}",
        lags.len()
    );
    // Every follower ends with exactly what the store holds.
    let want = admin_clients[0].get("/api/v1/tenants/fan").body;
    for c in &follower_clients {
        assert_eq!(c.get("/api/v1/tenants/fan").body, want);
    }
}
