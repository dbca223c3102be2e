//! Time and rate windows in the model: the window's geometry, a clock
//! reading, and a window as a plain list of `(tick, amount)` entries.

use std::time::Duration;

use streambus_tenancy::MAX_RATE_QUOTA;

use super::BUCKET_MAX;

/// Window length and bucket count, validated like `ManagerBuilder::try_build`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub bucket_nanos: u64,
    pub buckets: u64,
}

impl Geometry {
    /// `None` where the builder must refuse: 0 or more than 1024 buckets, a
    /// window over an hour, buckets under 1 µs, or buckets that are not a
    /// whole number of nanoseconds.
    pub fn new(window: Duration, buckets: usize) -> Option<Geometry> {
        if buckets == 0 || buckets > 1024 || window > Duration::from_secs(3600) {
            return None;
        }
        let w = window.as_nanos();
        let b = buckets as u128;
        if !w.is_multiple_of(b) || w / b < 1_000 {
            return None;
        }
        Some(Geometry {
            bucket_nanos: (w / b) as u64,
            buckets: buckets as u64,
        })
    }

    pub fn window_nanos(&self) -> u64 {
        self.bucket_nanos * self.buckets
    }

    /// The amount a window may hold for a per-second quota: the quota times
    /// the window, capped at what one bucket counts (2^39 - 1), as the
    /// engine documents for windows longer than 1 s.
    pub fn limit(&self, per_second: i64) -> u64 {
        let l = per_second as u128 * self.window_nanos() as u128 / 1_000_000_000;
        l.min(BUCKET_MAX as u128) as u64
    }

    /// A window's content as a per-second rate.
    pub fn per_second(&self, in_window: u64) -> u64 {
        let r = in_window as u128 * 1_000_000_000 / self.window_nanos() as u128;
        r.min(u64::MAX as u128) as u64
    }

    /// The largest per-second quota whose window limit fits in one bucket.
    pub fn largest_exact_quota(&self) -> i64 {
        let q = BUCKET_MAX as u128 * 1_000_000_000 / self.window_nanos() as u128;
        q.min(MAX_RATE_QUOTA as u128) as i64
    }
}

/// A clock reading: nanoseconds since the manager was built, and its tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    pub tick: u64,
    pub nanos: u64,
}

/// One rate window.
#[derive(Clone, Debug, Default)]
pub struct Window {
    /// Everything counted and not taken back, oldest first.
    pub entries: Vec<(u64, u64)>,
    /// The newest tick the window was written at.
    pub head: u64,
}

impl Window {
    /// What tick `t` holds: its amounts summed, saturating at [`BUCKET_MAX`].
    pub fn held_at(&self, t: u64) -> u64 {
        self.true_at(t).min(BUCKET_MAX as u128) as u64
    }

    /// The exact sum of tick `t`'s amounts.
    pub fn true_at(&self, t: u64) -> u128 {
        self.entries
            .iter()
            .filter(|e| e.0 == t)
            .map(|e| e.1 as u128)
            .sum()
    }

    /// Ticks with something in them, in the window that ends at `tick`.
    pub fn ticks_in(&self, tick: u64, n: u64) -> Vec<u64> {
        let oldest = tick.saturating_sub(n - 1);
        let mut ticks: Vec<u64> = self
            .entries
            .iter()
            .map(|e| e.0)
            .filter(|&t| t >= oldest && t <= tick)
            .collect();
        ticks.sort_unstable();
        ticks.dedup();
        ticks
    }

    /// The window's content at `now` (or at its head, if that is newer).
    pub fn used(&self, now: Now, n: u64) -> u64 {
        let tick = now.tick.max(self.head);
        self.ticks_in(tick, n)
            .into_iter()
            .fold(0u64, |acc, t| acc.saturating_add(self.held_at(t)))
    }

    /// The exact sum of the amounts in the window ending at `tick`.
    pub fn true_used(&self, tick: u64, n: u64) -> u128 {
        self.ticks_in(tick, n)
            .into_iter()
            .map(|t| self.true_at(t))
            .sum()
    }

    /// Everything the window ever held (the lifetime counter).
    pub fn total(&self) -> u64 {
        let mut ticks: Vec<u64> = self.entries.iter().map(|e| e.0).collect();
        ticks.sort_unstable();
        ticks.dedup();
        ticks
            .into_iter()
            .fold(0u64, |acc, t| acc.saturating_add(self.held_at(t)))
    }

    /// A write at `now`: the window adopts `now` or keeps its newer head.
    pub fn touch(&mut self, now: &mut Now, g: &Geometry) {
        if self.head > now.tick {
            now.tick = self.head;
            now.nanos = now.nanos.max(self.head.saturating_mul(g.bucket_nanos));
        }
        self.head = now.tick;
    }

    pub fn add(&mut self, tick: u64, amount: u64) {
        if amount != 0 {
            self.entries.push((tick, amount));
        }
    }

    /// Takes back the entry the current call just added.
    pub fn take_back(&mut self, tick: u64, amount: u64) {
        if amount != 0 {
            let last = self.entries.pop();
            assert_eq!(
                last,
                Some((tick, amount)),
                "model: roll-back of a foreign entry"
            );
        }
    }

    /// Would the amount `amount` added at `tick` saturate its bucket?
    pub fn saturates(&self, tick: u64, amount: u64) -> bool {
        self.held_at(tick).saturating_add(amount) > BUCKET_MAX
    }

    /// The smallest wait after which `amount` fits under `limit`, if nothing
    /// else is recorded: tick `t` leaves the window when the clock reaches
    /// `(t + n) * bucket_nanos`. `None` if `amount` alone is over the limit.
    pub fn retry_after(&self, now: Now, amount: u64, limit: u64, g: &Geometry) -> Option<Duration> {
        if amount > limit {
            return None;
        }
        let n = g.buckets;
        let tick = now.tick.max(self.head);
        let fits_after = |gone: Option<u64>| {
            let used = self
                .ticks_in(tick, n)
                .into_iter()
                .filter(|&t| match gone {
                    Some(g) => t > g,
                    None => true,
                })
                .fold(0u64, |acc, t| acc.saturating_add(self.held_at(t)));
            used.saturating_add(amount) <= limit
        };
        if fits_after(None) {
            return Some(Duration::ZERO);
        }
        for t in self.ticks_in(tick, n) {
            if fits_after(Some(t)) {
                let expires = ((t + n) as u128 * g.bucket_nanos as u128).min(u64::MAX as u128);
                return Some(Duration::from_nanos(
                    (expires as u64).saturating_sub(now.nanos),
                ));
            }
        }
        unreachable!("model: everything leaves within a window")
    }
}
