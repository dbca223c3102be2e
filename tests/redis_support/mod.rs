//! Shared by the `redis_*` tests: a real `redis-server` per test, on a free
//! loopback port with its own temporary directory, run as the README says
//! for durability (AOF on, fsynced at every write, no RDB snapshots), and
//! stopped when dropped (also when the test panics).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime};

use streambus_tenancy::server::{RedisStore, Store, StoreErrorKind};
use streambus_tenancy::{Quotas, Tenant, TenantStatus};

/// A `redis-server` child process.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    password: Option<String>,
    /// More `redis-server` arguments (a cluster node's).
    extra: Vec<String>,
    dir: tempfile::TempDir,
}

/// Panics, saying how to install it, if `redis-server` is not on the PATH.
pub fn require_redis_server() {
    require("redis-server");
}

/// Panics, saying how to install it, if `program` (of Debian's
/// `redis-server` package, or its `redis-tools`) is not on the PATH.
fn require(program: &str) {
    let found = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{program} is not on the PATH: these tests need a real Redis; install it with \
         `apt-get install -y redis-server` (as root; it brings redis-cli too), then run \
         the tests again"
    );
}

impl RedisServer {
    /// A new server without a password.
    pub fn start() -> RedisServer {
        RedisServer::start_with(None)
    }

    /// A new server that requires `password` (`requirepass`), if given.
    pub fn start_with(password: Option<&str>) -> RedisServer {
        RedisServer::start_node(password, |_| Vec::new())
    }

    /// A new server with the extra arguments `extra(port)` gives.
    fn start_node(password: Option<&str>, extra: impl Fn(u16) -> Vec<String>) -> RedisServer {
        require_redis_server();
        let dir = tempfile::tempdir().unwrap();
        let mut server = RedisServer {
            child: None,
            port: 0,
            password: password.map(str::to_owned),
            extra: Vec::new(),
            dir,
        };
        // A free port can be taken between choosing it and binding it:
        // choose again a few times.
        for _ in 0..5 {
            server.port = free_port();
            server.extra = extra(server.port);
            if server.spawn() {
                return server;
            }
        }
        panic!("redis-server did not start; its log:\n{}", server.log());
    }

    /// `redis://[:PASSWORD@]127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/0", self.port),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// Starts redis-server on `self.port` over `self.dir`; false if it
    /// exited (the port was taken) before answering PING.
    fn spawn(&mut self) -> bool {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(self.log_path())
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .args(["--daemonize", "no", "--protected-mode", "yes"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(p) = &self.password {
            cmd.args(["--requirepass", p]);
        }
        cmd.args(&self.extra);
        let mut child = cmd.spawn().expect("start redis-server");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            if self.ping() {
                self.child = Some(child);
                return true;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("redis-server did not answer PING; its log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn ping(&self) -> bool {
        let Ok(client) = redis::Client::open(self.url()) else {
            return false;
        };
        let Ok(mut c) = client.get_connection_with_timeout(Duration::from_millis(500)) else {
            return false;
        };
        redis::cmd("PING").query::<String>(&mut c).is_ok()
    }

    /// A plain connection, for looking at the keys.
    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(5))
            .unwrap()
    }

    /// SIGKILL: Redis gets no chance to write anything more.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP: Redis keeps its connections open but answers nothing, as
    /// a hung or partitioned server would.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`RedisServer::pause`].
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("redis-server runs").id();
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid} failed");
    }

    /// Starts it again on the same port and directory (after
    /// [`RedisServer::kill9`]); it loads its AOF.
    pub fn restart(&mut self) {
        self.restart_after(Duration::ZERO);
    }

