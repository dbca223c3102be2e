//! The `serve` binary's start-up: options checked before anything is
//! opened, one server per data dir, private files, named tokens, and the
//! audit log.
#![cfg(all(feature = "server", feature = "cli", feature = "cluster"))]

mod server_support;

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::json;
use server_support::{bin, Client, ServerProcess, TOKEN};

/// Runs `serve` with `args` on `data_dir`, expecting it to refuse to start:
/// its exit status is an error and its stderr is returned.
fn refused(data_dir: &Path, args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(args)
        .env("STREAMBUS_TENANCY_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "serve {args:?} started: {}{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

#[test]
fn bad_options_are_refused_at_start_with_the_option_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cases: &[(&[&str], &str)] = &[
        (
            &["--alert-interval", "0s"],
            "--alert-interval: 0s is too short",
        ),
        (
            &["--request-timeout", "0s"],
            "--request-timeout: 0s is out of range",
        ),
        (
            &["--header-read-timeout", "2h"],
            "--header-read-timeout: 2h is out of range",
        ),
        (
            &["--max-connections", "0"],
            "--max-connections: 0 is out of range",
        ),
        (
            &["--max-concurrent-requests", "70000"],
            "--max-concurrent-requests: 70000 is out of range",
        ),
        (&["--max-body-bytes", "1lot"], "not a size"),
        (
            &["--max-body-bytes", "100"],
            "--max-body-bytes: 100 is out of range",
        ),
        (&["--request-timeout", "soon"], "--request-timeout"),
        (
            &["--metrics-tenants", "some"],
            "invalid tenant series \"some\"",
        ),
        (&["--metrics-tenants", "above:101"], "above:N"),
    ];
    for (args, needle) in cases {
        let e = refused(&data, args);
        assert!(e.contains(needle), "{args:?}: {e}");
    }
    // Nothing was created by a refused start.
    assert!(!data.exists());
    // The same checks apply to the config file, naming the key.
    let config = dir.path().join("c.toml");
    for (text, needle) in [
        (
            "[limits]\nrequest_timeout = \"0s\"",
            "limits.request_timeout",
        ),
        (
            "[limits]\nmax_body_bytes = \"lots\"",
            "limits.max_body_bytes",
        ),
        ("alert_interval = \"0s\"", "alert_interval"),
    ] {
        std::fs::write(&config, text).unwrap();
        let e = refused(&data, &["--config", config.to_str().unwrap()]);
        assert!(e.contains(needle), "{text:?}: {e}");
    }
}

#[test]
fn a_second_server_on_one_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = ServerProcess::start(dir.path(), &[]);
    let e = refused(dir.path(), &[]);
    assert!(e.contains("is in use by another process"), "{e}");
    assert!(e.contains(&format!("pid {}", first.child.id())), "{e}");
    assert!(e.contains(&dir.path().display().to_string()), "{e}");
    // The first one still serves; once it is gone, the data dir is free.
    assert_eq!(first.client().get("/api/v1/tenants").status, 200);
    assert!(first.terminate().success());
    let mut second = ServerProcess::start(dir.path(), &[]);
    assert_eq!(second.client().get("/api/v1/tenants").status, 200);
    second.kill();
    // A killed server leaves no stale lock.
    let mut third = ServerProcess::start(dir.path(), &[]);
    third.kill();
}

#[cfg(unix)]
#[test]
fn the_data_dir_is_private_whatever_it_was_before() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(data.join("tenants.db"), b"").unwrap();
    std::fs::set_permissions(
        data.join("tenants.db"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let mut s = ServerProcess::start_with_token(&data, &[], None);
    let c = Client::new(
        &s.base,
        Some(std::fs::read_to_string(data.join("token")).unwrap().trim()),
    );
    assert_eq!(
        c.post("/api/v1/tenants", &json!({"id": "a", "name": "A"}))
            .status,
        201
    );
    assert_eq!(mode(&data), 0o700);
    let mut files = 0;
    for entry in std::fs::read_dir(&data).unwrap() {
        let p = entry.unwrap().path();
        assert_eq!(mode(&p), 0o600, "{}", p.display());
        files += 1;
    }
    // tenants.db, its -wal and -shm, the token and the lock at least.
    assert!(files >= 5, "{files} files");
    s.kill();
}

#[test]
fn named_tokens_with_roles_and_an_audit_line_per_change() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(
        &tokens,
        "[[token]]\nname = \"ops\"\nrole = \"admin\"\ntoken = \"ops-secret-0123456789\"\n\
         [[token]]\nname = \"grafana\"\nrole = \"read\"\ntoken = \"read-secret-0123456789\"\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // A tokens file others can read is refused.
        std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = refused(&data, &["--tokens-file", tokens.to_str().unwrap()]);
        assert!(e.contains("chmod 600"), "{e}");
        // Refused before the data dir is made or a token generated.
        assert!(!data.exists());
        std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let log = dir.path().join("stderr.log");
    let mut child = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .args(["--tokens-file", tokens.to_str().unwrap(), "--token", TOKEN])
        .env("RUST_LOG", "info")
        .env_remove("STREAMBUS_TENANCY_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let base = server_support::announced_address(&mut child);
    let ops = Client::new(&base, Some("ops-secret-0123456789"));
    let grafana = Client::new(&base, Some("read-secret-0123456789"));
    let admin = Client::new(&base, Some(TOKEN));
    assert_eq!(
        ops.post("/api/v1/tenants", &json!({"id": "acme", "name": "A"}))
            .status,
        201
    );
    assert_eq!(admin.post_empty("/api/v1/tenants/acme/suspend").status, 200);
    assert_eq!(grafana.get("/api/v1/tenants/acme").status, 200);
    assert_eq!(grafana.get("/metrics").status, 200);
    assert_eq!(
        grafana.post_empty("/api/v1/tenants/acme/activate").status,
        403
    );
    assert_eq!(
        ops.request("DELETE", "/api/v1/tenants/nobody", None).status,
        404
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let audit: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("streambus_tenancy::audit"))
        .collect();
    let want = [
        ("token=ops", "method=POST", "tenant=acme", "status=201"),
        ("token=admin", "method=POST", "tenant=acme", "status=200"),
        ("token=ops", "method=DELETE", "tenant=nobody", "status=404"),
    ];
    assert_eq!(audit.len(), want.len(), "{audit:#?}");
    for (line, (t, m, id, st)) in audit.iter().zip(want) {
        for needle in [t, m, id, st] {
            assert!(line.contains(needle), "{line} lacks {needle}");
        }
    }
    // Reads and refused tokens are not changes: no audit line for them.
    assert!(!text.contains("token=grafana"), "{text}");
    // The warning about --token in `ps`.
    assert!(text.contains("--token is visible"), "{text}");
    // Secrets never reach the log.
    for secret in ["ops-secret-0123456789", "read-secret-0123456789", TOKEN] {
        assert!(!text.contains(secret), "the log shows a token");
    }
}

#[test]
fn a_bad_stored_row_stops_the_start_unless_told_to_skip_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = ServerProcess::start(dir.path(), &[]);
    let c = s.client();
    for id in ["good", "bad"] {
        assert_eq!(
            c.post("/api/v1/tenants", &json!({"id": id, "name": id}))
                .status,
            201
        );
    }
    assert!(s.terminate().success());
    // An operator's hand edit gone wrong.
    let db = rusqlite::Connection::open(dir.path().join("tenants.db")).unwrap();
    db.execute("UPDATE tenants SET max_topics = -5 WHERE id = 'bad'", [])
        .unwrap();
    drop(db);
    let e = refused(dir.path(), &[]);
    assert!(e.contains("stored tenant \"bad\""), "{e}");
    assert!(e.contains("max_topics"), "{e}");
    assert!(e.contains("--skip-bad-rows"), "{e}");
    let mut s = ServerProcess::start(dir.path(), &["--skip-bad-rows"]);
    let c = s.client();
    assert_eq!(c.get("/api/v1/tenants/good").status, 200);
    assert_eq!(c.get("/api/v1/tenants/bad").status, 404);
    s.kill();
    // The row is left as it was, for the operator to fix.
    let db = rusqlite::Connection::open(dir.path().join("tenants.db")).unwrap();
    let topics: i64 = db
        .query_row("SELECT max_topics FROM tenants WHERE id = 'bad'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(topics, -5);
}

#[test]
fn metrics_tenants_limits_the_per_tenant_series() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = ServerProcess::start(dir.path(), &["--metrics-tenants", "none"]);
    let c = s.client();
    assert_eq!(
        c.post("/api/v1/tenants", &json!({"id": "a", "name": "A"}))
            .status,
        201
    );
    let m = c.get("/metrics");
    assert_eq!(m.status, 200);
    assert!(
        m.text.contains("streambus_tenants{status=\"active\"} 1"),
        "{}",
        m.text
    );
    assert!(!m.text.contains("tenant=\""), "{}", m.text);
    s.kill();
}
