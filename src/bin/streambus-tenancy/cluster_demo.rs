//! `demo --redis URL --nodes N`: the demo as N broker processes sharing
//! their tenants and quotas through Redis.
//!
//! The parent writes the tenants to the Redis store, starts N copies of this
//! binary as `demo-node` (each a broker: a `Manager`, a `Follower` for the
//! tenants and a `ClusterSync` for the quotas, driving produce calls), and
//! shows a table, once a second, of the cluster-wide admitted rate against
//! each tenant's quota and each node's share. With `--json` it prints one
//! JSON object at the end instead. Admitted bytes are counted by the load
//! generators from the calls that returned `Ok`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use serde::{Deserialize, Serialize};
use streambus_tenancy::server::{ClusterOptions, ClusterSync, Follower, RedisStore, Store};
use streambus_tenancy::{Manager, Quotas, Tenant, TenantStatus};

/// Bytes per produce call.
const CALL_BYTES: u64 = 16 * 1024;
/// Length of one slot of the per-tenant time series.
const SLOT: Duration = Duration::from_millis(100);

/// How the offered load is spread over the nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Pattern {
    /// Every node offers overload x quota / nodes for the whole run.
    Even,
    /// Node 0 offers overload x quota for the first half, node 1 for the
    /// second half; the others offer nothing.
    Shift,
    /// No produce load: each node tries to open connections (the quota is
    /// then `max_connections`), holding every one it gets, up to
    /// `--attempts` tries.
    Connections,
}

/// What every node is told (as JSON in one argument).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Plan {
    redis: String,
    tenants: Vec<String>,
    quota: u64,
    nodes: usize,
    overload: f64,
    pattern: Pattern,
    duration_ms: u64,
    /// Wall-clock start, milliseconds since the Unix epoch.
    start_ms: u64,
    /// With `Pattern::Connections`: acquires each node tries.
    #[serde(default)]
    attempts: u64,
}

/// A node's line on stdout: progress once a second, then the result.
#[derive(Debug, Serialize, Deserialize)]
struct NodeLine {
    node: usize,
    /// Admitted bytes per tenant so far (plan order).
    admitted: Vec<u64>,
    /// At the end only: admitted bytes per tenant per 100 ms slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    slots: Option<Vec<Vec<u64>>>,
    /// When the line was written, milliseconds since the Unix epoch.
    #[serde(default)]
    at_ms: u64,
}

/// The arguments `demo` passes on.
pub(crate) struct ClusterDemo {
    pub(crate) redis: String,
    pub(crate) nodes: usize,
    pub(crate) tenants: usize,
    pub(crate) quota: u64,
    pub(crate) overload: f64,
    pub(crate) pattern: Pattern,
    pub(crate) duration: Duration,
    pub(crate) json: bool,
    pub(crate) quiet: bool,
}

/// `demo-node`: one broker of a cluster demo (started by `demo --redis`).
#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
    /// This node's index.
    #[arg(long)]
    node: usize,
    /// The plan, as JSON.
    #[arg(long)]
    plan: String,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Kills the nodes left when dropped (an error, or Ctrl-C of the parent).
