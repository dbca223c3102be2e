//! Time for the engine: window geometry and the clock the ticks are read from.
//!
//! A *tick* is the number of whole buckets elapsed since the manager's origin
//! (the clock reading taken when it was built). Rate windows stamp each bucket
//! with the tick it counts for, so the only thing the hot path needs from the
//! clock is one reading turned into `(tick, nanos)`.
//!
//! Time is always injected: the manager is handed a [`quanta::Clock`]
//! (`quanta::Clock::mock()` in tests), and nothing in the engine calls
//! `Instant::now()`. Under `--cfg quota_loom` the time source is a plain tick
//! counter that a model advances by hand (see [`TimeSource`]).

use std::time::Duration;

use crate::sync::TimeSource;

/// Shape of every rate window of one manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Length of one bucket in nanoseconds (at least 1).
    pub(crate) bucket_nanos: u64,
    /// Number of buckets in a window (1 ..= [`MAX_BUCKETS`]).
    pub(crate) buckets: u64,
    /// `bucket_nanos` as a [`Divisor`]: every call turns its clock reading
    /// into a tick with it.
    per_bucket: Divisor,
    /// `buckets` as a [`Divisor`]: a rotation finds a tick's slot with it.
    pub(crate) per_window: Divisor,
}

/// Division of any `u64` by a divisor fixed when a manager is built, with a
/// multiplication instead of a `div` instruction (20 to 40 cycles on the
/// machines measured, on every call's path from the clock reading to its
/// tick).
///
/// `m = floor((2^64 - 1) / d)`, and `floor(n * m / 2^64)` is `n / d` or one
/// less: with `2^64 - 1 = m * d + r` (`r < d`), `n * m / 2^64` is
/// `n / d - n * (r + 1) / (d * 2^64)`, and that last term is under 1 for
/// every `n < 2^64`. One compare of the remainder corrects it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Divisor {
    d: u64,
    m: u64,
}

impl Divisor {
    /// A divisor of `d` (more than 0).
    pub(crate) const fn new(d: u64) -> Divisor {
        assert!(d > 0, "division by zero");
        Divisor { d, m: u64::MAX / d }
    }

    /// The divisor.
    #[inline(always)]
    pub(crate) fn get(self) -> u64 {
        self.d
    }

    /// `n % d`, exactly.
    #[inline(always)]
    pub(crate) fn rem(self, n: u64) -> u64 {
        n - self.div(n) * self.d
    }

    /// `n / d`, exactly.
    #[inline(always)]
    pub(crate) fn div(self, n: u64) -> u64 {
        let q = ((n as u128 * self.m as u128) >> 64) as u64;
        // `q` is the quotient or one less; the remainder tells which.
        if n - q * self.d >= self.d {
            q + 1
        } else {
            q
        }
    }
}

/// Largest bucket count a window may have.
pub(crate) const MAX_BUCKETS: usize = 1024;
/// Shortest bucket a window may have.
pub(crate) const MIN_BUCKET: Duration = Duration::from_micros(1);
/// Longest window a manager may have.
pub(crate) const MAX_WINDOW: Duration = Duration::from_secs(3600);

impl Geometry {
    /// Validates a window length and bucket count.
    pub(crate) fn new(window: Duration, buckets: usize) -> Result<Geometry, String> {
        if buckets == 0 || buckets > MAX_BUCKETS {
            return Err(format!(
                "bucket count must be between 1 and {MAX_BUCKETS}, got {buckets}"
            ));
        }
        if window > MAX_WINDOW {
            return Err(format!(
                "window must be at most {MAX_WINDOW:?}, got {window:?}"
            ));
        }
        let window_nanos = window.as_nanos() as u64;
        let bucket_nanos = window_nanos / buckets as u64;
        if bucket_nanos < MIN_BUCKET.as_nanos() as u64 {
            return Err(format!(
                "window {window:?} split into {buckets} buckets gives buckets shorter than {MIN_BUCKET:?}"
            ));
        }
        if bucket_nanos * buckets as u64 != window_nanos {
            return Err(format!(
                "window {window:?} does not divide into {buckets} equal buckets of whole nanoseconds"
            ));
        }
        Ok(Geometry {
            bucket_nanos,
            buckets: buckets as u64,
            per_bucket: Divisor::new(bucket_nanos),
            per_window: Divisor::new(buckets as u64),
        })
    }

    #[inline]
    pub(crate) fn window_nanos(&self) -> u64 {
        self.bucket_nanos * self.buckets
    }

    /// Converts a per-second quota into the amount one window may hold,
    /// capped at what one bucket can count ([`COUNT_MAX`]), so that an
    /// admitted amount always fits in its bucket.
    ///
    /// [`COUNT_MAX`]: crate::window::COUNT_MAX
    #[inline]
    pub(crate) fn window_limit(&self, per_second: u64) -> u64 {
        let w = self.window_nanos();
        let l = if w == 1_000_000_000 {
            per_second
        } else {
            let l = (per_second as u128 * w as u128) / 1_000_000_000u128;
            l.min(u64::MAX as u128) as u64
        };
        l.min(crate::window::COUNT_MAX)
    }

    /// The largest per-second rate whose [`Geometry::window_limit`] is at
    /// most `cap` (for `cap` under the window limit of a valid quota).
    pub(crate) fn rate_for_window(&self, cap: u64) -> u64 {
        let w = self.window_nanos() as u128;
        if w == 1_000_000_000 {
            return cap;
        }
        // floor(r * w / 1e9) <= cap  <=>  r * w < (cap + 1) * 1e9.
        let bound = (cap as u128 + 1) * 1_000_000_000u128;
        (bound.div_ceil(w) - 1).min(u64::MAX as u128) as u64
    }

