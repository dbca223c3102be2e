//! `streambus-tenancy tenants ...`: the admin API's command-line client.
//! Tables by default, the server's JSON with `--json`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use serde_json::{Map, Value};
use streambus_tenancy::server::{
    ErrorBody, StatsJson, TenantJson, TenantListJson, UsageJson, DEFAULT_DATA_DIR,
};

const DEFAULT_SERVER: &str = "http://127.0.0.1:7420";

#[derive(Debug, Args)]
pub(crate) struct TenantsArgs {
    /// Server URL [env STREAMBUS_TENANCY_URL; default http://127.0.0.1:7420].
    #[arg(long, global = true)]
    server: Option<String>,
    /// Admin token [env STREAMBUS_TENANCY_TOKEN; else read from --token-file].
    #[arg(long, global = true)]
    token: Option<String>,
    /// File holding the admin token [default: ./streambus-tenancy-data/token].
    #[arg(long, global = true)]
    token_file: Option<PathBuf>,
    /// Print the server's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: TenantsCommand,
}

/// Fields shared by create and update.
#[derive(Debug, Args)]
struct TenantFields {
    /// Display name.
    #[arg(long)]
    name: Option<String>,
    /// Free-text description.
    #[arg(long)]
    description: Option<String>,
    /// Quota tier: free, pro, enterprise, default, or one from the server's config.
    #[arg(long)]
    tier: Option<String>,
    /// A quota, e.g. --quota max_connections=50 (or unlimited); repeatable.
    #[arg(long = "quota", value_name = "FIELD=VALUE")]
    quotas: Vec<String>,
    /// A metadata label, e.g. --meta team=payments; repeatable. On update, the
    /// labels given replace all old ones.
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    metadata: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum TenantsCommand {
    /// List every tenant.
    List,
    /// Show one tenant.
    Get {
        /// Tenant id.
        id: String,
    },
    /// Create a tenant (quotas from --tier, overridden by --quota).
    Create {
        /// Tenant id: 1 to 128 characters of A-Z a-z 0-9 . _ -
        id: String,
        #[command(flatten)]
        fields: TenantFields,
    },
    /// Change a tenant: only what is given changes.
    Update {
        /// Tenant id.
        id: String,
        #[command(flatten)]
        fields: TenantFields,
    },
    /// Suspend a tenant: every admission is refused.
    Suspend {
        /// Tenant id.
        id: String,
    },
    /// Re-activate a suspended tenant.
    Activate {
        /// Tenant id.
        id: String,
    },
    /// Delete a tenant (refused while it holds connections, unless --force).
    Delete {
        /// Tenant id.
        id: String,
        /// Delete even while it holds connections.
        #[arg(long)]
        force: bool,
    },
    /// Usage, utilization, alerts and counters of a tenant.
    Stats {
        /// Tenant id.
        id: String,
    },
}

struct Client {
    agent: ureq::Agent,
    base: String,
    auth: String,
}

/// A decoded answer: status and JSON body (`Null` for an empty body).
struct Answer {
    status: u16,
    body: Value,
}

impl Client {
    fn new(args: &TenantsArgs) -> Result<Client, String> {
        let base = args
            .server
            .clone()
            .or_else(|| std::env::var("STREAMBUS_TENANCY_URL").ok())
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
        let base = base.trim_end_matches('/').to_owned();
        if !base.starts_with("http://") {
            return Err(format!(
                "--server must be an http:// URL (the service speaks plain HTTP on loopback), got {base:?}"
            ));
        }
        let token = match args.token.clone().or_else(|| {
            std::env::var("STREAMBUS_TENANCY_TOKEN")
                .ok()
                .filter(|t| !t.trim().is_empty())
        }) {
            Some(t) => t,
            None => {
                let file = args
                    .token_file
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR).join("token"));
                std::fs::read_to_string(&file).map_err(|e| {
                    format!(
                        "no admin token: pass --token, set STREAMBUS_TENANCY_TOKEN, or point \
                         --token-file at the server's token file ({}: {e})",
                        file.display()
                    )
                })?
            }
        };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build();
        Ok(Client {
            agent: ureq::Agent::new_with_config(config),
            base,
            auth: format!("Bearer {}", token.trim()),
        })
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Answer, String> {
        let url = format!("{}{path}", self.base);
        let result = match (method, body) {
            ("GET", _) => self
                .agent
                .get(&url)
                .header("Authorization", &self.auth)
                .call(),
            ("DELETE", _) => self
                .agent
                .delete(&url)
                .header("Authorization", &self.auth)
                .call(),
            ("POST", None) => self
                .agent
                .post(&url)
                .header("Authorization", &self.auth)
                .send_empty(),
            ("POST", Some(b)) => self
                .agent
                .post(&url)
                .header("Authorization", &self.auth)
                .header("Content-Type", "application/json")
                .send(b.to_string()),
            ("PUT", b) => self
                .agent
                .put(&url)
                .header("Authorization", &self.auth)
                .header("Content-Type", "application/json")
                .send(b.unwrap_or(&Value::Null).to_string()),
            _ => unreachable!("the client only uses GET, POST, PUT and DELETE"),
        };
        let mut resp = result.map_err(|e| format!("cannot reach {}: {e}", self.base))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("cannot read the answer from {}: {e}", self.base))?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .map_err(|e| format!("the server answered {status} with non-JSON ({e}): {text}"))?
        };
        if (200..300).contains(&status) {
            Ok(Answer { status, body })
        } else {
            let msg = match serde_json::from_value::<ErrorBody>(body) {
                Ok(e) => format!("{} (HTTP {status}, {})", e.error, e.code),
                Err(_) => format!("HTTP {status}"),
            };
            Err(msg)
        }
    }
}