struct Nodes(Vec<Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub(crate) fn run(d: ClusterDemo) -> Result<(), String> {
    if d.nodes == 0 || d.nodes > 64 {
        return Err(format!("--nodes must be between 1 and 64, got {}", d.nodes));
    }
    if d.tenants == 0 || d.tenants > 10_000 {
        return Err(format!(
            "with --redis, --tenants must be between 1 and 10000, got {}",
            d.tenants
        ));
    }
    if d.pattern != Pattern::Connections && d.quota < CALL_BYTES {
        return Err(format!(
            "--quota must be at least {CALL_BYTES} bytes/s (one call), got {}",
            d.quota
        ));
    }
    if d.pattern == Pattern::Shift && d.nodes < 2 {
        return Err("--pattern shift needs at least 2 nodes".into());
    }
    let ids: Vec<String> = (0..d.tenants).map(|i| format!("cluster-{i:04}")).collect();
    let quotas = if d.pattern == Pattern::Connections {
        Quotas {
            max_connections: d.quota.min(i64::MAX as u64) as i64,
            ..Quotas::unlimited()
        }
    } else {
        Quotas {
            max_bytes_per_second: d.quota as i64,
            max_messages_per_second: -1,
            max_requests_per_second: -1,
            ..Quotas::default()
        }
    };
    let mut store = RedisStore::open(&d.redis).map_err(|e| e.to_string())?;
    for id in &ids {
        let now = SystemTime::now();
        let existing = store.get(id).map_err(|e| e.to_string())?;
        let tenant = Tenant {
            id: id.clone(),
            name: format!("Cluster demo {id}"),
            description: String::new(),
            created_at: existing.as_ref().map_or(now, |(t, _)| t.created_at),
            updated_at: now,
            quotas,
            metadata: BTreeMap::new(),
            status: TenantStatus::Active,
        };
        let written = match existing {
            Some(_) => store.update(&tenant),
            None => store.insert(&tenant),
        };
        written.map_err(|e| format!("cannot write tenant {id} to Redis: {e}"))?;
    }
    // The nodes start together, after they have loaded the tenants and
    // attached their syncs.
    let start_ms = now_ms() + 3_000;
    let plan = Plan {
        redis: d.redis.clone(),
        tenants: ids.clone(),
        quota: d.quota,
        nodes: d.nodes,
        overload: d.overload,
        pattern: d.pattern,
        duration_ms: d.duration.as_millis() as u64,
        start_ms,
        attempts: 1000,
    };
    let plan_json = serde_json::to_string(&plan).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let (tx, rx) = mpsc::channel::<NodeLine>();
    let mut nodes = Nodes(Vec::new());
    let mut readers = Vec::new();
    for node in 0..d.nodes {
        let mut child = Command::new(&exe)
            .args([
                "demo-node",
                "--node",
                &node.to_string(),
                "--plan",
                &plan_json,
            ])
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start node {node}: {e}"))?;
        let out = child.stdout.take().expect("piped");
        nodes.0.push(child);
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<NodeLine>(&line) {
                    Ok(l) => {
                        if tx.send(l).is_err() {
                            break;
                        }
                    }
                    Err(e) => eprintln!("node {node}: unreadable line ({e}): {line}"),
                }
            }
        }));
    }
    drop(tx);
    if !d.json {
        eprintln!(
            "demo: {} nodes, {} tenants of {} bytes/s each, {:?}, offering {}x ({:?}); starting in 3 s",
            d.nodes,
            d.tenants,
            d.quota,
            d.duration,
            d.overload,
            d.pattern
        );
    }

    let mut progress = vec![vec![0u64; ids.len()]; d.nodes];
    let mut last_shown = vec![vec![0u64; ids.len()]; d.nodes];
    let mut last_at = Instant::now();
    let mut slots: Vec<Option<Vec<Vec<u64>>>> = vec![None; d.nodes];
    let live = !d.quiet && !d.json;
    let tty = std::io::stdout().is_terminal();
    while let Ok(line) = rx.recv() {
        if line.node >= d.nodes || line.admitted.len() != ids.len() {
            return Err(format!("node {} sent a malformed line", line.node));
        }
        progress[line.node] = line.admitted;
        if let Some(s) = line.slots {
            slots[line.node] = Some(s);
            continue;
        }
        // Redraw once every node has reported this second (or a second passed).
        if live && last_at.elapsed() >= Duration::from_millis(900) {
            let dt = last_at.elapsed().as_secs_f64();
            last_at = Instant::now();
            let table = live_table(&ids, d.quota, &progress, &mut last_shown, dt);
            if tty {
                print!("\x1b[2J\x1b[H");
            }
            println!("{table}");
            let _ = std::io::stdout().flush();
        }
    }
    for r in readers {
        let _ = r.join();
    }
    for (i, c) in nodes.0.iter_mut().enumerate() {
        let status = c.wait().map_err(|e| format!("node {i}: {e}"))?;
        if !status.success() {
            return Err(format!("node {i} failed ({status}); its errors are above"));
        }
    }
    nodes.0.clear();
    if slots.iter().any(Option::is_none) {
        return Err("a node ended without its result".into());
    }

    let duration_s = d.duration.as_secs_f64();
    if d.pattern == Pattern::Connections {
        let per_node: BTreeMap<String, u64> = (0..d.nodes)
            .map(|n| (format!("node-{n}"), progress[n][0]))
            .collect();
        let out = serde_json::json!({
            "duration_s": duration_s,
            "nodes": d.nodes,
            "pattern": d.pattern,
            "tenants": [{
                "id": ids[0],
                "max_connections": d.quota,
                "held_connections": per_node.values().sum::<u64>(),
                "per_node": per_node,
            }],
        });
        println!("{out}");
        return Ok(());
    }
    let mut tenants = Vec::new();
    for (t, id) in ids.iter().enumerate() {
        let per_node: BTreeMap<String, u64> = (0..d.nodes)
            .map(|n| (format!("node-{n}"), progress[n][t]))
            .collect();
        let admitted: u64 = per_node.values().sum();
        let n_slots = slots[0].as_ref().map_or(0, |s| s[t].len());
        let series: Vec<u64> = (0..n_slots)
            .map(|k| slots.iter().flatten().map(|s| s[t][k]).sum())
            .collect();
        let max_1s = series
            .windows(10)
            .map(|w| w.iter().sum::<u64>())
            .max()
            .unwrap_or(0);
        tenants.push(serde_json::json!({
            "id": id,
            "quota_bytes_per_second": d.quota,
            "admitted_bytes": admitted,
            "per_node": per_node,
            "admitted_per_100ms": series,
            "max_bytes_in_1s": max_1s,
        }));
    }
    let out = serde_json::json!({
        "duration_s": duration_s,
        "nodes": d.nodes,
        "pattern": d.pattern,
        "tenants": tenants,
    });
    if d.json {
        println!("{out}");
    } else {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
            "tenant",
            "quota (bytes/s)",
            "admitted (bytes)",
            "of quota x duration",
            "busiest 1 s / quota",
        ]);
        for t in out["tenants"].as_array().into_iter().flatten() {
            let admitted = t["admitted_bytes"].as_u64().unwrap_or(0) as f64;
            let max = t["max_bytes_in_1s"].as_u64().unwrap_or(0) as f64;
            table.add_row(vec![
                Cell::new(t["id"].as_str().unwrap_or("")),
                Cell::new(d.quota).set_alignment(CellAlignment::Right),
                Cell::new(admitted as u64).set_alignment(CellAlignment::Right),
                Cell::new(format!(
                    "{:.2}%",
                    100.0 * admitted / (d.quota as f64 * duration_s)
                ))
                .set_alignment(CellAlignment::Right),
                Cell::new(format!("{:.3}", max / d.quota as f64))
                    .set_alignment(CellAlignment::Right),
            ]);
        }
        println!("{table}");
    }
    Ok(())
}

