//! A broker restarting: the engine's counts start at 0, but the broker still
//! holds the topics and partitions (and storage) it held before. At start-up,
//! before it accepts traffic, it re-reports them with
//! `Manager::restore_usage`, which sets them without the limit check: what
//! is already held is a fact, not a request.
//!
//! A tenant whose quota was lowered while the broker was down comes back
//! over its limit: the restore is accepted, new topics are refused, and
//! deleting topics brings it back under.
//!
//! Run: `cargo run --release --example restart_restore`

use std::collections::BTreeMap;

use streambus_tenancy::{Error, HeldUsage, Manager, QuotaType, Quotas};

/// Stand-in for the broker's on-disk state: each topic with its tenant,
/// partition count and bytes stored.
struct TopicOnDisk {
    tenant: &'static str,
    name: &'static str,
    partitions: u32,
    bytes: u64,
}

const ON_DISK: [TopicOnDisk; 5] = [
    TopicOnDisk {
        tenant: "acme",
        name: "orders",
        partitions: 12,
        bytes: 3 << 30,
    },
    TopicOnDisk {
        tenant: "acme",
        name: "payments",
        partitions: 6,
        bytes: 1 << 30,
    },
    TopicOnDisk {
        tenant: "small",
        name: "events",
        partitions: 4,
        bytes: 200 << 20,
    },
    TopicOnDisk {
        tenant: "small",
        name: "audit",
        partitions: 2,
        bytes: 50 << 20,
    },
    TopicOnDisk {
        tenant: "small",
        name: "logs",
        partitions: 2,
        bytes: 300 << 20,
    },
];

/// What each tenant holds, summed from the broker's own state.
fn held_on_disk() -> BTreeMap<&'static str, HeldUsage> {
    let mut held: BTreeMap<&str, HeldUsage> = BTreeMap::new();
    for t in &ON_DISK {
        let h = held.entry(t.tenant).or_default();
        h.topics += 1;
        h.partitions += u64::from(t.partitions);
        h.storage_bytes += t.bytes;
    }
    held
}

fn main() -> Result<(), Error> {
    // The tenants as the broker's tenant store rebuilds them. `small` had its
    // topic quota lowered from 5 to 2 while the broker was down.
    let manager = Manager::new();
    manager.create_tenant("acme", "ACME Corp", Quotas::pro_tier())?;
    manager.create_tenant(
        "small",
        "Small",
        Quotas {
            max_topics: 2,
            ..Quotas::free_tier()
        },
    )?;

    // Start-up, before the listener accepts: re-report what is held.
    for (tenant, held) in held_on_disk() {
        manager.restore_usage(tenant, &held)?;
        let u = manager.get_usage(tenant)?;
        println!(
            "{tenant}: {} topics, {} partitions, {} MiB restored",
            u.topics,
            u.partitions,
            u.storage_bytes >> 20
        );
    }

    // `small` holds 3 topics against a quota of 2: a new topic is refused...
    match manager.enforce_topic_quota("small", 1) {
        Err(Error::QuotaExceeded(e)) => {
            assert_eq!(
                (e.quota_type, e.current, e.limit),
                (QuotaType::Topics, 3, 2)
            );
            println!("small: new topic refused: {e}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // ...until deleting topics brings it below the limit.
    for t in ON_DISK.iter().filter(|t| t.tenant == "small").take(2) {
        manager.release_topic("small", t.partitions);
        println!("small: deleted topic {}", t.name);
    }
    manager.enforce_topic_quota("small", 1)?;
    println!(
        "small: new topic admitted, {} topics held",
        manager.get_usage("small")?.topics
    );
    assert_eq!(manager.get_usage("small")?.topics, 2);

    // `acme` is well within its quotas and carries on as before.
    manager.enforce_topic_quota("acme", 3)?;
    assert_eq!(manager.get_usage("acme")?.topics, 3);

    // A tenant the engine does not know is an error, as for every call by id.
    let unknown = manager.restore_usage("gone", &HeldUsage::default());
    assert_eq!(unknown, Err(Error::TenantNotFound("gone".into())));
    Ok(())
}
