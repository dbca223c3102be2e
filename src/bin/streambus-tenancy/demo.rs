//! The seed's "Complete Integration Example", made real: named and generated
//! tenants of mixed tiers, each offered more than its quota from many threads,
//! a table redrawn once a second, and a summary of what the engine cost.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use hdrhistogram::Histogram;
use streambus_tenancy::{Manager, Quotas};

/// Messages are 4 KiB; a call carries a batch of them.
const MESSAGE_BYTES: u64 = 4096;
/// Offered throughput for the unlimited tenant.
const UNLIMITED_OFFER: f64 = 64.0 * 1024.0 * 1024.0;

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Generated tenants of mixed tiers, besides startup-a, enterprise-b and free-tier.
    #[arg(long, default_value_t = 20)]
    tenants: usize,
    /// Threads driving produce calls (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// How long to run, e.g. 10s, 500ms, 2m.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// How much of its quota each tenant is offered (2 = twice its bytes/s).
    #[arg(long, default_value_t = 2.0)]
    overload: f64,
    /// Print only the final summary, not the live table.
    #[arg(long)]
    quiet: bool,
    /// Run as a cluster of broker processes sharing tenants and quotas
    /// through this Redis (redis://HOST:PORT, or a Redis Cluster node).
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// With --redis: how many broker processes.
    #[arg(long, default_value_t = 3, requires = "redis")]
    nodes: usize,
    /// With --redis: each tenant's bytes/s quota, e.g. 4MiB (with
    /// --pattern connections: its max_connections, e.g. 100).
    #[arg(long, default_value = "4MiB", requires = "redis")]
    quota: String,
    /// With --redis: how the offered load is spread over the nodes.
    #[arg(long, value_enum, default_value = "even", requires = "redis")]
    pattern: crate::cluster_demo::Pattern,
    /// With --redis: print one JSON object at the end instead of tables.
    #[arg(long, requires = "redis")]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tier {
    Default,
    Free,
    Pro,
    Enterprise,
}

impl Tier {
    fn name(self) -> &'static str {
        match self {
            Tier::Default => "default",
            Tier::Free => "free",
            Tier::Pro => "pro",
            Tier::Enterprise => "enterprise",
        }
    }

    fn quotas(self) -> Quotas {
        match self {
            Tier::Default => Quotas::default(),
            Tier::Free => Quotas::free_tier(),
            Tier::Pro => Quotas::pro_tier(),
            Tier::Enterprise => Quotas::enterprise_tier(),
        }
    }
}

/// One tenant as the load generator drives it.
struct Load {
    id: String,
    tier: Tier,
    quota_bytes: i64,
    /// Offered bytes per second.
    offer: f64,
    /// Messages per call (chosen so requests/s never binds before bytes/s).
    batch: u64,
    admitted_bytes: AtomicU64,
    refused_calls: AtomicU64,
    calls: AtomicU64,
}

impl Load {
    fn new(id: String, tier: Tier, overload: f64) -> Load {
        let q = tier.quotas();
        let offer = if q.max_bytes_per_second < 0 {
            UNLIMITED_OFFER
        } else {
            q.max_bytes_per_second as f64 * overload
        };
        // Keep the offered call rate under half the requests/s quota, so the
        // table shows bytes/s doing the limiting, as in the seed's example.
        let calls_cap = if q.max_requests_per_second > 0 {
            q.max_requests_per_second as f64 / 2.0
        } else {
            f64::INFINITY
        };
        let messages = offer / MESSAGE_BYTES as f64;
        let batch = (messages / calls_cap).ceil().max(1.0) as u64;
        Load {
            id,
            tier,
            quota_bytes: q.max_bytes_per_second,
            offer,
            batch,
            admitted_bytes: AtomicU64::new(0),
            refused_calls: AtomicU64::new(0),
            calls: AtomicU64::new(0),
        }
    }

    fn call_bytes(&self) -> u64 {
        self.batch * MESSAGE_BYTES
    }
}

