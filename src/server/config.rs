//! The service's TOML configuration and its named quota tiers.
//!
//! ```toml
//! listen = "127.0.0.1:7420"
//! data_dir = "./streambus-tenancy-data"
//! token_file = "./streambus-tenancy-data/token"   # default: <data_dir>/token
//! alert_interval = "10s"
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
    /// The operator's tiers, added to (or replacing) the built-in ones.
    pub tiers: BTreeMap<String, Quotas>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    token_file: Option<PathBuf>,
    alert_interval: Option<String>,
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
        for p in [&mut config.data_dir, &mut config.token_file]
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
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError(e.to_string()))?;
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
        Ok(Config {
            listen,
            data_dir: raw.data_dir,
            token_file: raw.token_file,
            alert_interval,
            tiers: raw.tiers,
        })
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
    fn names_what_is_wrong() {
        for (text, needle) in [
            ("listen = \"nowhere\"", "listen"),
            ("alert_interval = \"soon\"", "alert_interval"),
            ("colour = \"blue\"", "colour"),
            ("[tiers.Gold]\nmax_topics = 1", "tiers.Gold"),
            ("[tiers.gold]\nmax_topics = -3", "max_topics"),
            ("[tiers.gold]\nmax_topicz = 3", "max_topicz"),
        ] {
            let e = Config::parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{e:?} lacks {needle}");
        }
    }
}
