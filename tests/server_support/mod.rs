//! Shared by the `server_*` tests: an in-process server over loopback, the
//! real binary as a child process, and a small blocking HTTP client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use streambus_tenancy::server::{
    self, Admin, ApiState, Role, SqliteStore, Store, Tiers, Token, Tokens,
};
use streambus_tenancy::Manager;

pub const TOKEN: &str = "test-token-0123456789abcdef";
/// A read-only token, named `viewer`, accepted beside [`TOKEN`] (named
/// `admin`).
pub const READ_TOKEN: &str = "read-token-0123456789abcdef";

/// An answer: status, headers we look at, and the body as JSON (`Null` when
/// empty, a string when not JSON).
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub content_type: String,
    pub allow: String,
    pub location: String,
    pub www_authenticate: String,
    pub connection: String,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body.get("code").and_then(Value::as_str).unwrap_or("")
    }
    pub fn error(&self) -> &str {
        self.body.get("error").and_then(Value::as_str).unwrap_or("")
    }
}

/// A blocking client for one server.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    agent: ureq::Agent,
    pub auth: Option<String>,
}

impl Client {
    pub fn new(base: &str, token: Option<&str>) -> Client {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .allow_non_standard_methods(true)
            .build();
        Client {
            base: base.to_owned(),
            agent: ureq::Agent::new_with_config(config),
            auth: token.map(|t| format!("Bearer {t}")),
        }
    }

    pub fn with_auth(&self, auth: Option<&str>) -> Client {
        Client {
            auth: auth.map(str::to_owned),
            ..self.clone()
        }
    }

    /// Any method, any body; `Err` only when the server cannot be reached.
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<Resp, String> {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        let result = match body {
            Some(b) => {
                let req = req
                    .header("Content-Type", "application/json")
                    .body(b.to_owned())
                    .map_err(|e| e.to_string())?;
                self.agent.run(req)
            }
            None => {
                let req = req.body(()).map_err(|e| e.to_string())?;
                self.agent.run(req)
            }
        };
        let mut resp = result.map_err(|e| e.to_string())?;
        let h = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let (content_type, allow, location, www_authenticate, connection) = (
            h("content-type"),
            h("allow"),
            h("location"),
            h("www-authenticate"),
            h("connection"),
        );
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| e.to_string())?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()))
        };
        Ok(Resp {
            status,
            body,
            text,
            content_type,
            allow,
            location,
            www_authenticate,
            connection,
        })
    }

    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> Resp {
        self.try_request(method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub fn get(&self, path: &str) -> Resp {
        self.request("GET", path, None)
    }
    pub fn post(&self, path: &str, body: &Value) -> Resp {
        self.request("POST", path, Some(&body.to_string()))
    }
    pub fn post_empty(&self, path: &str) -> Resp {
        self.request("POST", path, None)
    }
    pub fn put(&self, path: &str, body: &Value) -> Resp {
        self.request("PUT", path, Some(&body.to_string()))
    }
    pub fn delete(&self, path: &str) -> Resp {
        self.request("DELETE", path, None)
    }

    /// Every tenant, read page by page through `next`, the largest pages.
    pub fn list_all(&self) -> Vec<Value> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/tenants?limit={}", server::MAX_PAGE_LIMIT);
            if let Some(a) = &after {
                path = format!("{path}&after={a}");
            }
            let r = self.get(&path);
            assert_eq!(r.status, 200, "{path}: {r:?}");
            all.extend(r.body["tenants"].as_array().unwrap().iter().cloned());
            match r.body["next"].as_str() {
                Some(next) => after = Some(next.to_owned()),
                None => return all,
            }
        }
    }
}

/// Sends raw bytes and returns the status line's code (for requests a
/// client library will not make, such as a chunked body over the limit).
pub fn raw_status(base: &str, request: &[u8]) -> u16 {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // The server may answer and close before the whole body is sent.
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf);
    head.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"))
}

/// The router on a tokio runtime, listening on 127.0.0.1:0.
pub struct TestServer {
    pub base: String,
    pub state: ApiState,
    pub manager: Arc<Manager>,
    pub db: PathBuf,
    rt: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<mpsc::Receiver<()>>,
}

impl TestServer {
    /// A server over a new SQLite store in `dir`.
    pub fn start(dir: &Path) -> TestServer {
        let db = dir.join("tenants.db");
        let store = SqliteStore::open(&db).unwrap();
        TestServer::with_store(store, db)
    }

    /// A server over a new SQLite store in `dir`, its state changed by
    /// `configure` (limits, public metrics).
    pub fn start_with(dir: &Path, configure: impl FnOnce(ApiState) -> ApiState) -> TestServer {
        let db = dir.join("tenants.db");
        let store = SqliteStore::open(&db).unwrap();
        TestServer::build(store, db, configure)
    }