pub(crate) fn run(args: TenantsArgs) -> Result<(), String> {
    let client = Client::new(&args)?;
    let json = args.json;
    match &args.command {
        TenantsCommand::List => {
            let a = client.call("GET", "/api/v1/tenants", None)?;
            print_or(json, &a, |v: TenantListJson| list_table(&v))
        }
        TenantsCommand::Get { id } => {
            let a = client.call("GET", &tenant_path(id, ""), None)?;
            print_or(json, &a, |t: TenantJson| tenant_table(&t))
        }
        TenantsCommand::Create { id, fields } => {
            let mut body = fields.to_json()?;
            body.insert("id".into(), Value::String(id.clone()));
            body.entry("name")
                .or_insert_with(|| Value::String(id.clone()));
            let a = client.call("POST", "/api/v1/tenants", Some(&Value::Object(body)))?;
            print_or(json, &a, |t: TenantJson| {
                format!("created tenant {}\n{}", t.id, tenant_table(&t))
            })
        }
        TenantsCommand::Update { id, fields } => {
            let body = fields.to_json()?;
            let a = client.call("PUT", &tenant_path(id, ""), Some(&Value::Object(body)))?;
            print_or(json, &a, |t: TenantJson| {
                format!("updated tenant {}\n{}", t.id, tenant_table(&t))
            })
        }
        TenantsCommand::Suspend { id } => {
            let a = client.call("POST", &tenant_path(id, "/suspend"), None)?;
            print_or(json, &a, |t: TenantJson| {
                format!("tenant {} is {}", t.id, t.status)
            })
        }
        TenantsCommand::Activate { id } => {
            let a = client.call("POST", &tenant_path(id, "/activate"), None)?;
            print_or(json, &a, |t: TenantJson| {
                format!("tenant {} is {}", t.id, t.status)
            })
        }
        TenantsCommand::Delete { id, force } => {
            let q = if *force { "?force=true" } else { "" };
            let a = client.call("DELETE", &tenant_path(id, q), None)?;
            if json {
                say(&serde_json::json!({"deleted": id, "status": a.status}).to_string());
            } else {
                say(&format!("deleted tenant {id}"));
            }
            Ok(())
        }
        TenantsCommand::Stats { id } => {
            let a = client.call("GET", &tenant_path(id, "/stats"), None)?;
            print_or(json, &a, |s: StatsJson| stats_table(&s))
        }
    }
}

