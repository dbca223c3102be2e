//! `/metrics` at scale: one render of every tenant's series over 100,000
//! tenants.
//!
//! The fixture is what a busy broker looks like to a scrape: every tenant has
//! storage reported, one in ten has produced in the current window, and one
//! in a hundred holds 90 of its 100 connections (so it is above 80 %
//! utilization and carries a warning alert after one alert sample).
//!
//! Before criterion measures, one render is run under a counting allocator
//! and its body size and peak heap (the most live bytes above what was live
//! before the render) are printed.
//!
//! Run: `cargo bench --no-default-features --features server --bench metrics`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use streambus_tenancy::server::{Alerts, Metrics};
use streambus_tenancy::{Manager, Quotas};

/// Tracks live heap bytes and their high-water mark.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn grew(by: isize) {
    let live = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees are ours; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size() as isize);
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
            grew(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Peak heap above the starting point while `f` runs, in bytes.
fn peak_of<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let start = LIVE.load(Ordering::Relaxed);
    PEAK.store(start, Ordering::Relaxed);
    let r = f();
    (r, (PEAK.load(Ordering::Relaxed) - start).max(0) as usize)
}

const TENANTS: usize = 100_000;

fn tenant_id(i: usize) -> String {
    format!("tenant-{i:08}")
}

/// 100k tenants with the usage described in the module docs, and their
/// alerts sampled once.
fn fixture() -> (Arc<Manager>, Arc<Alerts>) {
    let m = Arc::new(Manager::builder().capacity(TENANTS).build());
    for i in 0..TENANTS {
        let id = tenant_id(i);
        m.create_tenant(&id, &id, Quotas::default()).unwrap();
        m.update_storage_usage(&id, (i as u64 % 1000) << 20).unwrap();
        if i % 10 == 0 {
            m.enforce_produce_quota(&id, 4096, 4).unwrap();
        }
        if i % 100 == 0 {
            for _ in 0..90 {
                m.enforce_connection_quota(&id).unwrap();
            }
        }
    }
    let alerts = Arc::new(Alerts::new());
    alerts.sample(&m);
    (m, alerts)
}

fn render(c: &mut Criterion) {
    let (m, alerts) = fixture();
    let metrics = Metrics::new(Arc::clone(&m), Arc::clone(&alerts));

    let (body, peak) = peak_of(|| metrics.render());
    eprintln!(
        "render() into a String, {TENANTS} tenants: body {} bytes, {} lines, peak heap {} bytes",
        body.len(),
        body.lines().count(),
        peak
    );
    drop(body);

    let mut g = c.benchmark_group("metrics_render");
    g.throughput(Throughput::Elements(TENANTS as u64));
    g.bench_function(BenchmarkId::new("string", "all"), |b| {
        b.iter(|| black_box(metrics.render()).len())
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
}

criterion_group! {
    name = benches;
    config = config();
    targets = render
}
criterion_main!(benches);
