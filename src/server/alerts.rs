//! Utilization alerts: the seed's monitoring loop, logged once per crossing.
//!
//! A sampler (run every few seconds by the server, or by hand with
//! [`Alerts::sample`]) reads every tenant's utilization. A quota that reaches
//! [`WARNING_PERCENT`] raises a warning, one that reaches
//! [`CRITICAL_PERCENT`] a critical alert; each is logged through `tracing`
//! when it is raised, not at every sample, and shows in the tenant's stats
//! until utilization falls [`HYSTERESIS_PERCENT`] below the threshold, which
//! is logged once too. Sampling reads the engine like any monitor; the
//! enforce path does nothing for it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::SystemTime;

use crate::{Manager, QuotaType};

/// Utilization at which a warning is raised, percent.
pub const WARNING_PERCENT: f64 = 80.0;
/// Utilization at which a critical alert is raised, percent.
pub const CRITICAL_PERCENT: f64 = 95.0;
/// How far below a threshold utilization must fall to clear its alert, so a
/// value hovering at the threshold does not log at every sample.
pub const HYSTERESIS_PERCENT: f64 = 5.0;

/// How serious an alert is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertLevel {
    /// At or above 80%.
    Warning,
    /// At or above 95%.
    Critical,
}

impl AlertLevel {
    /// `"warning"` or `"critical"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            AlertLevel::Warning => "warning",
            AlertLevel::Critical => "critical",
        }
    }

    fn threshold(self) -> f64 {
        match self {
            AlertLevel::Warning => WARNING_PERCENT,
            AlertLevel::Critical => CRITICAL_PERCENT,
        }
    }
}

/// An alert in force on one quota of one tenant.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// The quota.
    pub quota: QuotaType,
    /// Its level.
    pub level: AlertLevel,
    /// Utilization at the last sample, percent.
    pub utilization: f64,
    /// When it entered this level.
    pub since: SystemTime,
}

/// A change of alert state found by one sample: what got logged.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertEvent {
    /// The tenant.
    pub tenant: String,
    /// The quota.
    pub quota: QuotaType,
    /// The new level; `None` when the alert cleared.
    pub level: Option<AlertLevel>,
    /// Utilization, percent.
    pub utilization: f64,
}

/// Alert state of every tenant.
#[derive(Debug, Default)]
pub struct Alerts {
    state: Mutex<HashMap<String, BTreeMap<QuotaType, Alert>>>,
}

impl Alerts {
    /// No alerts yet.
    pub fn new() -> Alerts {
        Alerts::default()
    }

    /// The alerts in force on a tenant, by quota.
    pub fn of(&self, tenant: &str) -> Vec<Alert> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .get(tenant)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Every alert in force, by tenant.
    pub fn all(&self) -> BTreeMap<String, Vec<Alert>> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .iter()
            .filter(|(_, m)| !m.is_empty())
            .map(|(t, m)| (t.clone(), m.values().cloned().collect()))
            .collect()
    }

    /// Visits every alert in force, under the lock, copying nothing.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&str, QuotaType, AlertLevel)) {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for (tenant, alerts) in state.iter() {
            for a in alerts.values() {
                f(tenant, a.quota, a.level);
            }
        }
    }

    /// Samples every tenant's utilization once, raises and clears alerts,
    /// logs each change, and returns the changes.
    pub fn sample(&self, manager: &Manager) -> Vec<AlertEvent> {
        let now = SystemTime::now();
        let mut events = Vec::new();
        let mut utilizations = Vec::with_capacity(manager.len());
        for t in manager.list_tenants() {
            if let Ok(u) = manager.get_utilization(&t.id) {
                utilizations.push((t.id, u));
            }
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // Forget deleted tenants.
        let live: std::collections::HashSet<&str> =
            utilizations.iter().map(|(id, _)| id.as_str()).collect();
        state.retain(|id, _| live.contains(id.as_str()));
        for (id, util) in &utilizations {
            let alerts = state.entry(id.clone()).or_default();
            for (name, &percent) in util {
                let Some(quota) = QuotaType::parse(name) else {
                    continue;
                };
                let old = alerts.get(&quota).map(|a| a.level);
                let new = next_level(old, percent);
                if new != old {
                    let event = AlertEvent {
                        tenant: id.clone(),
                        quota,
                        level: new,
                        utilization: percent,
                    };
                    log(&event);
                    events.push(event);
                }
                match new {
                    Some(level) => {
                        let since = match alerts.get(&quota) {
                            Some(a) if a.level == level => a.since,
                            _ => now,
                        };
                        alerts.insert(
                            quota,
                            Alert {
                                quota,
                                level,
                                utilization: percent,
                                since,
                            },
                        );
                    }
                    None => {
                        alerts.remove(&quota);
                    }
                }
            }
        }
        state.retain(|_, m| !m.is_empty());
        events
    }
}