/// The live table: per tenant, the cluster-wide rate since the last table
/// against its quota, and each node's share of it (the first 20 tenants).
fn live_table(
    ids: &[String],
    quota: u64,
    progress: &[Vec<u64>],
    last: &mut [Vec<u64>],
    dt: f64,
) -> Table {
    let mut header = vec![
        "tenant".to_string(),
        "quota (B/s)".into(),
        "cluster (B/s)".into(),
        "of quota".into(),
    ];
    header.extend((0..progress.len()).map(|n| format!("node-{n}")));
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(header);
    for (t, id) in ids.iter().enumerate().take(20) {
        // What each node admitted since the last table.
        let deltas: Vec<u64> = progress
            .iter()
            .zip(last.iter_mut())
            .map(|(p, l)| {
                let d = p[t].saturating_sub(l[t]);
                l[t] = p[t];
                d
            })
            .collect();
        let total: u64 = deltas.iter().sum();
        let rate = total as f64 / dt;
        let mut row = vec![
            Cell::new(id),
            Cell::new(quota).set_alignment(CellAlignment::Right),
            Cell::new(rate as u64).set_alignment(CellAlignment::Right),
            Cell::new(format!("{:.1}%", 100.0 * rate / quota as f64))
                .set_alignment(CellAlignment::Right),
        ];
        for d in &deltas {
            let share = if total == 0 {
                0.0
            } else {
                100.0 * *d as f64 / total as f64
            };
            row.push(Cell::new(format!("{share:.0}%")).set_alignment(CellAlignment::Right));
        }
        table.add_row(row);
    }
    table
}