/// Prints a line; a closed pipe (`... | head`) ends the output quietly
/// instead of panicking.
fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}") {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write the output: {e}");
        }
    }
}

/// `/api/v1/tenants/{id}{rest}`, the id percent-encoded.
fn tenant_path(id: &str, rest: &str) -> String {
    let mut enc = String::new();
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            enc.push(b as char);
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    format!("/api/v1/tenants/{enc}{rest}")
}

fn print_or<T: serde::de::DeserializeOwned>(
    json: bool,
    a: &Answer,
    table: impl FnOnce(T) -> String,
) -> Result<(), String> {
    if json {
        let text = serde_json::to_string_pretty(&a.body).map_err(|e| e.to_string())?;
        say(&text);
        return Ok(());
    }
    let v: T = serde_json::from_value(a.body.clone())
        .map_err(|e| format!("unexpected answer from the server: {e}"))?;
    say(&table(v));
    Ok(())
}

impl TenantFields {
    fn to_json(&self) -> Result<Map<String, Value>, String> {
        let mut body = Map::new();
        if let Some(n) = &self.name {
            body.insert("name".into(), n.clone().into());
        }
        if let Some(d) = &self.description {
            body.insert("description".into(), d.clone().into());
        }
        if let Some(t) = &self.tier {
            body.insert("tier".into(), t.clone().into());
        }
        if !self.quotas.is_empty() {
            let mut q = Map::new();
            for kv in &self.quotas {
                let (k, v) = split_pair(kv, "--quota")?;
                let n = match v {
                    "unlimited" => -1,
                    v => v.parse::<i64>().map_err(|_| {
                        format!("--quota {kv}: the value must be an integer or \"unlimited\"")
                    })?,
                };
                q.insert(k.to_owned(), n.into());
            }
            body.insert("quotas".into(), Value::Object(q));
        }
        if !self.metadata.is_empty() {
            let mut m = Map::new();
            for kv in &self.metadata {
                let (k, v) = split_pair(kv, "--meta")?;
                m.insert(k.to_owned(), v.into());
            }
            body.insert("metadata".into(), Value::Object(m));
        }
        Ok(body)
    }
}

fn split_pair<'a>(kv: &'a str, flag: &str) -> Result<(&'a str, &'a str), String> {
    kv.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("{flag} {kv}: expected KEY=VALUE"))
}

fn limit(v: i64) -> String {
    if v < 0 {
        "unlimited".into()
    } else {
        v.to_string()
    }
}

fn when(secs: f64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_secs_f64(secs.max(0.0));
    humantime::format_rfc3339_seconds(t).to_string()
}

fn table() -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t
}

fn list_table(l: &TenantListJson) -> String {
    let mut t = table();
    t.set_header(vec![
        "ID",
        "NAME",
        "STATUS",
        "BYTES/S",
        "CONNECTIONS",
        "TOPICS",
        "CREATED",
    ]);
    for x in &l.tenants {
        t.add_row(vec![
            Cell::new(&x.id),
            Cell::new(&x.name),
            Cell::new(&x.status),
            Cell::new(limit(x.quotas.max_bytes_per_second)).set_alignment(CellAlignment::Right),
            Cell::new(limit(x.quotas.max_connections)).set_alignment(CellAlignment::Right),
            Cell::new(limit(x.quotas.max_topics)).set_alignment(CellAlignment::Right),
            Cell::new(when(x.created_at)),
        ]);
    }
    format!("{t}\n{} tenant(s)", l.count)
}

