//! The service's TOML configuration and its named quota tiers.
//!
//! ```toml
//! listen = "127.0.0.1:7420"
//! data_dir = "./streambus-tenancy-data"
//! token_file = "./streambus-tenancy-data/token"   # default: <data_dir>/token
//! alert_interval = "10s"
//! tokens_file = "./tokens.toml"   # named tokens with roles (see `Tokens`)
//! public_metrics = false          # true: /metrics without a token
//! metrics_tenants = "all"         # per-tenant series: all | none | above:N
//! redis = "redis://127.0.0.1:6379/0"  # tenants in Redis, not SQLite (feature `cluster`)
//!
//! [limits]                     # every key optional; these are the defaults
//! header_read_timeout = "10s"
//! request_timeout = "30s"
//! max_connections = 256
//! max_concurrent_requests = 64
//! max_body_bytes = "1MiB"      # or a number of bytes
//!
//! [tiers.pro]                  # overrides the built-in pro tier
//! max_connections = 2000
//!
//! [tiers.gold]                 # an operator's own; omitted fields take the defaults
//! max_bytes_per_second = 104857600
//! MaxTopics = 1000             # the seed's Go names work too
//! ```
//!
//! Relative paths are taken from the directory of the config file.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::Quotas;

/// The default listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7420";
/// The default data directory.
pub const DEFAULT_DATA_DIR: &str = "./streambus-tenancy-data";
/// The default interval of the alert sampler.
pub const DEFAULT_ALERT_INTERVAL: Duration = Duration::from_secs(10);

/// The configuration file, validated. Every field is optional; command-line
/// flags override it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    /// Address to listen on.
    pub listen: Option<SocketAddr>,
    /// Directory of the tenant database (and the token file by default).
    pub data_dir: Option<PathBuf>,
    /// File holding the admin token.
    pub token_file: Option<PathBuf>,
    /// How often the alert sampler runs.
    pub alert_interval: Option<Duration>,
    /// File of named tokens with roles ([`Tokens`](super::Tokens)).
    pub tokens_file: Option<PathBuf>,
    /// Serve `/metrics` without a token.
    pub public_metrics: Option<bool>,
    /// Which tenants get per-tenant series in `/metrics`.
    pub metrics_tenants: Option<super::TenantSeries>,
    /// Keep tenants in Redis at this URL instead of SQLite (feature
    /// `cluster`).
    pub redis: Option<RedisSetting>,
    /// Timeouts and limits set in the `[limits]` table (the rest default).
    pub limits: LimitsConfig,
    /// The operator's tiers, added to (or replacing) the built-in ones.
    pub tiers: BTreeMap<String, Quotas>,
}

/// The `[limits]` table: each key set overrides the default of
/// [`Limits`](super::Limits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimitsConfig {
    /// See [`Limits::header_read_timeout`](super::Limits::header_read_timeout).
    pub header_read_timeout: Option<Duration>,
    /// See [`Limits::request_timeout`](super::Limits::request_timeout).
    pub request_timeout: Option<Duration>,
    /// See [`Limits::max_connections`](super::Limits::max_connections).
    pub max_connections: Option<usize>,
    /// See [`Limits::max_concurrent_requests`](super::Limits::max_concurrent_requests).
    pub max_concurrent_requests: Option<usize>,
    /// See [`Limits::max_body_bytes`](super::Limits::max_body_bytes).
    pub max_body_bytes: Option<usize>,
}

