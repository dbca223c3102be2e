//! `streambus-tenancy tenants ...` against a running server (the real
//! binary on both sides), and the server's start-up: token generation,
//! config file, graceful shutdown on SIGTERM.
#![cfg(all(feature = "server", feature = "cli", feature = "cluster"))]

mod server_support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use server_support::{bin, Client, ServerProcess, TOKEN};

/// `tenants --server BASE ARGS...` with the token in the environment.
fn tenants(base: &str, args: &[&str]) -> Output {
    cli(base, args)
        .env("STREAMBUS_TENANCY_TOKEN", TOKEN)
        .output()
        .expect("run the CLI")
}

/// The CLI against `base` with no token and no server from the environment.
fn cli(base: &str, args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.arg("tenants")
        .args(["--server", base])
        .args(args)
        .env_remove("STREAMBUS_TENANCY_TOKEN")
        .env_remove("STREAMBUS_TENANCY_URL")
        .stdin(Stdio::null());
    c
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
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
    all.extend(["--output", "json"]);
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
    let out = cli(b, &["list"])
        .env("STREAMBUS_TENANCY_TOKEN", "wrong-token-0123456789")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("401"));
    let out = tenants("http://127.0.0.1:9", &["list"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("cannot reach"));

    assert!(ok(b, &["delete", "free-1"]).contains("deleted tenant free-1"));
    assert_eq!(json(b, &["list"])["count"], 1);
    let e = fails(b, &["delete", "free-1"]);
    assert!(e.contains("404"), "{e}");
}

/// `tenants list` follows `next` page by page until the server says no
/// more follow, or `--limit` tenants are shown; `--after` starts later.
#[test]
fn list_pages_through_every_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &[]);
    let b = server.base.as_str();
    let c = server.client();
    let mut ids: Vec<String> = (0..12).map(|i| format!("p{:02}", (i * 5) % 12)).collect();
    for id in &ids {
        let r = c.post(
            "/api/v1/tenants",
            &serde_json::json!({"id": id, "name": format!("Tenant {id}")}),
        );
        assert_eq!(r.status, 201, "{r:?}");
    }
    ids.sort();
    let listed = |v: &Value| -> Vec<String> {
        v["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect()
    };

    // Pages of 5: three requests, every tenant once, in order.
    let v = json(b, &["list", "--page-size", "5"]);
    assert_eq!(listed(&v), ids);
    assert_eq!(
        (v["count"].as_u64(), v["total"].as_u64()),
        (Some(12), Some(12))
    );
    assert!(v["next"].is_null());
    assert_eq!(v["tenants"][3]["name"], "Tenant p03", "whole tenants");
    let table = ok(b, &["list", "--page-size", "5"]);
    let at: Vec<usize> = ids
        .iter()
        .map(|id| table.find(id.as_str()).unwrap())
        .collect();
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "rows in id order: {table}"
    );
    assert!(table.contains("12 tenant(s)"), "{table}");

    // --limit caps what is shown and gives the cursor to go on from.
    let v = json(b, &["list", "--limit", "7", "--page-size", "3"]);
    assert_eq!(listed(&v), ids[..7]);
    assert_eq!(
        (v["count"].as_u64(), v["total"].as_u64()),
        (Some(7), Some(12))
    );
    assert_eq!(v["next"], "p06");
    let table = ok(b, &["list", "--limit", "7"]);
    assert!(
        table.contains("7 of 12 tenant(s); more follow: --after p06") && !table.contains("p07"),
        "{table}"
    );
    let v = json(b, &["list", "--after", "p06", "--page-size", "2"]);
    assert_eq!(listed(&v), ids[7..]);
    assert!(v["next"].is_null());
    let v = json(b, &["list", "--after", "p11"]);
    assert_eq!(
        (v["count"].as_u64(), v["total"].as_u64()),
        (Some(0), Some(12))
    );

    // Bad values are refused before anything is sent, or by the server.
    for (args, word) in [
        (&["list", "--limit", "0"][..], "--limit"),
        (&["list", "--page-size", "1001"][..], "--page-size"),
        (&["list", "--after", "a b"][..], "after: invalid tenant id"),
    ] {
        let e = fails(b, args);
        assert!(e.contains(word), "{args:?}: {e}");
    }
}

/// `https://` servers are accepted and spoken to in TLS; other schemes are
/// refused with a message saying what is allowed. (No certificate is
/// trusted here, so no https request completes: what the test checks is
/// that the client's first bytes are a TLS handshake.)
#[test]
fn https_urls_are_accepted_and_speak_tls() {
    use std::io::Read;
    use std::net::TcpListener;
    use std::time::Duration;

    // A listener that records the first bytes it receives.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut head = [0u8; 3];
        conn.read_exact(&mut head).unwrap();
        head
    });
    let url = format!("https://127.0.0.1:{port}");
    let out = tenants(&url, &["list"]);
    assert!(!out.status.success());
    let e = text(&out.stderr);
    assert!(e.contains(&format!("cannot reach {url}")), "{e}");
    let head = seen.join().unwrap();
    assert_eq!(
        (head[0], head[1]),
        (0x16, 0x03),
        "a TLS handshake record, not plain HTTP: {head:?}"
    );

    // A closed port: the connection fails, the scheme is not refused.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://127.0.0.1:{}/", closed.local_addr().unwrap().port());
    drop(closed);
    let out = tenants(&url, &["get", "x"]);
    assert!(!out.status.success());
    let e = text(&out.stderr);
    assert!(e.contains("cannot reach https://127.0.0.1:"), "{e}");

    for bad in ["ftp://127.0.0.1:7420", "127.0.0.1:7420", "https://"] {
        let out = tenants(bad, &["list"]);
        assert!(!out.status.success());
        let e = text(&out.stderr);
        assert!(
            e.contains("must be an http:// or https:// URL"),
            "{bad}: {e}"
        );
    }
}

