//! The seed's "Monitoring and Alerting": walk every tenant's stats and alert
//! at 80% (warning) and 95% (critical) of any quota, once per crossing rather
//! than on every pass.
//!
//! Run: `cargo run --release --example monitoring`
//! (The seed runs the loop every 10 s; here a mock clock stands in.)

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use streambus_tenancy::{Error, Manager, Quotas};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Level {
    Warning,
    Critical,
}

const WARNING: f64 = 80.0;
const CRITICAL: f64 = 95.0;

/// Remembers which (tenant, quota, level) alerts are raised, so each crossing
/// is reported once and a drop below the threshold re-arms it.
#[derive(Default)]
struct Monitor {
    raised: HashSet<(String, String, Level)>,
}

impl Monitor {
    /// One pass of `MonitorTenants`; returns the alerts newly raised.
    fn pass(&mut self, manager: &Manager) -> Vec<String> {
        let mut fired = Vec::new();
        for tenant in manager.list_tenants() {
            let Ok(stats) = manager.get_tenant_stats(&tenant.id) else {
                continue; // deleted since the list was taken
            };
            for (resource, utilization) in &stats.utilization {
                for (level, threshold) in [(Level::Warning, WARNING), (Level::Critical, CRITICAL)] {
                    let key = (tenant.id.clone(), resource.clone(), level);
                    if *utilization >= threshold {
                        if self.raised.insert(key) {
                            fired.push(format!(
                                "{level:?}: tenant {} at {utilization:.1}% {resource} utilization",
                                tenant.id
                            ));
                        }
                    } else {
                        self.raised.remove(&key);
                    }
                }
            }
        }
        fired
    }
}

fn main() -> Result<(), Error> {
    let (clock, mock) = quanta::Clock::mock();
    let manager = Manager::builder().clock(clock).build();
    manager.create_tenant(
        "busy",
        "Busy",
        Quotas {
            max_connections: 10,
            max_bytes_per_second: 1000,
            ..Quotas::default()
        },
    )?;
    manager.create_tenant("quiet", "Quiet", Quotas::default())?;

    let mut monitor = Monitor::default();
    let mut log: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    let mut held = Vec::new();
    for pass in 0..6u32 {
        // Traffic: connections climb to 9 of 10, throughput to 96%, then drop.
        if pass < 3 {
            for _ in 0..3 {
                held.push(manager.acquire_connection("busy")?);
            }
            manager.enforce_produce_quota("busy", 320, 1)?;
        } else {
            held.clear();
        }
        log.insert(pass, monitor.pass(&manager));
        mock.increment(Duration::from_millis(300));
    }
    for (pass, alerts) in &log {
        for a in alerts {
            println!("pass {pass}: {a}");
        }
    }
    let all: Vec<&String> = log.values().flatten().collect();
    // 90% connections and 96% bytes/s raise warnings, bytes/s a critical too;
    // each exactly once although several passes saw them high.
    assert_eq!(all.iter().filter(|a| a.contains("connections")).count(), 1);
    assert_eq!(
        all.iter()
            .filter(|a| a.contains("bytes_per_second"))
            .count(),
        2
    );
    assert!(all.iter().all(|a| a.contains("busy")));
    Ok(())
}
