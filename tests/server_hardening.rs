//! The service against misbehaving clients and bad input, over loopback: slow
//! headers, idle connections past the cap, slow bodies, read tokens asking
//! for changes, bodies that are not objects, a token checked before a body
//! is read.
#![cfg(all(feature = "server", feature = "cli", feature = "cluster"))]

mod server_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use server_support::{Client, TestServer, READ_TOKEN, TOKEN};
use streambus_tenancy::server::Limits;

fn tenant_body(id: &str) -> Value {
    json!({"id": id, "name": format!("Tenant {id}")})
}

fn connect(base: &str) -> TcpStream {
    let addr = base.trim_start_matches("http://");
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Reads until the server closes the connection (or 20 s pass); what it
/// sent before closing.
fn read_to_close(s: &mut TcpStream) -> Result<String, std::io::Error> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(String::from_utf8_lossy(&out).into_owned()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Ok(String::from_utf8_lossy(&out).into_owned())
            }
            Err(e) => return Err(e),
        }
    }
}

#[test]
fn a_read_token_reads_and_cannot_change() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path());
    assert_eq!(
        s.client().post("/api/v1/tenants", &tenant_body("a")).status,
        201
    );
    let before = s.manager.get_tenant("a").unwrap();
    let reader = Client::new(&s.base, Some(READ_TOKEN));
    for path in [
        "/api/v1/tenants",
        "/api/v1/tenants/a",
        "/api/v1/tenants/a/stats",
        "/api/v1/tenants/a/usage",
        "/api/v1/tenants/a/utilization",
        "/admin/tenants/a/stats",
        "/api/v1/openapi.json",
        "/api/v1/whoami",
        "/metrics",
    ] {
        let r = reader.get(path);
        assert_eq!(r.status, 200, "GET {path} with a read token: {r:?}");
    }
    let changes: [(&str, &str, Option<Value>); 7] = [
        ("POST", "/api/v1/tenants", Some(tenant_body("b"))),
        ("POST", "/admin/tenants", Some(tenant_body("b"))),
        ("PUT", "/api/v1/tenants/a", Some(json!({"name": "x"}))),
        ("DELETE", "/api/v1/tenants/a", None),
        ("POST", "/api/v1/tenants/a/suspend", None),
        ("POST", "/api/v1/tenants/a/activate", None),
        ("PATCH", "/api/v1/tenants/a", Some(json!({}))),
    ];
    for (method, path, body) in &changes {
        let body = body.as_ref().map(Value::to_string);
        let r = reader.request(method, path, body.as_deref());
        assert_eq!(r.status, 403, "{method} {path} with a read token: {r:?}");
        assert_eq!(r.code(), "forbidden");
        assert!(
            r.error().contains("\"viewer\"") && r.error().contains("admin token"),
            "{:?}",
            r.error()
        );
    }
    // Nothing changed, and the admin token still may.
    assert_eq!(s.manager.list_tenants().len(), 1);
    assert_eq!(s.manager.get_tenant("a").unwrap(), before);
    let r = s
        .client()
        .request("POST", "/api/v1/tenants/a/suspend", None);
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn metrics_can_be_public() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_with(dir.path(), |st| st.with_public_metrics(true));
    assert_eq!(
        s.client().post("/api/v1/tenants", &tenant_body("p")).status,
        201
    );
    let anon = Client::new(&s.base, None);
    let m = anon.get("/metrics");
    assert_eq!(m.status, 200, "{m:?}");
    assert!(m.text.contains("tenant=\"p\""), "{}", m.text);
    // Only /metrics: the API still needs the token.
    assert_eq!(anon.get("/api/v1/tenants").status, 401);
}

#[test]
fn bodies_must_be_json_objects() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path());
    let c = s.client();
    assert_eq!(c.post("/api/v1/tenants", &tenant_body("acme")).status, 201);
    let before = s.manager.get_tenant("acme").unwrap();
    for (body, found) in [
        ("[null, null]", "an array"),
        ("[]", "an array"),
        ("\"acme\"", "a string"),
        ("42", "a number"),
        ("null", "null"),
        ("true", "a boolean"),
    ] {
        for (method, path) in [("PUT", "/api/v1/tenants/acme"), ("POST", "/api/v1/tenants")] {
            let r = c.request(method, path, Some(body));
            assert_eq!(r.status, 400, "{method} {path} {body}: {r:?}");
            assert_eq!(r.code(), "invalid_request");
            assert!(
                r.error().contains("must be a JSON object") && r.error().contains(found),
                "{:?}",
                r.error()
            );
        }
    }
    assert_eq!(s.manager.get_tenant("acme").unwrap(), before);
}