/// The token comes from `--token-file` or `STREAMBUS_TENANCY_TOKEN`;
/// `--token` works but warns that it is visible in `ps`.
#[test]
fn the_token_comes_from_a_file_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("data"), &[]);
    let b = server.base.as_str();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let file = file.to_str().unwrap();

    // The environment: no warning.
    let out = tenants(b, &["list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    // A file, which wins over the environment: no warning.
    let out = cli(b, &["--token-file", file, "list"])
        .env("STREAMBUS_TENANCY_TOKEN", "wrong-token-0123456789")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    // The command line: works, with a warning naming the alternatives.
    let out = cli(b, &["--token", TOKEN, "list"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let e = text(&out.stderr);
    assert!(
        e.starts_with("warning: ")
            && e.contains("ps")
            && e.contains("STREAMBUS_TENANCY_TOKEN")
            && e.contains("--token-file"),
        "{e}"
    );
    assert!(
        !text(&out.stdout).contains("warning"),
        "the warning is not in the output"
    );

    // None at all (no default token file in this directory).
    let out = cli(b, &["list"]).current_dir(dir.path()).output().unwrap();
    assert!(!out.status.success());
    let e = text(&out.stderr);
    assert!(
        e.contains("no admin token")
            && e.contains("STREAMBUS_TENANCY_TOKEN")
            && e.contains("--token-file"),
        "{e}"
    );
    // An empty file, a missing file, a wrong token.
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let out = cli(b, &["--token-file", empty.to_str().unwrap(), "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("empty token"),
        "{}",
        text(&out.stderr)
    );
    let out = cli(b, &["--token-file", "/nonexistent/token", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("/nonexistent/token"),
        "{}",
        text(&out.stderr)
    );
    let out = cli(b, &["list"])
        .env("STREAMBUS_TENANCY_TOKEN", "wrong-token-0123456789")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("401"));
}

/// Tables show sizes and rates in binary units; `--output json` (and its
/// old spelling `--json`) keeps the exact numbers.
#[test]
fn tables_use_human_units_and_json_keeps_exact_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &[]);
    let b = server.base.as_str();
    let created = json(
        b,
        &[
            "create",
            "units",
            "--quota",
            "max_bytes_per_second=10485760",
            "--quota",
            "max_storage_bytes=1073742336",
            "--quota",
            "max_messages_per_second=25000",
            "--quota",
            "max_retention_hours=168",
        ],
    );
    assert_eq!(created["quotas"]["max_storage_bytes"], 1_073_742_336u64);

    let table = ok(b, &["get", "units"]);
    for want in [
        "10 MiB/s",
        "1.0 GiB",
        "25,000 msg/s",
        "7 d",
        "max_storage_bytes",
    ] {
        assert!(table.contains(want), "get lacks {want}: {table}");
    }
    assert!(
        !table.contains("10485760") && !table.contains("1073742336"),
        "{table}"
    );
    let list = ok(b, &["list"]);
    assert!(
        list.contains("10 MiB/s") && list.contains("1.0 GiB"),
        "{list}"
    );
    let stats = ok(b, &["stats", "units"]);
    for want in [
        "0 B/s",
        "10 MiB/s",
        "0 B",
        "1.0 GiB",
        "admitted: 0 B, 0 messages",
    ] {
        assert!(stats.contains(want), "stats lacks {want}: {stats}");
    }

    // Exact numbers in JSON, by either spelling; the table is the default.
    for flag in [&["--output", "json"][..], &["--json"][..]] {
        let mut args = vec!["get", "units"];
        args.extend(flag);
        let v: Value = serde_json::from_str(&ok(b, &args)).unwrap();
        assert_eq!(v["quotas"]["max_bytes_per_second"], 10_485_760, "{flag:?}");
        assert_eq!(
            v["quotas"]["max_storage_bytes"], 1_073_742_336u64,
            "{flag:?}"
        );
    }
    assert_eq!(ok(b, &["get", "units", "--output", "table"]), table);
    let v = json(b, &["stats", "units"]);
    assert_eq!(v["tenant"]["quotas"]["max_storage_bytes"], 1_073_742_336u64);

    let e = fails(b, &["list", "--output", "yaml"]);
    assert!(e.contains("possible values: table, json"), "{e}");
    let e = fails(b, &["list", "--json", "--output", "table"]);
    assert!(e.contains("cannot be used with"), "{e}");
    let help = ok(b, &["--help"]);
    assert!(
        help.contains("--output") && !help.contains("--json"),
        "{help}"
    );
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