fn quota_rows(x: &TenantJson) -> Vec<(&'static str, i64)> {
    let q = &x.quotas;
    vec![
        ("max_bytes_per_second", q.max_bytes_per_second),
        ("max_messages_per_second", q.max_messages_per_second),
        ("max_requests_per_second", q.max_requests_per_second),
        ("max_storage_bytes", q.max_storage_bytes),
        ("max_topics", q.max_topics),
        ("max_partitions", q.max_partitions),
        ("max_connections", q.max_connections),
        ("max_producers", q.max_producers),
        ("max_consumers", q.max_consumers),
        ("max_consumer_groups", q.max_consumer_groups),
        ("max_retention_hours", q.max_retention_hours),
    ]
}

fn tenant_table(x: &TenantJson) -> String {
    let mut t = table();
    t.set_header(vec!["FIELD", "VALUE"]);
    t.add_row(vec!["id", &x.id]);
    t.add_row(vec!["name", &x.name]);
    t.add_row(vec!["description", &x.description]);
    t.add_row(vec!["status", &x.status]);
    t.add_row(vec!["created", &when(x.created_at)]);
    t.add_row(vec!["updated", &when(x.updated_at)]);
    for (k, v) in &x.metadata {
        t.add_row(vec![format!("metadata.{k}"), v.clone()]);
    }
    for (k, v) in quota_rows(x) {
        t.add_row(vec![
            Cell::new(k),
            Cell::new(limit(v)).set_alignment(CellAlignment::Right),
        ]);
    }
    t.to_string()
}

fn stats_table(s: &StatsJson) -> String {
    let usage = usage_by_quota(&s.usage);
    let alerts: BTreeMap<&str, &str> = s
        .alerts
        .iter()
        .map(|a| (a.quota.as_str(), a.level.as_str()))
        .collect();
    let mut t = table();
    t.set_header(vec![
        "QUOTA",
        "USAGE",
        "LIMIT",
        "UTILIZATION",
        "ALERT",
        "REFUSED",
    ]);
    for (field, lim) in quota_rows(&s.tenant) {
        let name = quota_name(field);
        let util = s
            .utilization
            .get(name)
            .map(|u| format!("{u:.1}%"))
            .unwrap_or_default();
        t.add_row(vec![
            Cell::new(name),
            Cell::new(usage.get(name).map(u64::to_string).unwrap_or_default())
                .set_alignment(CellAlignment::Right),
            Cell::new(limit(lim)).set_alignment(CellAlignment::Right),
            Cell::new(util).set_alignment(CellAlignment::Right),
            Cell::new(alerts.get(name).copied().unwrap_or("")),
            Cell::new(s.counters.refused.get(name).copied().unwrap_or(0))
                .set_alignment(CellAlignment::Right),
        ]);
    }
    format!(
        "tenant {} ({}), {}\n{t}\nadmitted: {} bytes, {} messages, {} requests; refused while suspended: {}",
        s.tenant.id,
        s.tenant.name,
        s.tenant.status,
        s.counters.admitted_bytes,
        s.counters.admitted_messages,
        s.counters.admitted_requests,
        s.counters.refused_not_active
    )
}

/// `max_storage_bytes` -> `storage`, `max_topics` -> `topics`, ...
fn quota_name(field: &str) -> &str {
    match field {
        "max_storage_bytes" => "storage",
        f => f.trim_start_matches("max_"),
    }
}

fn usage_by_quota(u: &UsageJson) -> BTreeMap<&'static str, u64> {
    BTreeMap::from([
        ("bytes_per_second", u.bytes_per_second),
        ("messages_per_second", u.messages_per_second),
        ("requests_per_second", u.requests_per_second),
        ("storage", u.storage_bytes),
        ("topics", u.topics),
        ("partitions", u.partitions),
        ("connections", u.connections),
        ("producers", u.producers),
        ("consumers", u.consumers),
        ("consumer_groups", u.consumer_groups),
    ])
}
