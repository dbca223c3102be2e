//! `streambus-tenancy tenants ...` against a running server (the real
//! binary on both sides), and the server's start-up: token generation,
//! config file, graceful shutdown on SIGTERM.
#![cfg(all(feature = "server", feature = "cli"))]

mod server_support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use server_support::{bin, Client, ServerProcess, TOKEN};

fn tenants(base: &str, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("tenants")
        .args(["--server", base, "--token", TOKEN])
        .args(args)
        .env_remove("STREAMBUS_TENANCY_TOKEN")
        .env_remove("STREAMBUS_TENANCY_URL")
        .stdin(Stdio::null())
        .output()
        .expect("run the CLI")
}

fn ok(base: &str, args: &[&str]) -> String {
    let out = tenants(base, args);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        out.status.success(),
        "tenants {args:?} failed: {stderr}{stdout}"
    );
    stdout
}

fn json(base: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    serde_json::from_str(&ok(base, &all)).unwrap()
}

fn fails(base: &str, args: &[&str]) -> String {
    let out = tenants(base, args);
    assert!(!out.status.success(), "tenants {args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn the_cli_drives_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &[]);
    let b = server.base.as_str();

    let out = ok(
        b,
        &[
            "create",
            "acme",
            "--name",
            "ACME Corp",
            "--tier",
            "pro",
            "--quota",
            "max_connections=50",
            "--quota",
            "MaxTopics=unlimited",
            "--meta",
            "team=payments",
            "--description",
            "first customer",
        ],
    );
    assert!(out.contains("created tenant acme"), "{out}");
    assert!(
        out.contains("ACME Corp") && out.contains("metadata.team"),
        "{out}"
    );
    assert!(out.contains("unlimited"), "{out}");
    // The name defaults to the id.
    let v = json(b, &["create", "free-1", "--tier", "free"]);
    assert_eq!(v["name"], "free-1");
    assert_eq!(v["quotas"]["max_connections"], 10);

    let list = ok(b, &["list"]);
    assert!(
        list.contains("acme") && list.contains("free-1") && list.contains("2 tenant(s)"),
        "{list}"
    );
    let v = json(b, &["list"]);
    assert_eq!(v["count"], 2);

    let got = json(b, &["get", "acme"]);
    assert_eq!(got["quotas"]["max_connections"], 50);
    assert_eq!(got["quotas"]["max_topics"], -1);
    assert_eq!(got["metadata"]["team"], "payments");
    assert!(ok(b, &["get", "acme"]).contains("first customer"));

    let v = json(
        b,
        &[
            "update",
            "acme",
            "--quota",
            "max_connections=60",
            "--name",
            "ACME",
        ],
    );
    assert_eq!(v["name"], "ACME");
    assert_eq!(v["quotas"]["max_connections"], 60);
    assert_eq!(v["quotas"]["max_topics"], -1, "untouched fields stay");
    assert!(ok(b, &["update", "acme", "--description", "x"]).contains("updated tenant acme"));

    assert!(ok(b, &["suspend", "acme"]).contains("tenant acme is suspended"));
    assert_eq!(json(b, &["get", "acme"])["status"], "suspended");
    assert!(ok(b, &["activate", "acme"]).contains("tenant acme is active"));

    let stats = ok(b, &["stats", "acme"]);
    for word in ["QUOTA", "connections", "60", "UTILIZATION", "admitted"] {
        assert!(stats.contains(word), "stats lacks {word}: {stats}");
    }
    let v = json(b, &["stats", "acme"]);
    assert_eq!(v["usage"]["connections"], 0);
    assert!(v["utilization"].is_object());

    // Errors: a message naming the problem, and a failing exit code.
    let e = fails(b, &["get", "nobody"]);
    assert!(e.contains("not found") && e.contains("404"), "{e}");
    let e = fails(b, &["create", "acme"]);
    assert!(e.contains("already exists") && e.contains("409"), "{e}");
    let e = fails(b, &["create", "bad id"]);
    assert!(e.contains("invalid tenant id") && e.contains("400"), "{e}");
    let e = fails(b, &["update", "acme", "--quota", "max_topics=-5"]);
    assert!(e.contains("max_topics"), "{e}");
    let e = fails(b, &["update", "acme", "--quota", "max_topics=lots"]);
    assert!(e.contains("integer"), "{e}");
    let e = fails(b, &["update", "acme", "--quota", "nonsense"]);
    assert!(e.contains("KEY=VALUE"), "{e}");
    let e = fails(b, &["create", "x", "--tier", "platinum"]);
    assert!(e.contains("platinum"), "{e}");
    let out = Command::new(bin())
        .args([
            "tenants",
            "--server",
            b,
            "--token",
            "wrong-token-0123456789",
            "list",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    let out = Command::new(bin())
        .args([
            "tenants",
            "--server",
            "http://127.0.0.1:9",
            "--token",
            TOKEN,
            "list",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach"));

    assert!(ok(b, &["delete", "free-1"]).contains("deleted tenant free-1"));
    assert_eq!(json(b, &["list"])["count"], 1);
    let e = fails(b, &["delete", "free-1"]);
    assert!(e.contains("404"), "{e}");
}

fn token_file(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("token"))
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn first_start_generates_a_private_token_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("tenancy.toml");
    std::fs::write(
        &config,
        "alert_interval = \"1s\"\n[tiers.gold]\nmax_connections = 7\n",
    )
    .unwrap();
    // No --token and no STREAMBUS_TENANCY_TOKEN: one is generated.
    let mut child = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .env_remove("STREAMBUS_TENANCY_TOKEN")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let mut seen = Vec::new();
    let (mut base, mut printed_token) = (String::new(), String::new());
    for _ in 0..10 {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(rest) = line.split("listening on ").nth(1) {
            base = rest.trim().to_owned();
        }
        if seen
            .last()
            .is_some_and(|l: &String| l.contains("shown only this once"))
        {
            printed_token = line.trim().to_owned();
        }
        seen.push(line);
        if !printed_token.is_empty() && !base.is_empty() {
            break;
        }
    }
    assert!(!base.is_empty(), "no address in {seen:?}");
    let token = token_file(&data);
    assert_eq!(
        printed_token, token,
        "the generated token is printed once: {seen:?}"
    );
    assert_eq!(token.len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let c = Client::new(&base, Some(&token));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while c.try_request("GET", "/healthz", None).map(|r| r.status) != Ok(200) {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        Client::new(&base, Some(TOKEN))
            .get("/api/v1/tenants")
            .status,
        401
    );
    // The config's tier works.
    let r = c.post(
        "/api/v1/tenants",
        &serde_json::json!({"id": "g", "name": "G", "tier": "gold"}),
    );
    assert_eq!(
        (r.status, r.body["quotas"]["max_connections"].as_i64()),
        (201, Some(7))
    );

    // SIGTERM: exits 0 and the store is closed cleanly (WAL folded back).
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no exit after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let wal = data.join("tenants.db-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "the WAL was checkpointed at close"
    );

    // A second start reads the same token file and does not print it; the
    // tenant created before the shutdown is there.
    let mut again = ServerProcess::start_with_token(&data, &[], None);
    assert!(
        !again.stdout.iter().any(|l| l.contains(&token)),
        "{:?}",
        again.stdout
    );
    assert!(again.stdout.iter().any(|l| l.contains("admin token: in")));
    let c = Client::new(&again.base, Some(&token));
    assert_eq!(c.get("/api/v1/tenants/g").status, 200);
    assert!(again.terminate().success());
}

#[test]
fn sigterm_lets_an_in_flight_request_finish() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(dir.path(), &[]);
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut conn = TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();

    // Half of a create is on the wire when SIGTERM arrives.
    let body = serde_json::json!({"id": "inflight", "name": "In flight"}).to_string();
    let (first, rest) = body.split_at(body.len() / 2);
    write!(
        conn,
        "POST /api/v1/tenants HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{first}",
        body.len()
    )
    .unwrap();
    conn.flush().unwrap();
    // No signal says the server has read the head; give it a moment.
    std::thread::sleep(Duration::from_millis(300));
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    // Shutdown has begun once new connections are refused.
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(&addr).is_ok() {
        assert!(Instant::now() < deadline, "the listener never closed");
        std::thread::sleep(Duration::from_millis(10));
    }
    conn.write_all(rest.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    // What was acknowledged during the shutdown is on disk.
    let again = ServerProcess::start(dir.path(), &[]);
    assert_eq!(again.client().get("/api/v1/tenants/inflight").status, 200);
}
