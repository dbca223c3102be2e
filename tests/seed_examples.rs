//! The seed's code examples, one test each, translated to this crate.
//! (The Go original's sleeps become mock-clock advances.)

use std::time::Duration;

use streambus_tenancy::{Error, Manager, QuotaType, Quotas};

fn mock_manager() -> (Manager, std::sync::Arc<quanta::Mock>) {
    let (clock, mock) = quanta::Clock::mock();
    (Manager::builder().clock(clock).build(), mock)
}

/// Quick Start: "Creating a Tenant".
#[test]
fn quick_start() {
    let manager = Manager::new();
    let quotas = Quotas {
        max_bytes_per_second: 10 * 1024 * 1024,      // 10 MB/s
        max_messages_per_second: 10_000,             // 10k msg/s
        max_storage_bytes: 100 * 1024 * 1024 * 1024, // 100 GB
        max_topics: 100,
        max_partitions: 1000,
        max_connections: 500,
        max_producers: 100,
        max_consumers: 200,
        max_consumer_groups: 50,
        max_requests_per_second: 50_000,
        max_retention_hours: 168, // 7 days
        // Not in the seed (Kafka's KIP-612): unlimited, as in every tier.
        max_connection_creation_rate: -1,
    };
    let tenant = manager
        .create_tenant("acme-corp", "ACME Corporation", quotas)
        .unwrap();
    assert_eq!(tenant.id, "acme-corp");
    assert_eq!(tenant.quotas, quotas);
}

/// Quick Start: "Enforcing Quotas".
#[test]
fn enforcing_quotas() -> Result<(), Error> {
    let manager = Manager::new();
    manager.create_tenant("acme-corp", "ACME", Quotas::default())?;

    // Enforce produce quota: 1 KB, 1 message.
    manager.enforce_produce_quota("acme-corp", 1024, 1)?;

    // Enforce connection quota, released when the handler is done (the Go
    // `defer` becomes a guard).
    {
        manager.enforce_connection_quota("acme-corp")?;
        struct Release<'a>(&'a Manager);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.release_connection("acme-corp");
            }
        }
        let _release = Release(&manager);
        assert_eq!(manager.get_usage("acme-corp")?.connections, 1);
    }
    assert_eq!(manager.get_usage("acme-corp")?.connections, 0);

    // Enforce topic creation quota: 3 partitions.
    manager.enforce_topic_quota("acme-corp", 3)?;

    // Handling a quota error: the type, current and limit are all there.
    let err = manager
        .enforce_produce_quota("acme-corp", 1 << 40, 1)
        .unwrap_err();
    match &err {
        Error::QuotaExceeded(q) => {
            let line = format!(
                "Quota exceeded: {} (current: {}, limit: {})",
                q.quota_type, q.current, q.limit
            );
            assert_eq!(
                line,
                "Quota exceeded: bytes_per_second (current: 1024, limit: 10485760)"
            );
        }
        other => panic!("{other:?}"),
    }
    Ok(())
}

/// Quick Start: "Monitoring Usage".
#[test]
fn monitoring_usage() -> Result<(), Error> {
    let manager = Manager::new();
    manager.create_tenant("acme-corp", "ACME", Quotas::default())?;
    let _c1 = manager.acquire_connection("acme-corp")?;
    manager.enforce_topic_quota("acme-corp", 10)?;
    manager.update_storage_usage("acme-corp", 50 * 1024 * 1024 * 1024)?;
    manager.enforce_produce_quota("acme-corp", 4096, 4)?;

    let usage = manager.get_usage("acme-corp")?;
    assert_eq!(usage.connections, 1);
    assert_eq!(usage.topics, 1);
    assert_eq!(usage.partitions, 10);
    assert_eq!(usage.storage_bytes, 50 * 1024 * 1024 * 1024);
    assert_eq!(usage.bytes_per_second, 4096);

    let utilization = manager.get_utilization("acme-corp")?;
    assert_eq!(utilization["connections"], 1.0); // 1 of 100
    assert_eq!(utilization["storage"], 50.0); // 50 GiB of 100 GiB
    assert_eq!(utilization["topics"], 1.0); // 1 of 100
    Ok(())
}