impl LimitsConfig {
    /// `base` with the keys set here (later sources win: pass the file's
    /// values first, then the command line's).
    pub fn apply(&self, mut base: super::Limits) -> super::Limits {
        if let Some(v) = self.header_read_timeout {
            base.header_read_timeout = v;
        }
        if let Some(v) = self.request_timeout {
            base.request_timeout = v;
        }
        if let Some(v) = self.max_connections {
            base.max_connections = v;
        }
        if let Some(v) = self.max_concurrent_requests {
            base.max_concurrent_requests = v;
        }
        if let Some(v) = self.max_body_bytes {
            base.max_body_bytes = v;
        }
        base
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    header_read_timeout: Option<String>,
    request_timeout: Option<String>,
    max_connections: Option<usize>,
    max_concurrent_requests: Option<usize>,
    max_body_bytes: Option<SizeValue>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SizeValue {
    Bytes(usize),
    Text(String),
}

/// Parses a size: a number of bytes, or a number with `B`, `KiB`, `MiB` or
/// `GiB` (`1MiB`, `512 KiB`).
///
/// # Errors
///
/// A message saying what a size looks like.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => 0,
    };
    let n: Option<usize> = num.parse().ok();
    match (n, mult) {
        (Some(n), m) if m != 0 => n
            .checked_mul(m)
            .ok_or_else(|| format!("{s:?} is too large")),
        _ => Err(format!(
            "{s:?} is not a size like 1048576, \"512KiB\" or \"1MiB\""
        )),
    }
}

/// A TOML error as a message with its line and column, without the source
/// line that `toml`'s own `Display` quotes (it may hold a secret: a token,
/// a password in a Redis URL).
pub(crate) fn toml_error(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let start = before.rfind('\n').map_or(0, |i| i + 1);
            let column = before.len() - start + 1;
            // The key of that line (what is left of `=`, or a table header),
            // never its value.
            let text_line = text[start..].lines().next().unwrap_or("").trim();
            let key = match text_line.split_once('=') {
                Some((k, _)) => k.trim(),
                None if text_line.starts_with('[') => text_line,
                None => "",
            };
            if key.is_empty() {
                format!("line {line}, column {column}: {}", e.message())
            } else {
                format!("line {line}, column {column} ({key}): {}", e.message())
            }
        }
        None => e.message().to_owned(),
    }
}

/// Parses a duration like `10s` or `500ms` (humantime), naming the key.
fn duration(key: &str, s: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(s)
        .map_err(|e| ConfigError(format!("{key}: {s:?} is not a duration like \"10s\" ({e})")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    token_file: Option<PathBuf>,
    alert_interval: Option<String>,
    tokens_file: Option<PathBuf>,
    public_metrics: Option<bool>,
    metrics_tenants: Option<String>,
    redis: Option<String>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    tiers: BTreeMap<String, Quotas>,
}

/// The configuration could not be read or is invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and validates a config file.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the file and, for bad content, the key.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        let mut config =
            Config::parse(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new(""));
        for p in [
            &mut config.data_dir,
            &mut config.token_file,
            &mut config.tokens_file,
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(config)
    }

    /// Parses and validates config text.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the key that is wrong.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError(toml_error(text, &e)))?;
        let listen = raw
            .listen
            .map(|s| {
                s.parse::<SocketAddr>().map_err(|e| {
                    ConfigError(format!(
                        "listen: {s:?} is not an address like 127.0.0.1:7420 ({e})"
                    ))
                })
            })
            .transpose()?;
        let alert_interval = raw
            .alert_interval
            .map(|s| match humantime::parse_duration(&s) {
                Ok(d) if d >= Duration::from_millis(10) => Ok(d),
                Ok(_) => Err(ConfigError(format!(
                    "alert_interval: {s:?} is too short; use at least 10ms"
                ))),
                Err(e) => Err(ConfigError(format!(
                    "alert_interval: {s:?} is not a duration like \"10s\" ({e})"
                ))),
            })
            .transpose()?;
        for name in raw.tiers.keys() {
            validate_tier_name(name).map_err(|e| ConfigError(format!("tiers.{name}: {e}")))?;
        }
        let l = raw.limits;
        let limits = LimitsConfig {
            header_read_timeout: l
                .header_read_timeout
                .map(|s| duration("limits.header_read_timeout", &s))
                .transpose()?,
            request_timeout: l
                .request_timeout
                .map(|s| duration("limits.request_timeout", &s))
                .transpose()?,
            max_connections: l.max_connections,
            max_concurrent_requests: l.max_concurrent_requests,
            max_body_bytes: l
                .max_body_bytes
                .map(|v| match v {
                    SizeValue::Bytes(n) => Ok(n),
                    SizeValue::Text(s) => parse_size(&s)
                        .map_err(|e| ConfigError(format!("limits.max_body_bytes: {e}"))),
                })
                .transpose()?,
        };
        // Each value in range, named as in the file.
        limits
            .apply(super::Limits::default())
            .validate()
            .map_err(|e| ConfigError(format!("limits.{e}")))?;
        Ok(Config {
            listen,
            data_dir: raw.data_dir,
            token_file: raw.token_file,
            alert_interval,
            tokens_file: raw.tokens_file,
            public_metrics: raw.public_metrics,
            metrics_tenants: raw
                .metrics_tenants
                .map(|s| {
                    s.parse()
                        .map_err(|e| ConfigError(format!("metrics_tenants: {e}")))
                })
                .transpose()?,
            redis: raw.redis.map(RedisSetting::new).transpose()?,
            limits,
            tiers: raw.tiers,
        })
    }
}