    /// Converts an amount held by a window into a per-second rate.
    #[inline]
    pub(crate) fn per_second(&self, in_window: u64) -> u64 {
        let w = self.window_nanos();
        if w == 1_000_000_000 {
            in_window
        } else {
            let r = (in_window as u128 * 1_000_000_000u128) / w as u128;
            r.min(u64::MAX as u128) as u64
        }
    }
}

/// One clock reading, as the windows need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Now {
    /// Buckets elapsed since the origin.
    pub(crate) tick: u64,
    /// Nanoseconds elapsed since the origin.
    pub(crate) nanos: u64,
}

/// Longest delay a throttle call may answer.
pub(crate) const MAX_THROTTLE: Duration = Duration::from_secs(3600);
/// The delay cap a manager gets unless told otherwise: a Kafka client's
/// default `request.timeout.ms`.
pub(crate) const DEFAULT_MAX_THROTTLE: Duration = Duration::from_secs(30);

/// Validates a throttle cap: more than 0, at most [`MAX_THROTTLE`].
pub(crate) fn validate_max_throttle(max: Duration) -> Result<Duration, String> {
    if max.is_zero() || max > MAX_THROTTLE {
        return Err(format!(
            "max_throttle must be more than 0 and at most {MAX_THROTTLE:?}, got {max:?}"
        ));
    }
    Ok(max)
}

/// The manager's clock: where time is read from, the window geometry
/// readings are turned into ticks with, and the cap on throttle delays.
#[derive(Debug)]
pub(crate) struct TickClock {
    source: TimeSource,
    geometry: Geometry,
    max_throttle: Duration,
    /// Set once a cluster sync attaches (see `cluster_hooks.rs`).
    cluster: std::sync::OnceLock<crate::cluster_hooks::ClusterHooks>,
}

impl TickClock {
    /// Time from `clock` (`quanta::Clock::new()` if `None`; under
    /// `--cfg quota_loom` a tick counter instead), ticks counted from now;
    /// read from a cached reading if `cached` (someone must then call
    /// [`TickClock::refresh`]).
    pub(crate) fn new(
        clock: Option<quanta::Clock>,
        geometry: Geometry,
        max_throttle: Duration,
        cached: bool,
    ) -> TickClock {
        TickClock {
            source: TimeSource::new(clock, cached),
            geometry,
            max_throttle,
            cluster: std::sync::OnceLock::new(),
        }
    }

    /// The cluster sync's hooks, if one is attached.
    #[inline]
    pub(crate) fn cluster(&self) -> Option<&crate::cluster_hooks::ClusterHooks> {
        self.cluster.get()
    }

    /// Attaches the cluster hooks (once; later calls return the first).
    #[cfg_attr(not(any(feature = "cluster", quota_loom)), allow(dead_code))]
    pub(crate) fn attach_cluster(&self) -> &crate::cluster_hooks::ClusterHooks {
        self.cluster
            .get_or_init(crate::cluster_hooks::ClusterHooks::new)
    }

    /// Stores a fresh reading for a cached clock's calls to read.
    pub(crate) fn refresh(&self) {
        self.source.refresh();
    }

    /// Reads the clock once.
    #[inline]
    pub(crate) fn now(&self) -> Now {
        let nanos = self.source.nanos(self.geometry.bucket_nanos);
        Now {
            tick: self.geometry.per_bucket.div(nanos),
            nanos,
        }
    }

    #[inline]
    pub(crate) fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// What a throttle decision needs: the window shape and the cap.
    #[inline]
    pub(crate) fn throttle_shape(&self) -> crate::throttle::Shape {
        crate::throttle::Shape {
            buckets: self.geometry.buckets,
            bucket_nanos: self.geometry.bucket_nanos,
            max_throttle: self.max_throttle,
        }
    }

    /// Moves the loom stand-in clock forward by whole buckets.
    #[cfg(quota_loom)]
    pub(crate) fn advance(&self, buckets: u64) {
        self.source.advance(buckets);
    }
}

#[cfg(test)]
mod tests {
    use super::Divisor;

    /// Every quotient against the `div` instruction: divisors and numerators
    /// at the edges (around multiples of the divisor, near `u64::MAX`) and a
    /// million pseudo-random pairs of every magnitude.
    #[test]
    fn divisor_agrees_with_division() {
        let check = |d: u64, n: u64| {
            assert_eq!(Divisor::new(d).div(n), n / d, "{n} / {d}");
            assert_eq!(Divisor::new(d).rem(n), n % d, "{n} % {d}");
        };
        let divisors = [
            1,
            2,
            3,
            7,
            10,
            1_000,
            100_000_000,
            1_000_000_000,
            (1 << 32) - 1,
            1 << 32,
            (1 << 32) + 1,
            u64::MAX / 3,
            u64::MAX / 2,
            (u64::MAX / 2) + 1,
            u64::MAX - 1,
            u64::MAX,
        ];
        for &d in &divisors {
            for n in [
                0,
                1,
                2,
                d - 1,
                d,
                d.saturating_add(1),
                u64::MAX - 1,
                u64::MAX,
            ] {
                check(d, n);
            }
            // Around the largest multiples of `d`.
            let top = (u64::MAX / d) * d;
            for k in 0..4u64 {
                let m = top.saturating_sub(k.saturating_mul(d));
                for n in [m.saturating_sub(1), m, m.saturating_add(1)] {
                    check(d, n);
                }
            }
        }
        // xorshift64*, with the magnitudes spread by a random shift.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        for _ in 0..1_000_000 {
            let (a, b, c) = (next(), next(), next());
            let d = (a >> (c % 64)).max(1);
            let n = b >> ((c >> 8) % 64);
            check(d, n);
        }
    }
}
