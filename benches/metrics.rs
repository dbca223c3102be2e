//! `/metrics` at scale: one render of every tenant's series over 100,000
//! tenants.
//!
//! The fixture is what a busy broker looks like to a scrape: every tenant has
//! storage reported, one in ten has produced in the current window, and one
//! in a hundred holds 90 of its 100 connections (so it is above 80 %
//! utilization and carries a warning alert after one alert sample).
//!
//! Five ways to render: streamed (`render_to` into a sink that keeps
//! nothing, as `/metrics` keeps only a few 64 KiB chunks) with every tenant's
//! series, with those of tenants at or above 80 % utilization, and with
//! none; into one `String` (`render`) with every tenant's series; and the
//! whole `GET /metrics` over loopback TCP, read to the end.
//!
//! Before criterion measures, each is run once under a counting allocator
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
use streambus_tenancy::server::{
    self as server, Admin, Alerts, ApiState, Metrics, SqliteStore, TenantSeries, Token,
};
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
const TOKEN: &str = "bench-token-0123456789abcdef";

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
        m.update_storage_usage(&id, (i as u64 % 1000) << 20)
            .unwrap();
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

/// A sink that keeps nothing, as the streamed response keeps only a few
/// chunks: counts the bytes.
struct Discard(usize);

impl std::fmt::Write for Discard {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

fn render(c: &mut Criterion) {
    let (m, alerts) = fixture();
    let with =
        |series| Metrics::new(Arc::clone(&m), Arc::clone(&alerts)).with_tenant_series(series);
    let variants = [
        ("all", with(TenantSeries::All)),
        ("above:80", with(TenantSeries::AboveUtilization(80))),
        ("none", with(TenantSeries::None)),
    ];

    let (body, peak) = peak_of(|| variants[0].1.render());
    eprintln!(
        "render() into a String, all, {TENANTS} tenants: body {} bytes, {} lines, peak heap {peak} bytes",
        body.len(),
        body.lines().count(),
    );
    drop(body);
    for (name, metrics) in &variants {
        let (sink, peak) = peak_of(|| {
            let mut sink = Discard(0);
            metrics.render_to(&mut sink).unwrap();
            sink
        });
        eprintln!(
            "render_to() streamed, {name}, {TENANTS} tenants: body {} bytes, peak heap {peak} bytes",
            sink.0
        );
    }

    let server = Server::start(&m, Metrics::new(Arc::clone(&m), Arc::clone(&alerts)));
    let (received, peak) = peak_of(|| server.scrape());
    eprintln!(
        "GET /metrics over loopback, all, {TENANTS} tenants: {received} bytes received, \
         peak heap (server and client) {peak} bytes"
    );

    let mut g = c.benchmark_group("metrics_render");
    g.throughput(Throughput::Elements(TENANTS as u64));
    for (name, metrics) in &variants {
        g.bench_function(BenchmarkId::new("stream", name), |b| {
            b.iter(|| {
                let mut sink = Discard(0);
                metrics.render_to(&mut sink).unwrap();
                black_box(sink.0)
            })
        });
    }
    g.bench_function(BenchmarkId::new("string", "all"), |b| {
        b.iter(|| black_box(variants[0].1.render()).len())
    });
    g.bench_function(BenchmarkId::new("http", "all"), |b| {
        b.iter(|| black_box(server.scrape()))
    });
    g.finish();
}

/// The router on loopback, on its own runtime: `/metrics` as Prometheus
/// fetches it (render on the blocking pool, streamed, chunked over TCP).
struct Server {
    addr: std::net::SocketAddr,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(manager: &Arc<Manager>, metrics: Metrics) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("tenants.db")).unwrap();
        let admin = Arc::new(Admin::open(Arc::clone(manager), store).unwrap());
        let state = ApiState::new(admin, Token::new(TOKEN).unwrap()).with_metrics(metrics);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(async move { axum::serve(listener, server::router(state)).await });
        Server {
            addr,
            _runtime: runtime,
            _dir: dir,
        }
    }

    /// One `GET /metrics`, read to the end: the bytes received.
    fn scrape(&self) -> usize {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(self.addr).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\n\
             Connection: close\r\n\r\n"
        )
        .unwrap();
        let (mut buf, mut total, mut tail) = (vec![0u8; 1 << 16], 0, Vec::new());
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n;
            tail.extend_from_slice(&buf[..n]);
            let keep = tail.len().saturating_sub(5);
            tail.drain(..keep);
        }
        assert_eq!(tail, b"0\r\n\r\n", "the chunked body ended whole");
        total
    }
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