/// Best Practice 3, "Graceful Degradation": retry a refused produce after the
/// window refreshes. The Go version sleeps 100 ms; here the error's
/// `retry_after` says how long, and the mock clock moves by it.
#[test]
fn graceful_degradation() {
    let (manager, mock) = mock_manager();
    manager
        .create_tenant(
            "t",
            "T",
            Quotas {
                max_bytes_per_second: 1000,
                ..Quotas::unlimited()
            },
        )
        .unwrap();
    let msg = [0u8; 400];

    let handle_produce_with_retry = |manager: &Manager| -> Result<(), Error> {
        let mut last = None;
        for _ in 0..3 {
            match manager.enforce_produce_quota("t", msg.len() as u64, 1) {
                Ok(()) => return Ok(()), // produceMessage(msg)
                Err(Error::QuotaExceeded(q)) if q.quota_type == QuotaType::BytesPerSecond => {
                    // Wait for the window to refresh, as long as it says.
                    mock.increment(q.retry_after.unwrap_or(Duration::from_millis(100)));
                    last = Some(Error::QuotaExceeded(q));
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("three refusals"))
    };

    // Two fit; the third is refused once, waits exactly retry_after, succeeds.
    handle_produce_with_retry(&manager).unwrap();
    handle_produce_with_retry(&manager).unwrap();
    let before = mock.value();
    handle_produce_with_retry(&manager).unwrap();
    assert_eq!(mock.value() - before, 1_000_000_000);
}

/// Best Practice 4, "Suspend Before Deleting".
#[test]
fn safe_delete_tenant() {
    let (manager, mock) = mock_manager();
    manager.create_tenant("t", "T", Quotas::default()).unwrap();
    let conn = manager.acquire_connection("t").unwrap();

    let safe_delete = |manager: &Manager| -> Result<(), String> {
        // First suspend to prevent new operations.
        manager.suspend_tenant("t").map_err(|e| e.to_string())?;
        // Wait for in-flight operations to complete (5 s in the seed).
        mock.increment(Duration::from_secs(5));
        // Verify no active connections.
        let usage = manager.get_usage("t").map_err(|e| e.to_string())?;
        if usage.connections > 0 {
            return Err("tenant still has active connections".into());
        }
        manager.delete_tenant("t").map_err(|e| e.to_string())
    };

    assert_eq!(
        safe_delete(&manager).unwrap_err(),
        "tenant still has active connections"
    );
    // Suspended: no new connections, but the old one drains.
    assert!(manager.acquire_connection("t").is_err());
    drop(conn);
    safe_delete(&manager).unwrap();
    assert!(manager.get_tenant("t").is_err());
}

/// Best Practice 5, "Use Tiered Quota Profiles".
#[test]
fn tiered_profiles() {
    let manager = Manager::new();
    manager
        .create_tenant("free", "Free", Quotas::free_tier())
        .unwrap();
    manager
        .create_tenant("pro", "Pro", Quotas::pro_tier())
        .unwrap();
    manager
        .create_tenant("ent", "Enterprise", Quotas::enterprise_tier())
        .unwrap();
    assert!(manager
        .enforce_produce_quota("free", 2 * 1024 * 1024, 1)
        .is_err());
    manager
        .enforce_produce_quota("pro", 2 * 1024 * 1024, 1)
        .unwrap();
    for _ in 0..1000 {
        manager.enforce_produce_quota("ent", 1 << 30, 1000).unwrap();
    }
    // Best Practice 1: start conservative, watch utilization, adjust.
    manager.update_storage_usage("free", 9 << 30).unwrap();
    if manager.get_utilization("free").unwrap()["storage"] > 80.0 {
        let mut q = manager.get_tenant("free").unwrap().quotas;
        q.max_storage_bytes *= 2;
        manager.update_tenant("free", None, Some(q)).unwrap();
    }
    assert_eq!(manager.get_utilization("free").unwrap()["storage"], 45.0);
}

/// The seed's "Testing Example". In Go, unset fields are 0, which the Go code
/// apparently reads as unlimited; here 0 means "nothing allowed", so the other
/// fields are spelled out as unlimited.
#[test]
fn tenant_quota_enforcement() {
    let manager = Manager::new();
    let quotas = Quotas {
        max_bytes_per_second: 1000,
        max_messages_per_second: 10,
        ..Quotas::unlimited()
    };
    manager
        .create_tenant("test-tenant", "Test", quotas)
        .unwrap();

    // Should succeed under quota.
    manager
        .enforce_produce_quota("test-tenant", 500, 5)
        .expect("expected success under quota");

    // Should fail when exceeding quota.
    let err = manager
        .enforce_produce_quota("test-tenant", 600, 10)
        .expect_err("expected quota error");

    // Verify it's a QuotaError.
    let q = err.as_quota_error().expect("expected QuotaError");
    assert_eq!(q.quota_type, QuotaType::BytesPerSecond);
    assert_eq!((q.current, q.limit), (500, 1000));
}

/// The Complete Integration Example's setup and simulated operations (the
/// runnable version is `cargo run --release -- demo`).
#[test]
fn complete_integration_example() {
    let (manager, mock) = mock_manager();
    for (id, name, quotas) in [
        ("startup-a", "Startup A", Quotas::default()),
        ("enterprise-b", "Enterprise B", Quotas::unlimited()),
        ("free-tier", "Free User", Quotas::free_tier()),
    ] {
        manager.create_tenant(id, name, quotas).unwrap();
    }
    // simulateOperations: 100 produces of 1 KiB, 100 ms apart.
    for _ in 0..100 {
        manager.enforce_produce_quota("startup-a", 1024, 1).unwrap();
        mock.increment(Duration::from_millis(100));
    }
    // monitorTenants: every tenant's usage is there.
    let usage = manager.get_all_usage();
    assert_eq!(usage.len(), 3);
    assert_eq!(usage["startup-a"].bytes_per_second, 9 * 1024);
    assert_eq!(usage["free-tier"].connections, 0);
}