    /// SIGKILL, then the same as [`RedisServer::restart`] after `down`.
    pub fn restart_after(&mut self, down: Duration) {
        self.kill9();
        std::thread::sleep(down);
        assert!(
            self.spawn(),
            "redis-server did not restart on port {}; its log:\n{}",
            self.port,
            self.log()
        );
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Redis Cluster of three masters, each with `replicas` replicas, every
/// node a `redis-server` on free loopback ports (its own, and its cluster
/// bus's) with its own temporary directory, joined with `redis-cli
/// --cluster create`; every node is killed when dropped (also when the
/// test panics).
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Three masters, no replicas.
    pub fn start() -> RedisCluster {
        RedisCluster::start_with_replicas(0)
    }

    pub fn start_with_replicas(replicas: usize) -> RedisCluster {
        require_redis_server();
        require("redis-cli");
        let nodes: Vec<RedisServer> = (0..3 * (1 + replicas))
            .map(|_| {
                RedisServer::start_node(None, |_| {
                    [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-port",
                        &free_port().to_string(),
                    ]
                    .map(str::to_owned)
                    .to_vec()
                })
            })
            .collect();
        let cluster = RedisCluster { nodes };
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(
                cluster
                    .nodes
                    .iter()
                    .map(|n| format!("127.0.0.1:{}", n.port)),
            )
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Every node must see every slot served before the cluster is used.
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in &cluster.nodes {
            loop {
                let info = Command::new("redis-cli")
                    .args(["-h", "127.0.0.1", "-p", &node.port.to_string()])
                    .args(["cluster", "info"])
                    .stdin(Stdio::null())
                    .output()
                    .expect("run redis-cli cluster info");
                let info = String::from_utf8_lossy(&info.stdout).to_string();
                if info.lines().any(|l| l.trim() == "cluster_state:ok") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the cluster is not ok after 30 s on port {}: {info}\nits log:\n{}",
                    node.port,
                    node.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        cluster
    }

    /// The URL of node `i` (a master for `i` < 3); a client finds the
    /// others from it.
    pub fn url(&self, i: usize) -> String {
        self.nodes[i].url()
    }
}

/// An active free-tier tenant named after `id`, stamped now.
pub fn tenant(id: &str) -> Tenant {
    let now = SystemTime::now();
    Tenant {
        id: id.into(),
        name: format!("Name of {id}"),
        description: String::new(),
        created_at: now,
        updated_at: now,
        quotas: Quotas::free_tier(),
        metadata: BTreeMap::new(),
        status: TenantStatus::Active,
    }
}

/// `threads` threads, each with its own store on `url_of(thread)`, race to
/// create `race-0` .. `race-{rounds-1}` (named `by thread T`), all starting
/// each round together; every thread's outcome, by thread then round.
pub fn race_creates(
    url_of: impl Fn(usize) -> String,
    threads: usize,
    rounds: usize,
) -> Vec<Vec<Result<(), StoreErrorKind>>> {
    let barrier = Arc::new(Barrier::new(threads));
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = Arc::clone(&barrier);
                let url = url_of(t);
                s.spawn(move || {
                    let mut store = RedisStore::open(&url).unwrap();
                    (0..rounds)
                        .map(|round| {
                            let mut x = tenant(&format!("race-{round}"));
                            x.name = format!("by thread {t}");
                            barrier.wait();
                            store.insert(&x).map_err(|e| e.kind())
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Checks what [`race_creates`] returned: in every round exactly one thread
/// created the tenant, the others were told it exists, and `store` holds the
/// winner's.
pub fn assert_one_winner_per_round(
    results: &[Vec<Result<(), StoreErrorKind>>],
    store: &mut RedisStore,
) {
    let rounds = results.first().map_or(0, Vec::len);
    for round in 0..rounds {
        let outcomes: Vec<_> = results.iter().map(|r| r[round]).collect();
        let winners: Vec<usize> = (0..outcomes.len())
            .filter(|&t| outcomes[t].is_ok())
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {outcomes:?}");
        assert!(
            outcomes
                .iter()
                .all(|o| *o == Ok(()) || *o == Err(StoreErrorKind::Exists)),
            "{outcomes:?}"
        );
        let (stored, _) = store.get(&format!("race-{round}")).unwrap().unwrap();
        assert_eq!(stored.name, format!("by thread {}", winners[0]));
    }
}
