//! Memory and scale: bytes per tenant, peak RSS, creating and reporting on
//! a million tenants, and allocations on the enforce path.
//!
//! A plain program (`harness = false`) with a counting global allocator:
//!
//! 1. bytes per tenant at 10k, 100k and 1M tenants, everything included (map,
//!    ids, names, trackers, windows): the live heap bytes the allocator was
//!    asked for after creating the tenants, less those before, divided by the
//!    count. Our engine, the seed port, and governor's keyed limiter (one
//!    8-byte state per key, for scale).
//! 2. For 1M tenants, each implementation in a fresh child process (this same
//!    binary re-run with `--child IMPL`), three rounds interleaved: time to
//!    create them, VmRSS and VmHWM (peak RSS) from `/proc/self/status`, and
//!    `get_all_usage` over all of them (medians). RSS also counts what malloc rounds up and keeps, which the
//!    counting allocator does not.
//! 3. Heap allocations per call on the enforce path, admitted and refused.
//!
//! Run: `cargo bench --bench memory`.

mod common;
mod seed_port;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::process::Command;
use std::sync::atomic::{AtomicIsize, AtomicU64, Ordering};
use std::time::Instant;

use streambus_tenancy::Manager;

use common::*;
use seed_port::SeedManager;

/// Counts live bytes and allocation calls, then defers to the system
/// allocator.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees are ours; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator with this layout.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with this layout.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn allocs() -> u64 {
    ALLOCS.load(Ordering::Relaxed)
}

/// The ids are formatted into one reused buffer, so the measurement holds
/// only what the implementation keeps.
fn for_each_id(n: usize, mut f: impl FnMut(&str)) {
    use std::fmt::Write;
    let mut buf = String::with_capacity(32);
    for i in 0..n {
        buf.clear();
        write!(buf, "tenant-{i:08}").unwrap();
        f(&buf);
    }
}

const IMPLS: [&str; 4] = ["ours", "ours-capacity", "seed", "governor"];

/// Something holding `n` tenants, kept alive until dropped.
enum Held {
    Ours(Manager),
    Seed(SeedManager),
    // Held only so its keys stay alive while measured.
    Governor(#[allow(dead_code)] governor::DefaultKeyedRateLimiter<String>),
}

impl Held {
    fn create(which: &str, n: usize) -> Held {
        let quotas = roomy_quotas();
        match which {
            "ours" => {
                let m = Manager::new();
                for_each_id(n, |id| {
                    m.create_tenant(id, "Bench tenant", quotas).unwrap();
                });
                Held::Ours(m)
            }
            "ours-capacity" => {
                let m = Manager::builder().capacity(n).build();
                for_each_id(n, |id| {
                    m.create_tenant(id, "Bench tenant", quotas).unwrap();
                });
                Held::Ours(m)
            }
            "seed" => {
                let m = SeedManager::new();
                for_each_id(n, |id| {
                    m.create_tenant(id, "Bench tenant", quotas).unwrap();
                });
                Held::Seed(m)
            }
            "governor" => {
                let g = governor::DefaultKeyedRateLimiter::keyed(governor_roomy_quota());
                for_each_id(n, |id| {
                    let _ = g.check_key_n(&id.to_owned(), gov_n());
                });
                Held::Governor(g)
            }
            other => panic!("unknown implementation {other}"),
        }
    }

    /// `get_all_usage` over every tenant; returns how many were reported.
    fn all_usage(&self) -> Option<usize> {
        match self {
            Held::Ours(m) => Some(black_box(m.get_all_usage()).len()),
            Held::Seed(m) => Some(black_box(m.get_all_usage()).len()),
            Held::Governor(_) => None,
        }
    }
}

fn bytes_per_tenant(which: &str, n: usize) -> f64 {
    let before = live();
    let held = Held::create(which, n);
    let after = live();
    drop(held);
    (after - before) as f64 / n as f64
}

/// `(VmRSS, VmHWM)` in bytes.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The child: one implementation, 1M tenants, in a fresh process.
fn child(which: &str, n: usize) {
    let (rss_before, _) = rss();
    let start = Instant::now();
    let held = Held::create(which, n);
    let create = start.elapsed();
    let (rss_after, hwm) = rss();
    let mut usage = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        if held.all_usage().is_some() {
            usage.push(start.elapsed());
        }
    }
    usage.sort();
    let usage_ms = usage
        .get(usage.len() / 2)
        .map_or(-1.0, |d| d.as_secs_f64() * 1e3);
    println!(
        "CHILD {which} {n} {:.3} {rss_before} {rss_after} {hwm} {usage_ms:.1}",
        create.as_secs_f64()
    );
}