/// A Redis URL as set in the config file or on the command line:
/// `redis://[USER:PASSWORD@]HOST:PORT[/DB]` or `rediss://...` (TLS).
/// `Debug` and `Display` hide the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisSetting(String);

impl RedisSetting {
    /// Checks the scheme (the rest is checked when connecting).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] saying what a Redis URL looks like, without the
    /// password.
    pub fn new(url: String) -> Result<RedisSetting, ConfigError> {
        if url.starts_with("redis://") || url.starts_with("rediss://") {
            Ok(RedisSetting(url))
        } else {
            Err(ConfigError(format!(
                "redis: {:?} is not a Redis URL: use redis://[USER:PASSWORD@]HOST:PORT[/DB], \
                 or rediss:// for TLS",
                redact_url(&url)
            )))
        }
    }

    /// The URL, password included: for connecting, never for logging.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the URL holds a password.
    pub fn has_password(&self) -> bool {
        redact_url(&self.0) != self.0
    }
}

impl fmt::Debug for RedisSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RedisSetting")
            .field(&redact_url(&self.0))
            .finish()
    }
}

impl fmt::Display for RedisSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// `url` with the password of its user info replaced by `***`: what may be
/// logged or shown.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<not a URL>".to_owned();
    };
    // The user info ends at the last `@` (a password may hold `/` or `?`
    // when a user forgets to percent-encode it: hide too much, never too
    // little).
    match rest.rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or("");
            let sep = if rest[..at].contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{sep}@{}", &rest[at + 1..])
        }
        None => url.to_owned(),
    }
}

fn validate_tier_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err("a tier name is 1 to 64 characters of a-z 0-9 - _".into())
    }
}

/// Named quota profiles usable as `"tier": "pro"` when creating a tenant.
///
/// Built in: `default` ([`Quotas::default`]), `free`, `pro` and `enterprise`
/// (the seed's profiles); the config file adds its own or replaces these.
#[derive(Clone, Debug, PartialEq)]
pub struct Tiers(BTreeMap<String, Quotas>);

impl Default for Tiers {
    fn default() -> Self {
        Tiers(
            [
                ("default", Quotas::default()),
                ("free", Quotas::free_tier()),
                ("pro", Quotas::pro_tier()),
                ("enterprise", Quotas::enterprise_tier()),
            ]
            .into_iter()
            .map(|(n, q)| (n.to_owned(), q))
            .collect(),
        )
    }
}

impl Tiers {
    /// The built-in tiers plus (overridden by) `extra`.
    pub fn with(extra: &BTreeMap<String, Quotas>) -> Tiers {
        let mut t = Tiers::default();
        t.0.extend(extra.iter().map(|(k, v)| (k.clone(), *v)));
        t
    }