#[test]
fn the_token_is_checked_before_the_body_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path());
    // Headers announcing 5 MB of body, and no body at all: a server that
    // read the body first would wait for it until the request timeout.
    for auth in ["", "Authorization: Bearer wrong-token-0123456789\r\n"] {
        let mut conn = connect(&s.base);
        write!(
            conn,
            "POST /api/v1/tenants HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n\
             Content-Length: 5000000\r\n\r\n"
        )
        .unwrap();
        let text = read_to_close(&mut conn).unwrap();
        assert!(text.starts_with("HTTP/1.1 401"), "{auth:?}: {text:?}");
        assert!(
            text.to_ascii_lowercase().contains("connection: close"),
            "{text:?}"
        );
    }
    // A read token asking for a change: 403, also without reading.
    let mut conn = connect(&s.base);
    write!(
        conn,
        "PUT /api/v1/tenants/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {READ_TOKEN}\r\n\
         Content-Length: 5000000\r\n\r\n"
    )
    .unwrap();
    let text = read_to_close(&mut conn).unwrap();
    assert!(text.starts_with("HTTP/1.1 403"), "{text:?}");
}

#[test]
fn slow_headers_are_cut_off_at_the_header_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_with(dir.path(), |st| {
        st.with_limits(Limits {
            header_read_timeout: Duration::from_millis(300),
            ..Limits::default()
        })
        .unwrap()
    });
    // Half a request head, then nothing; and a connection that sends
    // nothing at all.
    let mut half = connect(&s.base);
    half.write_all(b"GET /api/v1/tenants HTTP/1.1\r\nHost: x\r\nAuthor")
        .unwrap();
    let mut silent = connect(&s.base);
    let started = Instant::now();
    let said = read_to_close(&mut half).expect("closed by the server, not by our 20 s timeout");
    // hyper answers a timed-out head with 408 or closes outright.
    assert!(
        said.is_empty() || said.starts_with("HTTP/1.1 408"),
        "{said:?}"
    );
    let said = read_to_close(&mut silent).expect("closed by the server");
    assert!(
        said.is_empty() || said.starts_with("HTTP/1.1 408"),
        "{said:?}"
    );
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(15), "closed after {waited:?}");
    // The server still serves.
    assert_eq!(s.client().get("/api/v1/tenants").status, 200);
}

#[test]
fn connections_past_the_cap_wait_until_one_closes() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_with(dir.path(), |st| {
        st.with_limits(Limits {
            max_connections: 2,
            ..Limits::default()
        })
        .unwrap()
    });
    // Two connections take both slots (a request each, kept alive).
    let mut held: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut c = connect(&s.base);
            write!(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut buf = [0u8; 512];
            let n = c.read(&mut buf).unwrap();
            assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
            c
        })
        .collect();
    // A third is not served while they are open...
    let mut third = connect(&s.base);
    third
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 512];
    let early = third.read(&mut buf);
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "served past the cap: {early:?}"
    );
    // ...and is served once one of them closes.
    drop(held.pop());
    third
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let text = read_to_close(&mut third).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");
}

#[test]
fn a_slow_body_gets_503_at_the_request_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_with(dir.path(), |st| {
        st.with_limits(Limits {
            request_timeout: Duration::from_millis(400),
            ..Limits::default()
        })
        .unwrap()
    });
    let mut conn = connect(&s.base);
    write!(
        conn,
        "POST /api/v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"id\":"
    )
    .unwrap();
    let text = read_to_close(&mut conn).unwrap();
    assert!(text.starts_with("HTTP/1.1 503"), "{text:?}");
    assert!(text.contains("\"code\":\"timeout\""), "{text:?}");
    assert!(text.contains("request timeout (400ms)"), "{text:?}");
    assert!(s.manager.list_tenants().is_empty());
}

#[test]
fn the_body_limit_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_with(dir.path(), |st| {
        st.with_limits(Limits {
            max_body_bytes: 2048,
            ..Limits::default()
        })
        .unwrap()
    });
    let c = s.client();
    let big = json!({"id": "a", "name": "A", "description": "x".repeat(3000)});
    let r = c.post("/api/v1/tenants", &big);
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.code(), "body_too_large");
    assert!(r.error().contains("2048 bytes"), "{:?}", r.error());
    assert_eq!(r.connection, "close");
    // Far past the cap (8 MiB here): refused from Content-Length alone.
    let mut conn = connect(&s.base);
    write!(
        conn,
        "POST /api/v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Length: 100000000\r\n\r\n"
    )
    .unwrap();
    let text = read_to_close(&mut conn).unwrap();
    assert!(text.starts_with("HTTP/1.1 413"), "{text:?}");
    assert!(text.contains("body_too_large"), "{text:?}");
    // Within the limit it works.
    assert_eq!(c.post("/api/v1/tenants", &tenant_body("a")).status, 201);
}