/// Allocation calls per call of `f`, over `calls` calls.
fn allocs_per_call(calls: usize, mut f: impl FnMut()) -> f64 {
    let before = allocs();
    for _ in 0..calls {
        f();
    }
    (allocs() - before) as f64 / calls as f64
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let which = &args[i + 1];
        let n: usize = args[i + 2].parse().unwrap();
        child(which, n);
        return;
    }
    // `cargo bench -- FILTER`: this program has one report; ignore filters.
    let quick = std::env::var_os("MEMORY_BENCH_QUICK").is_some();
    let sizes: &[usize] = if quick {
        &[10_000]
    } else {
        &[10_000, 100_000, 1_000_000]
    };

    println!(
        "sizes: QuotaTracker {} B (+16 B Arc header), Quotas {} B (+16), Usage {} B; \
         seed port: SeedTracker {} B, RateWindow {} B\n",
        std::mem::size_of::<streambus_tenancy::QuotaTracker>(),
        std::mem::size_of::<streambus_tenancy::Quotas>(),
        std::mem::size_of::<streambus_tenancy::Usage>(),
        std::mem::size_of::<seed_port::SeedTracker>(),
        std::mem::size_of::<seed_port::RateWindow>(),
    );
    println!("## bytes per tenant (counting allocator, live heap bytes requested / tenants)\n");
    println!("| tenants | {} |", IMPLS.join(" | "));
    println!("| ---: |{}", " ---: |".repeat(IMPLS.len()));
    for &n in sizes {
        let row: Vec<String> = IMPLS
            .iter()
            .map(|w| format!("{:.0}", bytes_per_tenant(w, n)))
            .collect();
        println!("| {n} | {} |", row.join(" | "));
    }

    let n = *sizes.last().unwrap();
    let rounds = if quick { 1 } else { 3 };
    println!(
        "\n## {n} tenants, one fresh process per implementation and round \
         ({rounds} rounds interleaved; times are medians over the rounds, \
         get_all_usage a median of 3 calls in each)\n"
    );
    println!(
        "| impl | create s | ns/tenant | VmRSS before MiB | VmRSS after MiB | VmHWM MiB | RSS bytes/tenant | get_all_usage ms |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let exe = std::env::current_exe().unwrap();
    // Per implementation: (create s, usage ms, rss before, rss after, hwm).
    type Round = (f64, f64, u64, u64, u64);
    let mut seen: Vec<Vec<Round>> = vec![Vec::new(); IMPLS.len()];
    for _ in 0..rounds {
        for (k, which) in IMPLS.iter().enumerate() {
            let out = Command::new(&exe)
                .args(["--child", which, &n.to_string()])
                .output()
                .expect("re-run self");
            let text = String::from_utf8_lossy(&out.stdout);
            let Some(line) = text.lines().find(|l| l.starts_with("CHILD ")) else {
                eprintln!(
                    "{which}: child failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                continue;
            };
            let f: Vec<&str> = line.split_whitespace().collect();
            seen[k].push((
                f[3].parse().unwrap(),
                f[7].parse().unwrap(),
                f[4].parse().unwrap(),
                f[5].parse().unwrap(),
                f[6].parse().unwrap(),
            ));
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for (k, which) in IMPLS.iter().enumerate() {
        let runs = &seen[k];
        if runs.is_empty() {
            println!("| {which} | child failed | | | | | | |");
            continue;
        }
        let create = median(runs.iter().map(|r| r.0).collect());
        let usage = median(runs.iter().map(|r| r.1).collect());
        let (_, _, before, after, hwm) = runs[0];
        let usage = if usage < 0.0 {
            "n/a".to_owned()
        } else {
            format!("{usage:.0}")
        };
        println!(
            "| {which} | {create:.3} | {:.0} | {:.1} | {:.1} | {:.1} | {:.0} | {usage} |",
            create * 1e9 / n as f64,
            mib(before),
            mib(after),
            mib(hwm),
            (after - before) as f64 / n as f64,
        );
    }

    let calls = if quick { 10_000 } else { 1_000_000 };
    println!("\n## heap allocations per call on the enforce path ({calls} calls each)\n");
    let id = tenant_id(0);
    let ours = common::ours(1, roomy_quotas());
    let tracker = ours.get_tracker(&id).unwrap();
    let (refusing, _mock) = ours_mock(1, tiny_bytes_quotas());
    refusing.enforce_produce_quota(&id, 1_000, 1).unwrap();
    let refusing_tracker = refusing.get_tracker(&id).unwrap();
    let seed = common::seed(1, roomy_quotas());
    let seed_refusing = common::seed(1, tiny_bytes_quotas());
    seed_refusing.enforce_produce_quota(&id, 1_000, 1).unwrap();
    let rows: Vec<(&str, f64)> = vec![
        (
            "ours enforce_produce_quota, admitted",
            allocs_per_call(calls, || {
                assert!(ours.enforce_produce_quota(&id, MSG_BYTES, 1).is_ok())
            }),
        ),
        (
            "ours enforce_produce_quota, refused",
            allocs_per_call(calls, || {
                assert!(refusing.enforce_produce_quota(&id, MSG_BYTES, 1).is_err())
            }),
        ),
        (
            "ours tracker.enforce_produce, admitted",
            allocs_per_call(calls, || {
                assert!(tracker.enforce_produce(MSG_BYTES, 1).is_ok())
            }),
        ),
        (
            "ours tracker.enforce_produce, refused",
            allocs_per_call(calls, || {
                assert!(refusing_tracker.enforce_produce(MSG_BYTES, 1).is_err())
            }),
        ),
        (
            "ours enforce_connection_quota + release_connection",
            allocs_per_call(calls, || {
                assert!(ours.enforce_connection_quota(&id).is_ok());
                ours.release_connection(&id);
            }),
        ),
        (
            "ours acquire_connection + drop",
            allocs_per_call(calls, || drop(ours.acquire_connection(&id).unwrap())),
        ),
        (
            "seed enforce_produce_quota, admitted",
            allocs_per_call(calls, || {
                assert!(seed.enforce_produce_quota(&id, MSG_BYTES as i64, 1).is_ok())
            }),
        ),
        (
            "seed enforce_produce_quota, refused",
            allocs_per_call(calls, || {
                let _ = black_box(seed_refusing.enforce_produce_quota(&id, MSG_BYTES as i64, 1));
            }),
        ),
    ];
    println!("| call | allocations per call |");
    println!("| --- | ---: |");
    for (what, per_call) in rows {
        println!("| {what} | {per_call} |");
    }
}
