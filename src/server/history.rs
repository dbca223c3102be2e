//! The last 15 minutes of a watched tenant's traffic, for the dashboard's
//! charts: `GET /api/v1/tenants/{id}/history`.
//!
//! The alert sampler ([`ApiState::spawn_alert_sampler`]) also samples the
//! lifetime counters of each *watched* tenant (admitted bytes, messages
//! and requests, and refusals) into a bounded ring per tenant; the route
//! answers with the rates between consecutive samples. A tenant becomes
//! watched when its history is first asked for, and stops being watched
//! (its ring is dropped) after [`HISTORY_WINDOW`] without a request, or when
//! it is deleted, so a dashboard's first look at a tenant starts an empty
//! chart that fills at the sampler's cadence.
//!
//! # Memory
//!
//! A sample is 40 bytes. A ring keeps the samples of the last
//! [`HISTORY_WINDOW`], at most [`MAX_SAMPLES`] of them (900: 15 minutes at
//! one sample a second; 90 at the default 10 s interval), so at most 36 KiB
//! per watched tenant, and at most [`MAX_WATCHED`] tenants are watched at
//! once (the one least recently asked for makes room): 2.3 MiB in all, and
//! nothing for tenants no one watches.
//!
//! [`ApiState::spawn_alert_sampler`]: super::ApiState::spawn_alert_sampler

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::api::ErrorBody;
use super::error::ApiError;
use super::extract::TenantIdPath;
use super::router::ApiState;
use crate::{Manager, QuotaType, TenantCounters};

/// How far back a tenant's history goes.
pub const HISTORY_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Most samples kept per tenant, whatever the sampler's interval.
pub const MAX_SAMPLES: usize = 900;

/// Most tenants watched at once.
pub const MAX_WATCHED: usize = 64;

/// One reading of a tenant's lifetime counters.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Sample {
    /// Seconds since the Unix epoch.
    at: f64,
    bytes: u64,
    messages: u64,
    requests: u64,
    refused: u64,
}

impl Sample {
    fn new(at: f64, c: &TenantCounters) -> Sample {
        let refused = QuotaType::ALL
            .iter()
            .map(|q| c.refused(*q))
            .fold(c.refused_not_active, u64::saturating_add);
        Sample {
            at,
            bytes: c.admitted_bytes,
            messages: c.admitted_messages,
            requests: c.admitted_requests,
            refused,
        }
    }
}

#[derive(Debug)]
struct Ring {
    samples: VecDeque<Sample>,
    last_read: Instant,
}

/// The rings of the watched tenants.
#[derive(Debug, Default)]
pub struct History {
    rings: Mutex<HashMap<String, Ring>>,
}

/// The rates between two consecutive samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HistoryPoint {
    /// End of the interval, seconds since the Unix epoch.
    pub at: f64,
    /// Bytes admitted per second over the interval.
    pub bytes_per_second: f64,
    /// Messages admitted per second.
    pub messages_per_second: f64,
    /// Requests admitted per second.
    pub requests_per_second: f64,
    /// Calls refused per second, all quotas and suspension together.
    pub refusals_per_second: f64,
}

/// A tenant's recent traffic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HistoryJson {
    /// The tenant.
    pub tenant_id: String,
    /// How far back the history goes, seconds.
    pub window_seconds: u64,
    /// Oldest first; empty until the sampler has read the tenant twice
    /// since it was first asked for.
    pub points: Vec<HistoryPoint>,
}

fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl History {
    /// No tenant watched.
    pub fn new() -> History {
        History::default()
    }

    /// Watches `id` (from `now` on) and returns its points so far.
    pub fn watch(&self, id: &str, now: Instant) -> Vec<HistoryPoint> {
        let mut rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        if !rings.contains_key(id) && rings.len() >= MAX_WATCHED {
            let stalest = rings
                .iter()
                .min_by_key(|(_, r)| r.last_read)
                .map(|(k, _)| k.clone());
            if let Some(k) = stalest {
                rings.remove(&k);
            }
        }
        let ring = rings.entry(id.to_owned()).or_insert_with(|| Ring {
            samples: VecDeque::new(),
            last_read: now,
        });
        ring.last_read = now;
        ring.samples
            .iter()
            .zip(ring.samples.iter().skip(1))
            .filter(|(a, b)| b.at > a.at)
            .map(|(a, b)| {
                let dt = b.at - a.at;
                let rate = |x: u64, y: u64| y.saturating_sub(x) as f64 / dt;
                HistoryPoint {
                    at: b.at,
                    bytes_per_second: rate(a.bytes, b.bytes),
                    messages_per_second: rate(a.messages, b.messages),
                    requests_per_second: rate(a.requests, b.requests),
                    refusals_per_second: rate(a.refused, b.refused),
                }
            })
            .collect()
    }

    /// How many tenants are watched.
    pub fn watched(&self) -> usize {
        self.rings.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Reads the counters of every watched tenant into its ring: `now` is
    /// when (for the rings' times), `now_mono` the same moment on the
    /// monotonic clock (for dropping tenants no one asked for in
    /// [`HISTORY_WINDOW`]).
    pub fn sample(&self, manager: &Manager, now: SystemTime, now_mono: Instant) {
        let at = unix_secs(now);
        let oldest = at - HISTORY_WINDOW.as_secs_f64();
        let mut rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        rings.retain(|id, ring| {
            if now_mono.saturating_duration_since(ring.last_read) > HISTORY_WINDOW {
                return false;
            }
            let Ok(counters) = manager.get_counters(id) else {
                return false; // deleted
            };
            ring.samples.push_back(Sample::new(at, &counters));
            while ring.samples.len() > MAX_SAMPLES
                || ring.samples.front().is_some_and(|s| s.at < oldest)
            {
                ring.samples.pop_front();
            }
            true
        });
    }
}

/// The last 15 minutes of a tenant's traffic, sampled at the alert
/// sampler's interval while someone asks for it.
///
/// The first request starts the sampling: the points fill from then on.
#[utoipa::path(
    get, path = "/api/v1/tenants/{id}/history", tag = "tenants",
    params(TenantIdPath),
    responses(
        (status = 200, description = "Rates between consecutive samples, oldest first", body = HistoryJson),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn tenant_history(
    State(state): State<ApiState>,
    TenantIdPath(id): TenantIdPath,
) -> Result<Json<HistoryJson>, ApiError> {
    // 404 for an unknown id (the extractor answered 400 for an invalid one).
    state.admin.manager().get_tenant(&id)?;
    let points = state.history.watch(&id, Instant::now());
    Ok(Json(HistoryJson {
        tenant_id: id,
        window_seconds: HISTORY_WINDOW.as_secs(),
        points,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Quotas;

    fn manager() -> Manager {
        let m = Manager::new();
        m.create_tenant("a", "A", Quotas::default()).unwrap();
        m
    }

    #[test]
    fn only_watched_tenants_are_sampled_and_rates_come_from_deltas() {
        let m = manager();
        let h = History::new();
        let (t0, i0) = (UNIX_EPOCH + Duration::from_secs(1_000), Instant::now());
        h.sample(&m, t0, i0);
        assert_eq!(h.watched(), 0);
        assert!(h.watch("a", i0).is_empty());
        h.sample(&m, t0, i0);
        m.enforce_produce_quota("a", 500, 5).unwrap();
        h.sample(&m, t0 + Duration::from_secs(10), i0);
        let points = h.watch("a", i0);
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].bytes_per_second, 50.0);
        assert_eq!(points[0].messages_per_second, 0.5);
        assert_eq!(points[0].refusals_per_second, 0.0);
    }

    #[test]
    fn rings_are_bounded_in_time_and_count_and_dropped_when_unwatched() {
        let m = manager();
        let h = History::new();
        let i0 = Instant::now();
        h.watch("a", i0);
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        for s in 0..2_000 {
            h.sample(&m, t0 + Duration::from_secs(s), i0);
        }
        let points = h.watch("a", i0);
        assert_eq!(points.len(), MAX_SAMPLES - 1);
        assert!(points[0].at >= 1_000_000.0 + 2_000.0 - 900.0 - 1.0);
        h.sample(&m, t0, i0 + HISTORY_WINDOW + Duration::from_secs(1));
        assert_eq!(h.watched(), 0);
        m.delete_tenant("a").unwrap();
        h.watch("a", i0);
        h.sample(&m, t0, i0);
        assert_eq!(h.watched(), 0, "a deleted tenant is dropped");
    }

    #[test]
    fn at_most_max_watched_tenants() {
        let m = Manager::new();
        let h = History::new();
        let i0 = Instant::now();
        for n in 0..MAX_WATCHED + 5 {
            h.watch(&format!("t{n}"), i0 + Duration::from_secs(n as u64));
        }
        assert_eq!(h.watched(), MAX_WATCHED);
        h.sample(&m, SystemTime::now(), i0);
    }
}