pub(crate) fn run(args: DemoArgs) -> Result<(), String> {
    if let Some(redis) = args.redis.clone() {
        if args.duration.is_zero() || args.duration > Duration::from_secs(3600) {
            return Err(format!(
                "with --redis, --duration must be above 0 and at most 1h, got {:?}",
                args.duration
            ));
        }
        if !(args.overload.is_finite() && args.overload > 0.0 && args.overload <= 1000.0) {
            return Err(format!(
                "--overload must be a number above 0 and at most 1000, got {}",
                args.overload
            ));
        }
        let quota = streambus_tenancy::server::parse_size(&args.quota)
            .map_err(|e| format!("--quota: {e}"))? as u64;
        // The default of 20 generated tenants is for the one-process demo.
        let tenants = if std::env::args().any(|a| a == "--tenants" || a.starts_with("--tenants=")) {
            args.tenants
        } else {
            3
        };
        return crate::cluster_demo::run(crate::cluster_demo::ClusterDemo {
            redis,
            nodes: args.nodes,
            tenants,
            quota,
            overload: args.overload,
            pattern: args.pattern,
            duration: args.duration,
            json: args.json,
            quiet: args.quiet,
        });
    }
    if !(args.overload.is_finite() && args.overload > 0.0 && args.overload <= 1000.0) {
        return Err(format!(
            "--overload must be a number above 0 and at most 1000, got {}",
            args.overload
        ));
    }
    if args.duration.is_zero() || args.duration > Duration::from_secs(24 * 3600) {
        return Err(format!(
            "--duration must be above 0 and at most 24h, got {:?}",
            args.duration
        ));
    }
    if args.tenants > 1_000_000 {
        return Err(format!(
            "--tenants must be at most 1000000, got {}",
            args.tenants
        ));
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 || threads > 1024 {
        return Err(format!(
            "--threads must be between 1 and 1024, got {threads}"
        ));
    }

    let manager = Arc::new(Manager::new());
    let mut loads = vec![
        Load::new("startup-a".into(), Tier::Default, args.overload),
        Load::new("enterprise-b".into(), Tier::Enterprise, args.overload),
        Load::new("free-tier".into(), Tier::Free, args.overload),
    ];
    let names = ["Startup A", "Enterprise B", "Free User"];
    for (load, name) in loads.iter().zip(names) {
        manager
            .create_tenant(&load.id, name, load.tier.quotas())
            .map_err(|e| e.to_string())?;
    }
    let tiers = [Tier::Free, Tier::Default, Tier::Pro];
    for i in 0..args.tenants {
        let tier = tiers[i % tiers.len()];
        let id = format!("tenant-{i:05}");
        manager
            .create_tenant(&id, &format!("Generated tenant {i}"), tier.quotas())
            .map_err(|e| e.to_string())?;
        loads.push(Load::new(id, tier, args.overload));
    }
    let loads = Arc::new(loads);
    eprintln!(
        "demo: {} tenants, {threads} threads, {:?}, offering {}x each quota",
        loads.len(),
        args.duration,
        args.overload
    );

    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|w| {
            let (manager, loads, stop) = (manager.clone(), loads.clone(), stop.clone());
            std::thread::spawn(move || drive(w, threads, &manager, &loads, &stop, start))
        })
        .collect();

    let live = !args.quiet;
    let tty = std::io::stdout().is_terminal();
    let mut last: Vec<(u64, u64)> = vec![(0, 0); loads.len()];
    let mut last_at = Instant::now();
    while start.elapsed() < args.duration {
        let left = args.duration.saturating_sub(start.elapsed());
        std::thread::sleep(left.min(Duration::from_secs(1)));
        let dt = last_at.elapsed().as_secs_f64();
        last_at = Instant::now();
        let rows: Vec<_> = loads
            .iter()
            .zip(last.iter_mut())
            .map(|(l, prev)| {
                let now = (
                    l.admitted_bytes.load(Ordering::Relaxed),
                    l.refused_calls.load(Ordering::Relaxed),
                );
                let row = ((now.0 - prev.0) as f64 / dt, (now.1 - prev.1) as f64 / dt);
                *prev = now;
                row
            })
            .collect();
        if live {
            let table = live_table(&manager, &loads, &rows, start.elapsed());
            let mut out = std::io::stdout().lock();
            if tty {
                let _ = write!(out, "\x1b[2J\x1b[H");
            }
            let _ = writeln!(out, "{table}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut hist = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
    for w in workers {
        let h = w
            .join()
            .map_err(|_| "a worker thread panicked".to_string())?;
        hist.add(h).map_err(|e| e.to_string())?;
    }
    let elapsed = start.elapsed();
    println!("{}", summary(&loads, &hist, elapsed));
    Ok(())
}

/// One worker: offers its share of tenants their load, paced in real time,
/// timing every enforce call.
fn drive(
    worker: usize,
    threads: usize,
    manager: &Manager,
    loads: &[Load],
    stop: &AtomicBool,
    start: Instant,
) -> Histogram<u64> {
    let clock = quanta::Clock::new();
    let mut hist = Histogram::<u64>::new(3).expect("3 significant figures is valid");
    let mine: Vec<&Load> = loads.iter().skip(worker).step_by(threads).collect();
    let mut offered = vec![0f64; mine.len()];
    while !stop.load(Ordering::Relaxed) {
        let t = start.elapsed().as_secs_f64();
        let mut busy = false;
        for (load, offered) in mine.iter().zip(offered.iter_mut()) {
            let target = load.offer * t;
            let bytes = load.call_bytes();
            // Catch up to the offered rate, at most 256 calls per pass so every
            // tenant of this worker gets its turn.
            let mut n = 0;
            while *offered < target && n < 256 {
                let t0 = clock.raw();
                let r = manager.enforce_produce_quota(&load.id, bytes, load.batch);
                let t1 = clock.raw();
                let _ = hist.record(clock.delta_as_nanos(t0, t1).max(1));
                load.calls.fetch_add(1, Ordering::Relaxed);
                match r {
                    Ok(()) => {
                        load.admitted_bytes.fetch_add(bytes, Ordering::Relaxed);
                    }
                    Err(_) => {
                        load.refused_calls.fetch_add(1, Ordering::Relaxed);
                    }
                }
                *offered += bytes as f64;
                n += 1;
                busy = true;
            }
        }
        if !busy {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    hist
}

fn human_rate(bytes_per_sec: f64) -> String {
    const UNITS: [&str; 4] = ["B/s", "KiB/s", "MiB/s", "GiB/s"];
    let mut v = bytes_per_sec;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

fn live_table(manager: &Manager, loads: &[Load], rows: &[(f64, f64)], at: Duration) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "tenant",
        "tier",
        "quota bytes/s",
        "admitted bytes/s",
        "refused calls/s",
        "utilization",
    ]);
    // The three named tenants, then the generated ones, at most 12 rows.
    for (load, (admitted, refused)) in loads.iter().zip(rows).take(12) {
        let util = manager
            .get_utilization(&load.id)
            .ok()
            .and_then(|u| u.get("bytes_per_second").copied())
            .unwrap_or(0.0);
        let quota = if load.quota_bytes < 0 {
            "unlimited".to_string()
        } else {
            human_rate(load.quota_bytes as f64)
        };
        table.add_row(vec![
            Cell::new(&load.id),
            Cell::new(load.tier.name()),
            Cell::new(quota).set_alignment(CellAlignment::Right),
            Cell::new(human_rate(*admitted)).set_alignment(CellAlignment::Right),
            Cell::new(format!("{refused:.0}")).set_alignment(CellAlignment::Right),
            Cell::new(format!("{util:.1}%")).set_alignment(CellAlignment::Right),
        ]);
    }
    if loads.len() > 12 {
        table.add_row(vec![format!("... {} more", loads.len() - 12)]);
    }
    let mut title = Table::new();
    title.load_preset(comfy_table::presets::NOTHING);
    title.add_row(vec![format!(
        "streambus-tenancy demo: t = {:.0} s",
        at.as_secs_f64()
    )]);
    title.add_row(vec![table.to_string()]);
    title
}

fn summary(loads: &[Load], hist: &Histogram<u64>, elapsed: Duration) -> Table {
    let calls: u64 = loads.iter().map(|l| l.calls.load(Ordering::Relaxed)).sum();
    let refused: u64 = loads
        .iter()
        .map(|l| l.refused_calls.load(Ordering::Relaxed))
        .sum();
    let secs = elapsed.as_secs_f64();
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(vec!["summary", "value"]);
    t.add_row(vec!["duration".into(), format!("{secs:.2} s")]);
    t.add_row(vec!["tenants".into(), loads.len().to_string()]);
    t.add_row(vec!["enforce calls".into(), calls.to_string()]);
    t.add_row(vec!["refused calls".into(), refused.to_string()]);
    t.add_row(vec![
        "calls per second".into(),
        format!("{:.0}", calls as f64 / secs),
    ]);
    t.add_row(vec![
        "mean ns per enforce call".into(),
        format!("{:.1}", hist.mean()),
    ]);
    t.add_row(vec![
        "p99 ns per enforce call".into(),
        hist.value_at_quantile(0.99).to_string(),
    ]);
    for l in loads.iter().take(3) {
        let admitted = l.admitted_bytes.load(Ordering::Relaxed) as f64;
        let line = if l.quota_bytes < 0 {
            format!("{} admitted / unlimited quota", human_rate(admitted / secs))
        } else {
            let quota = l.quota_bytes as f64;
            format!(
                "{} / {} = {:.3}",
                human_rate(admitted / secs),
                human_rate(quota),
                admitted / secs / quota
            )
        };
        t.add_row(vec![format!("{} admitted/quota", l.id), line]);
    }
    t
}
