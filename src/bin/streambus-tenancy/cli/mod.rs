//! `streambus-tenancy tenants ...`: the admin API's command-line client.
//! Tables in human units by default, the server's JSON with `--output json`.
//!
//! The server may be `http://` or `https://`. The token comes from
//! `--token-file` or `STREAMBUS_TENANCY_TOKEN`; `--token` works too, with a
//! warning, since a command line is visible to every user of the machine.

mod client;
mod tables;

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Map, Value};
use streambus_tenancy::server::{StatsJson, TenantJson, TenantListJson, MAX_PAGE_LIMIT};

use client::{encode, Answer, Client, TokenArgs};

#[derive(Debug, Args)]
pub(crate) struct TenantsArgs {
    /// Server URL, http:// or https:// [env STREAMBUS_TENANCY_URL; default
    /// http://127.0.0.1:7420].
    #[arg(long, global = true)]
    server: Option<String>,
    /// Admin token. Visible to other users in `ps`: prefer --token-file or
    /// STREAMBUS_TENANCY_TOKEN.
    #[arg(long, global = true)]
    token: Option<String>,
    /// File holding the admin token [else env STREAMBUS_TENANCY_TOKEN, else
    /// ./streambus-tenancy-data/token].
    #[arg(long, global = true)]
    token_file: Option<PathBuf>,
    /// Output: tables in human units, or the server's JSON with exact numbers.
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// The same as --output json.
    #[arg(long, global = true, hide = true, conflicts_with = "output")]
    json: bool,
    #[command(subcommand)]
    command: TenantsCommand,
}

/// What the commands print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    /// Tables, sizes and rates in human units (KiB, MiB/s, ...).
    Table,
    /// The server's JSON, numbers exact.
    Json,
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
    /// List tenants in id order: every one, or the first --limit.
    List {
        /// Show at most this many tenants [default: all].
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,
        /// Start after this tenant id (the `next` of an earlier listing).
        #[arg(long)]
        after: Option<String>,
        /// Tenants fetched per request, 1 to 1000 [default: 1000].
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_PAGE_LIMIT as u64))]
        page_size: Option<u64>,
    },
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

pub(crate) fn run(args: TenantsArgs) -> Result<(), String> {
    let tokens = TokenArgs {
        token: args.token.as_deref(),
        token_file: args.token_file.as_deref(),
    };
    let client = Client::new(args.server.as_deref(), &tokens)?;
    let json = args.json || args.output == Output::Json;
    match &args.command {
        TenantsCommand::List {
            limit,
            after,
            page_size,
        } => {
            let list = list(&client, *limit, after.clone(), *page_size)?;
            if json {
                let text = serde_json::to_string_pretty(&list).map_err(|e| e.to_string())?;
                say(&text);
            } else {
                say(&tables::list_table(&list.tenants, &list_footer(&list)));
            }
            Ok(())
        }
        TenantsCommand::Get { id } => {
            let a = client.call("GET", &tenant_path(id, ""), None)?;
            print_or(json, &a, |t: TenantJson| tables::tenant_table(&t))
        }
        TenantsCommand::Create { id, fields } => {
            let mut body = fields.to_json()?;
            body.insert("id".into(), Value::String(id.clone()));
            body.entry("name")
                .or_insert_with(|| Value::String(id.clone()));
            let a = client.call("POST", "/api/v1/tenants", Some(&Value::Object(body)))?;
            print_or(json, &a, |t: TenantJson| {
                format!("created tenant {}\n{}", t.id, tables::tenant_table(&t))
            })
        }
        TenantsCommand::Update { id, fields } => {
            let body = fields.to_json()?;
            let a = client.call("PUT", &tenant_path(id, ""), Some(&Value::Object(body)))?;
            print_or(json, &a, |t: TenantJson| {
                format!("updated tenant {}\n{}", t.id, tables::tenant_table(&t))
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
            print_or(json, &a, |s: StatsJson| tables::stats_table(&s))
        }
    }
}

/// Reads pages of `GET /api/v1/tenants`, following `next` until it is
/// `null` or `limit` tenants are in. The answer has the API's shape: `count`
/// is the number read, `total` the server's, and `next` the cursor after
/// the last one read while more remain.
fn list(
    client: &Client,
    limit: Option<u64>,
    mut after: Option<String>,
    page_size: Option<u64>,
) -> Result<TenantListJson, String> {
    let page_size = page_size.unwrap_or(MAX_PAGE_LIMIT as u64);
    let mut all = TenantListJson {
        tenants: Vec::new(),
        count: 0,
        total: 0,
        next: None,
    };
    loop {
        let left = limit.map_or(u64::MAX, |l| l.saturating_sub(all.tenants.len() as u64));
        let mut path = format!("/api/v1/tenants?limit={}", page_size.min(left));
        if let Some(a) = &after {
            path.push_str(&format!("&after={}", encode(a)));
        }
        let a = client.call("GET", &path, None)?;
        let page: TenantListJson = serde_json::from_value(a.body)
            .map_err(|e| format!("unexpected answer from the server: {e}"))?;
        all.total = page.total;
        all.next = page.next;
        all.tenants.extend(page.tenants);
        match &all.next {
            None => break,
            Some(_) if all.tenants.len() as u64 >= limit.unwrap_or(u64::MAX) => break,
            // A cursor that does not move forward would loop for ever.
            Some(next) if after.as_ref().is_some_and(|a| next <= a) => {
                return Err(format!(
                    "the server's next cursor {next:?} does not follow {after:?}"
                ));
            }
            Some(next) => after = Some(next.clone()),
        }
    }
    all.count = all.tenants.len();
    Ok(all)
}

fn list_footer(l: &TenantListJson) -> String {
    match &l.next {
        None if l.count == l.total => format!("{} tenant(s)", tables::grouped(l.count as u64)),
        None => format!(
            "{} of {} tenant(s)",
            tables::grouped(l.count as u64),
            tables::grouped(l.total as u64)
        ),
        Some(next) => format!(
            "{} of {} tenant(s); more follow: --after {next}",
            tables::grouped(l.count as u64),
            tables::grouped(l.total as u64)
        ),
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
    format!("/api/v1/tenants/{}{rest}", encode(id))
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