    /// The quotas of a tier.
    pub fn get(&self, name: &str) -> Option<Quotas> {
        self.0.get(name).copied()
    }

    /// Every tier name, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_example() {
        let c = Config::parse(include_str!("../../tenancy.example.toml")).unwrap();
        assert_eq!(c.listen, Some(DEFAULT_LISTEN.parse().unwrap()));
        let tiers = Tiers::with(&c.tiers);
        assert!(tiers.get("gold").is_some());
        assert_eq!(tiers.get("free"), Some(Quotas::free_tier()));
    }

    #[test]
    fn toml_errors_do_not_quote_the_line() {
        let text = "redis = \"redis://:hunter2-secret@h:1\"\nnope = 1\n";
        let e = Config::parse(text).unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = Config::parse("listen = hunter2-unquoted")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn limits_and_sizes() {
        let c = Config::parse(
            "[limits]\nrequest_timeout = \"5s\"\nmax_body_bytes = \"64KiB\"\nmax_connections = 9",
        )
        .unwrap();
        let l = c.limits.apply(super::super::Limits::default());
        assert_eq!(l.request_timeout, Duration::from_secs(5));
        assert_eq!(l.max_body_bytes, 64 << 10);
        assert_eq!(l.max_connections, 9);
        assert_eq!(
            l.header_read_timeout,
            super::super::DEFAULT_HEADER_READ_TIMEOUT
        );
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("512 KiB"), Ok(512 << 10));
        assert_eq!(parse_size("2048"), Ok(2048));
        assert!(parse_size("1MB").unwrap_err().contains("not a size"));
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
    }

    #[test]
    fn a_redis_url_never_shows_its_password() {
        let c = Config::parse("redis = \"redis://:s3cret@127.0.0.1:6379/2\"").unwrap();
        let r = c.redis.unwrap();
        assert_eq!(r.expose(), "redis://:s3cret@127.0.0.1:6379/2");
        assert_eq!(r.to_string(), "redis://:***@127.0.0.1:6379/2");
        assert!(!format!("{r:?}").contains("s3cret"));
        assert!(r.has_password());
        for (url, shown) in [
            ("rediss://alice:s3cret@h:1", "rediss://alice:***@h:1"),
            ("redis://alice@h:1", "redis://alice@h:1"),
            ("redis://h:1/0", "redis://h:1/0"),
            ("redis://u:p/w@d@h:1", "redis://u:***@h:1"),
            ("h:1", "<not a URL>"),
        ] {
            assert_eq!(redact_url(url), shown);
        }
    }

    #[test]
    fn names_what_is_wrong() {
        for (text, needle) in [
            ("listen = \"nowhere\"", "listen"),
            ("alert_interval = \"soon\"", "alert_interval"),
            ("colour = \"blue\"", "colour"),
            ("[tiers.Gold]\nmax_topics = 1", "tiers.Gold"),
            ("[tiers.gold]\nmax_topics = -3", "max_topics"),
            ("[tiers.gold]\nmax_topicz = 3", "max_topicz"),
            (
                "[limits]\nrequest_timeout = \"0s\"",
                "limits.request_timeout",
            ),
            (
                "[limits]\nheader_read_timeout = \"fast\"",
                "limits.header_read_timeout",
            ),
            ("[limits]\nmax_connections = 0", "limits.max_connections"),
            (
                "[limits]\nmax_body_bytes = \"1 lot\"",
                "limits.max_body_bytes",
            ),
            ("[limits]\nmax_body_bytes = 10", "limits.max_body_bytes"),
            ("[limits]\nmax_body = 10", "max_body"),
            ("public_metrics = \"yes\"", "public_metrics"),
            ("metrics_tenants = \"some\"", "metrics_tenants"),
            ("metrics_tenants = \"above:101\"", "metrics_tenants"),
            ("redis = \"http://:pw@h:1\"", "redis: \"http://:***@h:1\""),
        ] {
            let e = Config::parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{e:?} lacks {needle}");
        }
    }
}