/// One node: loads the tenants, attaches the sync, waits for the start,
/// drives produce calls at its offered rates, and reports.
pub(crate) fn run_node(args: NodeArgs) -> Result<(), String> {
    let plan: Plan = serde_json::from_str(&args.plan).map_err(|e| format!("bad --plan: {e}"))?;
    let manager = Arc::new(Manager::new());
    let follower =
        Follower::start(Arc::clone(&manager), &plan.redis, None).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while plan
        .tenants
        .iter()
        .any(|id| manager.get_tenant(id).is_err())
    {
        if Instant::now() > deadline {
            return Err(format!(
                "node {}: the tenants did not arrive from Redis",
                args.node
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let sync = ClusterSync::start(
        Arc::clone(&manager),
        &plan.redis,
        ClusterOptions::new(format!("node-{}", args.node)),
    )
    .map_err(|e| e.to_string())?;
    let wait = plan.start_ms.saturating_sub(now_ms());
    std::thread::sleep(Duration::from_millis(wait));
    if plan.pattern == Pattern::Connections {
        let result = connections(args.node, &plan, &sync);
        sync.stop();
        follower.stop();
        return result;
    }

    let duration = Duration::from_millis(plan.duration_ms);
    let n_slots = (plan.duration_ms as usize).div_ceil(SLOT.as_millis() as usize);
    let admitted: Arc<Vec<AtomicU64>> =
        Arc::new((0..plan.tenants.len()).map(|_| AtomicU64::new(0)).collect());
    let slots: Arc<Vec<Vec<AtomicU64>>> = Arc::new(
        (0..plan.tenants.len())
            .map(|_| (0..n_slots).map(|_| AtomicU64::new(0)).collect())
            .collect(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let plan = Arc::new(plan);
    let threads = 2usize;
    let workers: Vec<_> = (0..threads)
        .map(|w| {
            let (manager, plan, admitted, slots, stop) = (
                Arc::clone(&manager),
                Arc::clone(&plan),
                Arc::clone(&admitted),
                Arc::clone(&slots),
                Arc::clone(&stop),
            );
            let node = args.node;
            std::thread::spawn(move || {
                drive(
                    w, threads, node, &manager, &plan, &admitted, &slots, &stop, start,
                )
            })
        })
        .collect();
    let out = std::io::stdout();
    let mut next = start + Duration::from_secs(1);
    while start.elapsed() < duration {
        let left = duration.saturating_sub(start.elapsed());
        std::thread::sleep(left.min(next.saturating_duration_since(Instant::now())));
        if Instant::now() >= next {
            next += Duration::from_secs(1);
            let line = NodeLine {
                node: args.node,
                admitted: admitted.iter().map(|a| a.load(Ordering::Relaxed)).collect(),
                slots: None,
                at_ms: now_ms(),
            };
            let mut o = out.lock();
            let _ = writeln!(o, "{}", serde_json::to_string(&line).expect("serialisable"));
            let _ = o.flush();
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let line = NodeLine {
        node: args.node,
        admitted: admitted.iter().map(|a| a.load(Ordering::Relaxed)).collect(),
        slots: Some(
            slots
                .iter()
                .map(|s| s.iter().map(|a| a.load(Ordering::Relaxed)).collect())
                .collect(),
        ),
        at_ms: now_ms(),
    };
    let mut o = out.lock();
    writeln!(o, "{}", serde_json::to_string(&line).expect("serialisable"))
        .map_err(|e| e.to_string())?;
    o.flush().map_err(|e| e.to_string())?;
    drop(o);
    sync.stop();
    follower.stop();
    Ok(())
}

/// `Pattern::Connections`: tries `plan.attempts` acquires of the first
/// tenant's connections through the sync, holding every one granted, and
/// prints the count held every 50 ms and at the end.
fn connections(node: usize, plan: &Plan, sync: &ClusterSync) -> Result<(), String> {
    let id = plan.tenants.first().ok_or("no tenant")?;
    let start = Instant::now();
    let duration = Duration::from_millis(plan.duration_ms);
    let mut held = Vec::new();
    let mut tries = 0u64;
    let mut next_line = Instant::now();
    let out = std::io::stdout();
    let print = |held: usize, last: bool| -> Result<(), String> {
        let line = NodeLine {
            node,
            admitted: vec![held as u64; plan.tenants.len()],
            slots: last.then(|| vec![Vec::new(); plan.tenants.len()]),
            at_ms: now_ms(),
        };
        let mut o = out.lock();
        writeln!(o, "{}", serde_json::to_string(&line).expect("serialisable"))
            .and_then(|()| o.flush())
            .map_err(|e| e.to_string())
    };
    while start.elapsed() < duration {
        if tries < plan.attempts {
            tries += 1;
            match sync.acquire(id, streambus_tenancy::QuotaType::Connections) {
                Ok(p) => held.push(p),
                Err(streambus_tenancy::Error::QuotaExceeded(_)) => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                Err(e) => return Err(format!("node {node}: {e}")),
            }
        } else {
            std::thread::sleep(Duration::from_millis(5));
        }
        if Instant::now() >= next_line {
            next_line += Duration::from_millis(50);
            print(held.len(), false)?;
        }
    }
    print(held.len(), true)
}

/// What node `node` offers per second at `elapsed` into the run.
fn offer(plan: &Plan, node: usize, elapsed: Duration) -> f64 {
    let total = plan.overload * plan.quota as f64;
    match plan.pattern {
        Pattern::Even => total / plan.nodes as f64,
        Pattern::Connections => 0.0,
        Pattern::Shift => {
            let first_half = elapsed.as_millis() < u128::from(plan.duration_ms / 2);
            match (node, first_half) {
                (0, true) | (1, false) => total,
                _ => 0.0,
            }
        }
    }
}

/// A worker: paces calls of [`CALL_BYTES`] for its share of the tenants at
/// the offered rate, counting what is admitted.
#[allow(clippy::too_many_arguments)]
fn drive(
    w: usize,
    threads: usize,
    node: usize,
    manager: &Manager,
    plan: &Plan,
    admitted: &[AtomicU64],
    slots: &[Vec<AtomicU64>],
    stop: &AtomicBool,
    start: Instant,
) {
    let mine: Vec<usize> = (w..plan.tenants.len()).step_by(threads).collect();
    let mut credit = vec![0f64; mine.len()];
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(1));
        let now = Instant::now();
        let dt = now.duration_since(last).as_secs_f64();
        last = now;
        let elapsed = now.duration_since(start);
        if elapsed.as_millis() >= u128::from(plan.duration_ms) {
            // The run is over: nothing more is offered (so that every
            // admitted call falls in a slot of the time series).
            break;
        }
        let rate = offer(plan, node, elapsed);
        let slot = (elapsed.as_millis() / SLOT.as_millis()) as usize;
        for (k, &t) in mine.iter().enumerate() {
            // At most one second of credit, so a stall does not burst.
            credit[k] = (credit[k] + rate * dt).min(rate.max(CALL_BYTES as f64));
            while credit[k] >= CALL_BYTES as f64 {
                credit[k] -= CALL_BYTES as f64;
                let id = &plan.tenants[t];
                if manager.enforce_produce_quota(id, CALL_BYTES, 1).is_ok() {
                    admitted[t].fetch_add(CALL_BYTES, Ordering::Relaxed);
                    if let Some(s) = slots[t].get(slot) {
                        s.fetch_add(CALL_BYTES, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}
