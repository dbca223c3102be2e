//! The seed's "Storage Integration": the broker measures each tenant's
//! storage periodically and reports it; produce paths then check the storage
//! quota against the last report.
//!
//! Run: `cargo run --release --example storage_update`
//! (The seed runs the update every minute; here three rounds run at once.)

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use streambus_tenancy::{Error, Manager, Quotas};

/// Stand-in for the broker's log storage: bytes per tenant.
struct Storage {
    bytes: HashMap<String, u64>,
}

impl Storage {
    fn get_tenant_usage(&self, id: &str) -> u64 {
        self.bytes.get(id).copied().unwrap_or(0)
    }
}

/// `UpdateTenantStorage`: one pass over every tenant.
fn update_tenant_storage(manager: &Manager, storage: &Storage) {
    for tenant in manager.list_tenants() {
        let usage = storage.get_tenant_usage(&tenant.id);
        // The tenant may have been deleted since the list was taken.
        if let Err(e) = manager.update_storage_usage(&tenant.id, usage) {
            eprintln!("storage update for {}: {e}", tenant.id);
        }
    }
}

fn main() -> Result<(), Error> {
    let manager = Arc::new(Manager::new());
    manager.create_tenant(
        "small",
        "Small",
        Quotas {
            max_storage_bytes: 1 << 30,
            ..Quotas::default()
        },
    )?;
    manager.create_tenant("big", "Big", Quotas::unlimited())?;
    let mut storage = Storage {
        bytes: HashMap::new(),
    };

    // A real broker runs this on a timer (e.g. every minute, in its own
    // thread or task); three rounds here, with the tenants growing.
    let interval = Duration::from_secs(60);
    for round in 1..=3u64 {
        storage.bytes.insert("small".into(), (round * 400) << 20);
        storage.bytes.insert("big".into(), round << 40);
        update_tenant_storage(&manager, &storage);
        let u = manager.get_usage("small")?;
        let fits = manager.enforce_storage_quota("small", 100 << 20).is_ok();
        println!(
            "round {round} (every {interval:?}): small stores {} MiB ({:.0}% of quota); 100 MiB more fits: {fits}",
            u.storage_bytes >> 20,
            manager.get_utilization("small")?["storage"],
        );
        assert_eq!(fits, round < 3);
    }
    Ok(())
}