    /// A server over any store (`db` is only recorded).
    pub fn with_store(store: impl Store, db: PathBuf) -> TestServer {
        TestServer::build(store, db, |s| s)
    }

    fn build(
        store: impl Store,
        db: PathBuf,
        configure: impl FnOnce(ApiState) -> ApiState,
    ) -> TestServer {
        let manager = Arc::new(Manager::new());
        let admin = Arc::new(Admin::open(Arc::clone(&manager), store).unwrap());
        let mut extra = std::collections::BTreeMap::new();
        extra.insert(
            "tiny".to_owned(),
            streambus_tenancy::Quotas {
                max_connections: 2,
                ..streambus_tenancy::Quotas::default()
            },
        );
        let tokens = Tokens::new(vec![
            ("admin".into(), Role::Admin, Token::new(TOKEN).unwrap()),
            ("viewer".into(), Role::Read, Token::new(READ_TOKEN).unwrap()),
        ])
        .unwrap();
        let state = configure(
            ApiState::new(admin, Token::new(TOKEN).unwrap())
                .with_tokens(tokens)
                .with_tiers(Tiers::with(&extra)),
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel();
        let app = server::router(state.clone());
        let limits = *state.limits();
        rt.spawn(async move {
            let _ = server::serve(listener, app, limits, async {
                let _ = stop_rx.await;
            })
            .await;
            let _ = done_tx.send(());
        });
        TestServer {
            base,
            state,
            manager,
            db,
            rt: Some(rt),
            stop: Some(stop_tx),
            done: Some(done_rx),
        }
    }

    pub fn client(&self) -> Client {
        Client::new(&self.base, Some(TOKEN))
    }

    /// Graceful stop, then closes the store.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
            if let Some(done) = self.done.take() {
                let _ = done.recv_timeout(Duration::from_secs(20));
            }
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(10));
        }
        let _ = self.state.admin().close();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Waits (bounded) for a `serve` child (stdout piped) to announce its
/// address and for `/healthz` to answer; its stdout is drained from then on.
pub fn announced_address(child: &mut Child) -> String {
    announcement(child).0
}

/// The address a `serve` child (stdout piped) announces and the lines of
/// its announcement (through the closing `try:` line), once `/healthz`
/// answers; bounded waits, and the child is killed if it never announces.
/// Its stdout is drained from then on, so it never blocks on a full pipe.
fn announcement(child: &mut Child) -> (String, Vec<String>) {
    let out = child.stdout.take().expect("stdout piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut said = Vec::new();
    let base = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                said.push(line.clone());
                if let Some(rest) = line.split("listening on ").nth(1) {
                    break rest.trim().to_owned();
                }
            }
            Err(e) => {
                let _ = child.kill();
                panic!("the server did not announce its address: {e}; said {said:?}")
            }
        }
    };
    // The rest of the announcement ends with the "try:" line.
    while !said
        .last()
        .is_some_and(|l| l.trim_start().starts_with("try:"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => said.push(l),
            Err(_) => break,
        }
    }
    std::thread::spawn(move || while rx.recv().is_ok() {});
    let c = Client::new(&base, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.try_request("GET", "/healthz", None).map(|r| r.status) != Ok(200) {
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("/healthz never answered 200");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (base, said)
}

/// The real binary, serving on a free loopback port.
pub struct ServerProcess {
    pub child: Child,
    pub base: String,
    pub stdout: Vec<String>,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_streambus-tenancy")
}

impl ServerProcess {
    /// Starts `serve` on `data_dir` and waits (bounded) until `/healthz`
    /// answers.
    pub fn start(data_dir: &Path, extra: &[&str]) -> ServerProcess {
        ServerProcess::start_with_token(data_dir, extra, Some(TOKEN))
    }

    /// As [`ServerProcess::start`], with `STREAMBUS_TENANCY_TOKEN` set to
    /// `token`, or unset.
    pub fn start_with_token(data_dir: &Path, extra: &[&str], token: Option<&str>) -> ServerProcess {
        let mut cmd = Command::new(bin());
        match token {
            Some(t) => cmd.env("STREAMBUS_TENANCY_TOKEN", t),
            None => cmd.env_remove("STREAMBUS_TENANCY_TOKEN"),
        };
        let mut child = cmd
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the server binary");
        let (base, stdout) = announcement(&mut child);
        ServerProcess {
            child,
            base,
            stdout,
        }
    }

    pub fn client(&self) -> Client {
        Client::new(&self.base, Some(TOKEN))
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits (bounded) for a clean exit; returns its status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                self.kill();
                panic!("the server did not exit within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}
