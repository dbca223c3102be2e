//! The seed's "Broker Integration", runnable: a broker that admits each
//! connection against the tenant's connection quota (an RAII permit), caches
//! the tenant's `QuotaTracker` for the life of the connection, and enforces
//! every produce request on it without a map lookup.
//!
//! Run: `cargo run --release --example broker_produce`

use std::sync::Arc;
use std::time::Duration;

use streambus_tenancy::{Error, Manager, Permit, QuotaTracker, Quotas};

/// What the broker keeps per client connection.
struct Connection {
    tenant_id: String,
    /// Cached once at accept time: the hot path skips the registry.
    tracker: Arc<QuotaTracker>,
    /// Released when the connection is dropped, however it ends.
    _permit: Permit,
}

struct Broker {
    tenancy: Arc<Manager>,
}

#[derive(Debug)]
enum ProduceError {
    QuotaExceeded { tenant: String, source: Error },
}

impl Broker {
    /// `HandleConnection`: admit the connection or refuse it.
    fn accept(&self, tenant_id: &str) -> Result<Connection, Error> {
        let permit = self.tenancy.acquire_connection(tenant_id)?;
        let tracker = self.tenancy.get_tracker(tenant_id)?;
        Ok(Connection {
            tenant_id: tenant_id.to_string(),
            tracker,
            _permit: permit,
        })
    }

    /// `HandleProduceRequest`: enforce, then process.
    fn handle_produce(&self, conn: &Connection, value: &[u8]) -> Result<(), ProduceError> {
        conn.tracker
            .enforce_produce(value.len() as u64, 1)
            .map_err(|source| ProduceError::QuotaExceeded {
                tenant: conn.tenant_id.clone(),
                source,
            })?;
        // ... append `value` to the log here ...
        Ok(())
    }
}

fn main() -> Result<(), Error> {
    let (clock, mock) = quanta::Clock::mock();
    let tenancy = Arc::new(Manager::builder().clock(clock).build());
    tenancy.create_tenant(
        "acme",
        "ACME",
        Quotas {
            max_bytes_per_second: 64 * 1024,
            max_connections: 2,
            ..Quotas::default()
        },
    )?;
    let broker = Broker {
        tenancy: tenancy.clone(),
    };

    let c1 = broker.accept("acme")?;
    let _c2 = broker.accept("acme")?;
    match broker.accept("acme") {
        Err(e) => println!("third connection refused: {e}"),
        Ok(_) => unreachable!("the quota is 2 connections"),
    }

    let value = vec![0u8; 1024];
    let (mut ok, mut refused) = (0, 0);
    for i in 0..200 {
        if i % 50 == 0 {
            mock.increment(Duration::from_millis(500));
        }
        match broker.handle_produce(&c1, &value) {
            Ok(()) => ok += 1,
            Err(ProduceError::QuotaExceeded { tenant, source }) => {
                if refused == 0 {
                    println!("tenant {tenant}: {source}");
                }
                refused += 1;
            }
        }
    }
    println!("produced {ok}, refused {refused}");
    assert!(ok >= 64 && refused > 0);

    drop(c1);
    println!(
        "connections after one closed: {}",
        tenancy.get_usage("acme")?.connections
    );
    assert_eq!(tenancy.get_usage("acme")?.connections, 1);
    Ok(())
}
