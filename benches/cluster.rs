//! The produce path with a cluster sync on, beside the local engine, in one
//! run: `enforce_produce_quota` by id and through the tracker on one hot
//! tenant, and by id over 1,000 tenants in a shuffled order (every one of
//! them followed by the sync, which reports it to Redis every 100 ms on
//! its own thread meanwhile).
//!
//! The sync runs against a real `redis-server` this bench starts on a free
//! loopback port with its own temporary directory (Debian's `redis-server`
//! package; the bench says how to install it if it is missing). The
//! tenants' quotas are roomy: every call is admitted, so the comparison is
//! of admissions, as in `enforce.rs`.
//!
//! `cluster_lease`: `ClusterSync::acquire` of a connection, within the
//! broker's lease (then dropped), and on tenants whose lease is empty, so
//! that every acquire asks Redis (one script call).
//!
//! After the groups, the mean duration of a sync round over the 1,000
//! tenants is printed (the "sync cost" of `BENCHMARKS.md`).
//!
//! Run: `cargo bench --bench cluster`.

mod common;
#[path = "../tests/redis_support/mod.rs"]
mod redis_support;
mod seed_port;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use streambus_tenancy::server::{ClusterOptions, ClusterStatus, ClusterSync};
use streambus_tenancy::{Manager, QuotaType, Quotas};

use common::*;

const SPREAD: usize = 1_000;

/// Waits until the sync follows every tenant (each was called once).
fn followed(status: &ClusterStatus, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while status.tenants().len() < n {
        assert!(
            Instant::now() < deadline,
            "the sync did not follow {n} tenants"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn cluster(c: &mut Criterion) {
    let redis = redis_support::RedisServer::start();
    let local = Arc::new(common::ours(SPREAD, roomy_quotas()));
    let synced = Arc::new(common::ours(SPREAD, roomy_quotas()));
    let sync = ClusterSync::start(
        Arc::clone(&synced),
        &redis.url(),
        ClusterOptions::new("bench"),
    )
    .unwrap();
    let status = sync.status();
    let ids = shuffled_ids(SPREAD);
    for id in &ids {
        // Each tenant's first call feeds the sync, which then follows it.
        let _ = synced.enforce_produce_quota(id, MSG_BYTES, 1);
    }
    followed(&status, SPREAD);
    // Alone in the cluster, each tenant's allowance is its whole quota.
    let hot = tenant_id(0);
    assert_admits("local", 100_000, |_| {
        local.enforce_produce_quota(&hot, MSG_BYTES, 1).is_ok()
    });
    assert_admits("cluster", 100_000, |_| {
        synced.enforce_produce_quota(&hot, MSG_BYTES, 1).is_ok()
    });
    let local_tracker = local.get_tracker(&hot).unwrap();
    let synced_tracker = synced.get_tracker(&hot).unwrap();

    let mut g = c.benchmark_group("cluster_hot");
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::new("local", "by-id"), |b| {
        b.iter(|| call::ours_produce(&local, black_box(&hot)))
    });
    g.bench_function(BenchmarkId::new("cluster-sync", "by-id"), |b| {
        b.iter(|| call::ours_produce(&synced, black_box(&hot)))
    });
    g.bench_function(BenchmarkId::new("local", "tracker"), |b| {
        b.iter(|| call::ours_tracker_produce(black_box(&local_tracker)))
    });
    g.bench_function(BenchmarkId::new("cluster-sync", "tracker"), |b| {
        b.iter(|| call::ours_tracker_produce(black_box(&synced_tracker)))
    });
    g.finish();

    let mut g = c.benchmark_group("cluster_spread");
    g.throughput(Throughput::Elements(1));
    for (name, m) in [("local", &local), ("cluster-sync", &synced)] {
        let mut cycle = Cycle::new(&ids);
        g.bench_function(BenchmarkId::new(name, SPREAD), |b| {
            b.iter(|| call::ours_produce(m, black_box(cycle.next())))
        });
    }
    g.finish();

    // Connections through the sync: within the lease (local: the lease
    // lock and the engine), and on tenants whose lease is empty (a lease
    // script call to Redis per acquire: fresh tenants, one connection each;
    // a tenant reused after the 5,000 may still hold its lease: local).
    let conn_quota = Quotas {
        max_connections: 1,
        ..Quotas::unlimited()
    };
    // A broker of its own, so that its rounds cover only the tenants this
    // group uses (the other broker's 1,000 still report meanwhile).
    let lease_broker = Arc::new(Manager::new());
    let fresh: Vec<String> = (0..5_000).map(|i| format!("lease-{i:05}")).collect();
    for id in &fresh {
        lease_broker
            .create_tenant(id, "Lease bench", conn_quota)
            .unwrap();
    }
    let lease_sync = ClusterSync::start(
        Arc::clone(&lease_broker),
        &redis.url(),
        ClusterOptions::new("bench-lease"),
    )
    .unwrap();
    let roomy = Quotas {
        max_connections: 1_000_000_000,
        ..Quotas::unlimited()
    };
    synced.create_tenant("leased", "Leased", roomy).unwrap();
    drop(sync.acquire("leased", QuotaType::Connections).unwrap());
    let mut g = c.benchmark_group("cluster_lease");
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::new("acquire+drop", "within-lease"), |b| {
        b.iter(|| {
            drop(black_box(
                sync.acquire("leased", QuotaType::Connections).unwrap(),
            ))
        })
    });
    let mut next = 0usize;
    g.bench_function(BenchmarkId::new("acquire", "lease-from-redis"), |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let id = &fresh[next % fresh.len()];
                next += 1;
                // Dropped at once: its lease goes back to Redis within two
                // rounds, and the tenant is let go a window later.
                drop(black_box(lease_sync.acquire(id, QuotaType::Connections)));
            }
            start.elapsed()
        })
    });
    g.finish();
    let lease_status = lease_sync.status();
    let (_, sum, count) = lease_status.latency();
    eprintln!(
        "lease broker: {} rounds, mean round {:.2} ms over {} followed tenants at the end",
        count,
        1e3 * sum / count.max(1) as f64,
        lease_status.tenants().len()
    );
    lease_sync.stop();

    assert!(synced.enforce_produce_quota(&hot, MSG_BYTES, 1).is_ok());
    assert!(status.redis_up(), "Redis answered the sync throughout");
    let (_, sum, count) = status.latency();
    eprintln!(
        "cluster sync: {} rounds, {} failed, mean round {:.2} ms over {} followed tenants",
        count,
        status.failures(),
        1e3 * sum / count.max(1) as f64,
        status.tenants().len()
    );
    sync.stop();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = cluster
}
criterion_main!(benches);
