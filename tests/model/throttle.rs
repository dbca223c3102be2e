//! Throttle mode in the model: the GCRA backlog of each rate, computed in
//! plain `u128` arithmetic from its definition (`src/throttle.rs`,
//! ARCHITECTURE.md "Throttle mode"), with full-width ticks (no stamps).
//!
//! Per tenant: `last`, the newest tick any throttle call adopted, and per
//! rate the tick `s` of its last update and its backlog `B` in units of
//! amount × n. A call at tick `t` with window limit `L`:
//!
//! - `t' = max(t, last)`; `last = t'`;
//! - `B = 0` if `t' - s >= FORGET`, else `max(0, B - L (t' - s))`;
//!   `B = min(B + a n, min(2^44 - 1, L FORGET))`; `s = t'`;
//! - `k = 0` if `B <= n L`, else `ceil((B - n L) / L)`;
//! - delay `0` if `k = 0`, else `min((t' + k) b - now, max_throttle)`
//!   (the instant `(t' + k) b` saturating at the clock's end, `u64::MAX` ns,
//!   and the difference at 0); the call's delay is the largest of its rates'.
//!
//! An unlimited rate (`-1`) is skipped; a rate of quota 0 is skipped and
//! delays any non-zero amount by `max_throttle`. The amounts are recorded
//! in the windows as `record_throughput` does.

use std::time::Duration;

use streambus_tenancy::{Error, TenantStatus};

use super::{Geometry, Now, Tenant};

/// Ticks after which an untouched backlog reads as 0.
pub const FORGET: u128 = 1 << 18;
/// Largest backlog the engine's word holds.
pub const BACKLOG_MAX: u128 = (1 << 44) - 1;
/// `ManagerBuilder::max_throttle`'s default.
pub const DEFAULT_MAX_THROTTLE: Duration = Duration::from_secs(30);

/// A tenant's throttle state.
#[derive(Clone, Debug, Default)]
pub struct Backlogs {
    pub last: u64,
    /// `(s, B)` per rate: bytes, messages, requests.
    pub rates: [(u64, u128); 3],
}

impl Backlogs {
    /// One throttle call: the delay, the state advanced.
    pub fn throttle(
        &mut self,
        now: Now,
        amounts: [u64; 3],
        quotas: [i64; 3],
        g: &Geometry,
        max_throttle: Duration,
    ) -> Duration {
        let t2 = now.tick.max(self.last);
        self.last = t2;
        let n = g.buckets as u128;
        let mut delay = Duration::ZERO;
        for r in 0..3 {
            let a = amounts[r] as u128;
            if quotas[r] < 0 {
                continue;
            }
            let l = g.limit(quotas[r]) as u128;
            if l == 0 {
                if a > 0 {
                    delay = max_throttle;
                }
                continue;
            }
            let (s, b) = self.rates[r];
            let age = (t2 - s) as u128;
            let drained = if age >= FORGET {
                0
            } else {
                b.saturating_sub(l * age)
            };
            let cap = (l * FORGET).min(BACKLOG_MAX);
            let b = (drained + a * n).min(cap);
            self.rates[r] = (t2, b);
            let k = if b <= n * l {
                0
            } else {
                (b - n * l).div_ceil(l)
            };
            if k > 0 {
                // The instant saturates at the clock's end (u64::MAX ns), as
                // a refusal's `retry_after` does.
                let until = ((t2 as u128 + k) * g.bucket_nanos as u128).min(u64::MAX as u128);
                let wait = Duration::from_nanos((until as u64).saturating_sub(now.nanos));
                delay = delay.max(wait.min(max_throttle));
            }
        }
        delay
    }
}

impl Tenant {
    /// `throttle_produce` / `throttle_consume`: refused only when the tenant
    /// is not active (nothing recorded); otherwise recorded, with the delay.
    pub fn throttle(
        &mut self,
        amounts: [u64; 3],
        now: Now,
        g: &Geometry,
        max_throttle: Duration,
    ) -> Result<Duration, Error> {
        if self.status != TenantStatus::Active {
            return Err(self.not_active());
        }
        let quotas = self.rate_limits();
        let delay = self
            .throttle
            .throttle(now, amounts, quotas, g, max_throttle);
        self.record_throughput(amounts, now, g);
        Ok(delay)
    }
}
