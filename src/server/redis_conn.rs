//! Reaching Redis: the URL (checked, and shown only with its password
//! hidden), a standalone server or a Redis Cluster told apart at connect
//! time, and Redis errors in an operator's words.
//!
//! A URL is `redis://[USER:PASSWORD@]HOST:PORT[/DB]`, or `rediss://` for
//! TLS (rustls, checked against the system's roots). For a standalone
//! server the connection is redis-rs' `ConnectionManager`, which reconnects
//! in the background after a failure; for a cluster node (`cluster_enabled:1`
//! in `INFO cluster`) it is the cluster client, which finds the other nodes
//! and follows slot moves and fail-overs. Either way one command that meets
//! a broken connection fails, and the next one goes over a new connection.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, Value};

use super::config::redact_url as redact;
use super::store::StoreError;

/// How long connecting to a Redis node may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one command may wait for its answer (a write's answer comes
/// after Redis has appended it to its AOF, and fsynced it with
/// `appendfsync always`).
pub(crate) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// A Redis URL, parsed; `Display` hides the password.
#[derive(Clone)]
pub struct RedisUrl {
    client: redis::Client,
    url: String,
    shown: String,
}

impl RedisUrl {
    /// Parses `url`.
    ///
    /// # Errors
    ///
    /// [`StoreError`] saying what a Redis URL looks like; the message never
    /// contains the URL's password.
    pub fn parse(url: &str) -> Result<RedisUrl, StoreError> {
        let shown = redact(url);
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(StoreError::new(format!(
                "{shown:?} is not a Redis URL: use redis://[USER:PASSWORD@]HOST:PORT[/DB], \
                 or rediss:// for TLS"
            )));
        }
        let client = redis::Client::open(url).map_err(|e| {
            StoreError::new(format!(
                "{shown:?} is not a valid Redis URL ({}): use \
                 redis://[USER:PASSWORD@]HOST:PORT[/DB], or rediss:// for TLS",
                e.category()
            ))
        })?;
        Ok(RedisUrl {
            client,
            url: url.to_owned(),
            shown,
        })
    }

    /// Connects to the server or cluster, telling them apart with
    /// `INFO cluster`; a failure is logged.
    pub(crate) async fn connect(&self) -> Result<Connection, StoreError> {
        self.connect_quietly(RESPONSE_TIMEOUT)
            .await
            .map_err(|e| self.unreachable(&e))
    }

    /// As [`RedisUrl::connect`], with answers awaited up to
    /// `response_timeout`, and a failure left to the caller to log.
    pub(crate) async fn connect_quietly(
        &self,
        response_timeout: Duration,
    ) -> Result<Connection, RedisError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(response_timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(Duration::from_secs(2));
        let mut manager = self
            .client
            .get_connection_manager_with_config(config)
            .await?;
        let info: String = redis::cmd("INFO")
            .arg("cluster")
            .query_async(&mut manager)
            .await?;
        if !info.lines().any(|l| l.trim() == "cluster_enabled:1") {
            return Ok(Connection::Single(manager));
        }
        drop(manager);
        let cluster = ClusterClient::builder(vec![self.url.as_str()])
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(response_timeout)
            .build()?;
        let conn = cluster.get_async_connection().await?;
        Ok(Connection::Cluster(conn))
    }

    /// A connection error, logged in full (Redis errors carry no password)
    /// and summed up for the operator.
    pub(crate) fn unreachable(&self, e: &RedisError) -> StoreError {
        tracing::error!(redis = %self, error = %e, "cannot use Redis");
        self.failure(e)
    }

    /// A connection error summed up for the operator, not logged: for a
    /// caller that logs only when Redis goes from reachable to not.
    pub(crate) fn failure(&self, e: &RedisError) -> StoreError {
        StoreError::new(format!("Redis at {self}: {}", summary(e)))
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RedisUrl").field(&self.shown).finish()
    }
}

/// A Redis error in an operator's words.
pub(crate) fn summary(e: &RedisError) -> String {
    if e.is_timeout() {
        return "did not answer in time".to_owned();
    }
    if e.is_connection_refusal() {
        return "refused the connection (is it running, on that port?)".to_owned();
    }
    if e.is_io_error() || e.is_connection_dropped() {
        return "cannot be reached (the connection failed)".to_owned();
    }
    match e.kind() {
        ErrorKind::AuthenticationFailed => {
            "refused the user name or password in the URL".to_owned()
        }
        ErrorKind::InvalidClientConfig => format!("bad client settings ({e})"),
        _ => match e.code() {
            Some("WRONGPASS") | Some("NOAUTH") | Some("NOPERM") => {
                "refused the user name or password in the URL".to_owned()
            }
            Some("OOM") => "is out of memory (maxmemory) and refuses writes".to_owned(),
            Some("READONLY") => "is a read-only replica; point the URL at the primary".to_owned(),
            Some("MISCONF") => {
                "cannot persist (MISCONF: see its log) and refuses writes".to_owned()
            }
            Some("LOADING") => "is loading its data set; retry shortly".to_owned(),
            _ => format!("answered an error ({})", e.category()),
        },
    }
}

/// A connection to a standalone Redis or to a Redis Cluster.
#[derive(Clone)]
pub(crate) enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_url_is_refused_without_its_password() {
        for bad in [
            "http://:pw-123@h:1",
            "redis://:pw-123@h:notaport",
            "redis://:pw-123@h:1/notadb",
        ] {
            let e = RedisUrl::parse(bad).unwrap_err();
            assert!(!e.to_string().contains("pw-123"), "{e}");
            assert!(e.to_string().contains("redis://"), "{e}");
        }
        let ok = RedisUrl::parse("redis://:pw-123@127.0.0.1:6379/3").unwrap();
        assert_eq!(ok.to_string(), "redis://:***@127.0.0.1:6379/3");
        assert!(!format!("{ok:?}").contains("pw-123"));
    }
}