/// The level after a sample of `percent`, given the level before.
fn next_level(old: Option<AlertLevel>, percent: f64) -> Option<AlertLevel> {
    let reached = if percent >= CRITICAL_PERCENT {
        Some(AlertLevel::Critical)
    } else if percent >= WARNING_PERCENT {
        Some(AlertLevel::Warning)
    } else {
        None
    };
    match (old, reached) {
        // First seen, or rising: take the higher level at once.
        (None, r) => r,
        (Some(o), Some(r)) if r >= o => Some(r),
        // Falling: step down only once clearly below the old threshold.
        (Some(o), _) if percent > o.threshold() - HYSTERESIS_PERCENT => Some(o),
        (Some(AlertLevel::Critical), _) if percent > WARNING_PERCENT - HYSTERESIS_PERCENT => {
            Some(AlertLevel::Warning)
        }
        _ => None,
    }
}

fn log(e: &AlertEvent) {
    let quota = e.quota.as_str();
    match e.level {
        Some(AlertLevel::Critical) => tracing::error!(
            tenant = %e.tenant, quota, utilization = e.utilization,
            "CRITICAL: tenant {} at {:.1}% of its {} quota", e.tenant, e.utilization, quota
        ),
        Some(AlertLevel::Warning) => tracing::warn!(
            tenant = %e.tenant, quota, utilization = e.utilization,
            "WARNING: tenant {} at {:.1}% of its {} quota", e.tenant, e.utilization, quota
        ),
        None => tracing::info!(
            tenant = %e.tenant, quota, utilization = e.utilization,
            "cleared: tenant {} back to {:.1}% of its {} quota", e.tenant, e.utilization, quota
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Quotas;
    use AlertLevel::*;

    #[test]
    fn levels_with_hysteresis() {
        assert_eq!(next_level(None, 79.9), None);
        assert_eq!(next_level(None, 80.0), Some(Warning));
        assert_eq!(next_level(None, 99.0), Some(Critical));
        assert_eq!(next_level(Some(Warning), 96.0), Some(Critical));
        assert_eq!(next_level(Some(Critical), 92.0), Some(Critical));
        assert_eq!(next_level(Some(Critical), 89.0), Some(Warning));
        assert_eq!(next_level(Some(Critical), 50.0), None);
        assert_eq!(next_level(Some(Warning), 76.0), Some(Warning));
        assert_eq!(next_level(Some(Warning), 74.0), None);
    }

    #[test]
    fn once_per_crossing() {
        let m = Manager::new();
        let q = Quotas {
            max_connections: 10,
            ..Quotas::unlimited()
        };
        m.create_tenant("t", "T", q).unwrap();
        let alerts = Alerts::new();
        let mut held = Vec::new();
        for _ in 0..8 {
            held.push(m.acquire_connection("t").unwrap());
        }
        let e = alerts.sample(&m);
        assert_eq!(e.len(), 1);
        assert_eq!(
            (e[0].quota, e[0].level),
            (QuotaType::Connections, Some(Warning))
        );
        assert!(
            alerts.sample(&m).is_empty(),
            "logged once, not at every sample"
        );
        assert_eq!(alerts.of("t")[0].level, Warning);
        held.push(m.acquire_connection("t").unwrap());
        held.push(m.acquire_connection("t").unwrap());
        assert_eq!(alerts.sample(&m)[0].level, Some(Critical));
        assert!(alerts.sample(&m).is_empty());
        held.clear();
        let e = alerts.sample(&m);
        assert_eq!(e[0].level, None);
        assert!(alerts.of("t").is_empty());
        m.delete_tenant("t").unwrap();
        assert!(alerts.sample(&m).is_empty());
        assert!(alerts.all().is_empty());
    }
}
