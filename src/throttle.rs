//! Throttle mode: every call is recorded, and the answer is how long to hold
//! the client off (Kafka's `throttle_time_ms`) instead of a refusal.
//!
//! Each rate (bytes, messages, requests) keeps a GCRA ("virtual scheduling")
//! *backlog*, exact in integers. With `n` buckets per window, `L` the window
//! limit the refusing call uses for the quota and `a` a call's amount, the
//! backlog `B` is counted in units of amount × n and drains by `L` per tick:
//!
//! ```text
//!   at a call at tick t:  t' = max(t, newest tick of any throttle call on the tenant)
//!                         B  = B - L * (t' - s)   (saturating; 0 if t' - s >= FORGET)
//!                         B  = min(B + a * n, cap(L));   s = t'
//!   delay in ticks:       k  = 0 if B <= n * L, else ceil((B - n * L) / L)
//!   delay:                0 if k = 0, else min((t' + k) * bucket - now, max_throttle)
//! ```
//!
//! `B` at tick `t` is `max over s of (n * A[s..t] - L * (t - s))`: a history
//! the refusing call would have admitted (at most `ceil(m/n) * L` in any `m`
//! consecutive buckets) never exceeds the tolerance `n * L`, so it is never
//! delayed, with no rounding; after the delay the backlog is back within the
//! tolerance; and a client that always waits is admitted at most one window
//! plus quota × span over any span. `ARCHITECTURE.md` has the proof.
//!
//! The call's delay is the largest of its rates'. An unlimited rate never
//! delays and its backlog is not advanced; a rate of quota 0 delays any
//! non-zero amount by `max_throttle` and is not advanced either.
//!
//! # Words
//!
//! Per tenant, four `AtomicU64` (32 bytes): one [`Backlog`] word per rate,
//! `| stamp: 20 | backlog: 44 |`, and `last`, the newest tick any throttle
//! call on the tenant adopted, full width. The stamp is the tick of the last
//! update modulo 2^20; it is expanded to the full tick against `last`.
//!
//! - A backlog untouched for [`FORGET`] (2^18) ticks or more reads as 0, and
//!   is capped at `min(2^44 - 1, L * FORGET)` so that under a constant quota
//!   it has drained by then anyway: the cap bounds how much debt is carried
//!   (`FORGET` ticks' worth of the quota), and `FORGET` is what makes a
//!   20-bit stamp enough.
//! - Every call writes the words of its limited rates at `t'`. The word of a
//!   skipped rate (unlimited or 0) that still holds a backlog is re-stamped
//!   `(t', 0)` once it is `FORGET` ticks old, which reads the same from then
//!   on. So a word is never more than `FORGET` ticks behind `last` but for
//!   the calls in flight, and its stamp expands exactly.
//! - The backlog needs `n * L` (the tolerance) to fit in 44 bits: with 10
//!   buckets every rate quota does (at most 11 × (2^39 - 1)); with 1,024
//!   buckets, window limits above about 1.7 × 10^10 saturate (see
//!   ARCHITECTURE.md, Known limits).
//!
//! # Orderings
//!
//! - A call first raises `last` to its tick (`fetch_max`, `AcqRel`; only
//!   if an `Acquire` load finds it older), then publishes each rate's word
//!   with a compare-exchange (`AcqRel`), as `window.rs` raises its epoch
//!   before it opens a head. A thread that acquires a word (`Acquire` load,
//!   or a failed compare-exchange) therefore sees `last` at least as new as
//!   the word's stamp when it loads `last` afterwards (`Acquire`).
//! - The word a caller finds was written either by a call whose raise came
//!   before the value of `last` the caller read or replaced (`prev`), in
//!   `last`'s modification order: its stamp is at most `prev` (a *past*
//!   stamp, at most `FORGET` ticks behind but for the calls in flight); or
//!   by one whose raise came after: its stamp is above `prev` and at most
//!   `last` as loaded after the word (a *future* stamp). A stamp less than
//!   2^19 ticks ahead of `prev` and not past the reloaded `last` is read as
//!   future, any other as past; the caller then adopts a future stamp's
//!   tick, so no word's stamp ever goes back.
//! - A compare-exchange that fails reloads and re-decides (lock-free: one
//!   caller's compare-exchange always succeeds).

use std::time::Duration;

use crate::clock::Now;
use crate::sync::{AtomicU64, Ordering};

const BACKLOG_BITS: u32 = 44;
const STAMP_BITS: u32 = 64 - BACKLOG_BITS;
/// Largest backlog a word holds.
pub(crate) const BACKLOG_MAX: u64 = (1 << BACKLOG_BITS) - 1;
const STAMP_MASK: u64 = (1 << STAMP_BITS) - 1;
/// A stamp this far ahead of the replaced `last` or more is read as past.
const FUTURE_RANGE: u64 = 1 << (STAMP_BITS - 1);
/// Ticks after which an untouched backlog reads as 0.
pub(crate) const FORGET: u64 = 1 << (STAMP_BITS - 2);

/// Snapshot of one rate's packed word: `| stamp: 20 | backlog: 44 |`.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Backlog(u64);

impl Backlog {
    #[inline]
    const fn new(tick: u64, backlog: u64) -> Backlog {
        Backlog(((tick & STAMP_MASK) << BACKLOG_BITS) | (backlog & BACKLOG_MAX))
    }

    #[inline]
    fn stamp(self) -> u64 {
        self.0 >> BACKLOG_BITS
    }

    #[inline]
    fn backlog(self) -> u64 {
        self.0 & BACKLOG_MAX
    }

    /// The full tick of this word's stamp, given `prev`, the `last` this
    /// caller's `fetch_max` replaced, and `last` loaded after the word (see
    /// the module's Orderings).
    #[inline]
    fn tick(self, prev: u64, last: u64) -> u64 {
        let ahead = self.stamp().wrapping_sub(prev) & STAMP_MASK;
        if ahead < FUTURE_RANGE && ahead <= last.saturating_sub(prev) {
            prev + ahead
        } else {
            let behind = prev.wrapping_sub(self.stamp()) & STAMP_MASK;
            prev.saturating_sub(behind)
        }
    }
}

impl std::fmt::Debug for Backlog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backlog")
            .field("stamp", &self.stamp())
            .field("backlog", &self.backlog())
            .finish()
    }
}

/// A rate's limit as the throttle sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Limit {
    /// Never delays; the backlog is not advanced.
    Unlimited,
    /// The window limit `L` (0: any amount is delayed by the cap).
    Window(u64),
}

/// What a throttle decision needs besides the words: the window shape and
/// the cap.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    pub(crate) buckets: u64,
    pub(crate) bucket_nanos: u64,
    pub(crate) max_throttle: Duration,
}

/// The throttle words of one tenant (32 bytes).
#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct ThrottleState {
    /// The newest tick any throttle call on the tenant adopted.
    last: AtomicU64,
    /// One [`Backlog`] per rate: bytes, messages, requests.
    rates: [AtomicU64; 3],
}

/// The cap on a backlog of window limit `l`.
#[inline]
fn cap(l: u64) -> u64 {
    l.saturating_mul(FORGET).min(BACKLOG_MAX)
}

/// The decision for one rate: the new backlog from the old one, `age` ticks
/// later, plus `amount`; and the delay in ticks.
#[inline]
fn decide(old: u64, age: u64, amount: u64, l: u64, n: u64) -> (u64, u64) {
    let drained = if age >= FORGET {
        0
    } else {
        old.saturating_sub(l.saturating_mul(age))
    };
    let backlog = drained.saturating_add(amount.saturating_mul(n)).min(cap(l));
    let tolerance = n.saturating_mul(l);
    let ticks = if backlog <= tolerance {
        0
    } else {
        (backlog - tolerance).div_ceil(l)
    };
    (backlog, ticks)
}

impl ThrottleState {
    /// Records `amounts` at `now` and answers how long to hold the client
    /// off: `Duration::ZERO` within every quota, else the largest delay of
    /// the rates over theirs, at most `shape.max_throttle`.
    #[inline]
    pub(crate) fn throttle(
        &self,
        now: Now,
        amounts: [u64; 3],
        limits: [Limit; 3],
        shape: Shape,
    ) -> Duration {
        // Acquire: pairs with the raises of earlier calls. Only a call at a
        // newer tick raises `last` (most calls of a busy tenant find it at
        // their tick already and write nothing here).
        let mut prev = self.last.load(Ordering::Acquire);
        if now.tick > prev {
            // AcqRel: the release half orders this raise before the word
            // compare-exchanges below (a reader that acquires one of our
            // words then loads `last` at least this new); the acquire half,
            // as the load above.
            prev = self.last.fetch_max(now.tick, Ordering::AcqRel);
        }
        let tick = now.tick.max(prev);
        let mut delay = Duration::ZERO;
        for (rate, (amount, limit)) in amounts.into_iter().zip(limits).enumerate() {
            let word = &self.rates[rate];
            match limit {
                Limit::Window(l) if l > 0 => {
                    let until = self.advance(word, prev, tick, amount, l, shape.buckets);
                    if let Some(until) = until {
                        delay = delay.max(Self::wait(until, now, shape));
                    }
                }
                Limit::Window(_) => {
                    if amount > 0 {
                        delay = shape.max_throttle;
                    }
                    self.refresh(word, prev, tick);
                }
                Limit::Unlimited => self.refresh(word, prev, tick),
            }
        }
        delay
    }

    /// Applies one limited rate's call; the tick until which the client must
    /// wait, if it must.
    #[inline]
    fn advance(
        &self,
        word: &AtomicU64,
        prev: u64,
        tick: u64,
        amount: u64,
        l: u64,
        n: u64,
    ) -> Option<u64> {
        // Acquire: pairs with the compare-exchange that wrote the word.
        let mut cur = Backlog(word.load(Ordering::Acquire));
        loop {
            // Acquire: sees the raise sequenced before that compare-exchange.
            let last = self.last.load(Ordering::Acquire);
            let stamp = cur.tick(prev, last);
            // A newer call stamped the word already: adopt its tick.
            let at = tick.max(stamp);
            let (backlog, ticks) = decide(cur.backlog(), at - stamp, amount, l, n);
            let new = Backlog::new(at, backlog);
            if new != cur {
                // AcqRel: the release half publishes the word with the raise
                // before it; the acquire half (and the failure's Acquire)
                // pairs with the compare-exchange of the word we replace.
                if let Err(actual) =
                    word.compare_exchange_weak(cur.0, new.0, Ordering::AcqRel, Ordering::Acquire)
                {
                    cur = Backlog(actual);
                    crate::sync::spin_loop();
                    continue;
                }
            }
            return (ticks > 0).then(|| at.saturating_add(ticks));
        }
    }

    /// A skipped rate (unlimited or 0): a backlog left from when it was
    /// limited is re-stamped `(tick, 0)` once it is [`FORGET`] ticks old, so
    /// no word falls further behind `last` than that. Reads the same: such a
    /// backlog reads as 0 from then on.
    #[inline]
    fn refresh(&self, word: &AtomicU64, prev: u64, tick: u64) {
        // Acquire, as in `advance`.
        let cur = Backlog(word.load(Ordering::Acquire));
        if cur.backlog() == 0 {
            return;
        }
        self.refresh_slow(word, cur, prev, tick);
    }

    #[cold]
    #[inline(never)]
    fn refresh_slow(&self, word: &AtomicU64, cur: Backlog, prev: u64, tick: u64) {
        // Acquire, as in `advance`.
        let last = self.last.load(Ordering::Acquire);
        let stamp = cur.tick(prev, last);
        if tick.saturating_sub(stamp) >= FORGET {
            // AcqRel, as in `advance`. A failure means another call wrote the
            // word at a newer tick: nothing left to do.
            let _ = word.compare_exchange(
                cur.0,
                Backlog::new(tick, 0).0,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }

    /// From the start of tick `until` to `now`, at most the cap.
    #[inline]
    fn wait(until: u64, now: Now, shape: Shape) -> Duration {
        let at = until.saturating_mul(shape.bucket_nanos);
        Duration::from_nanos(at.saturating_sub(now.nanos)).min(shape.max_throttle)
    }

    /// The tick and backlog (amount × n) of one rate's word, with `last`
    /// (tests and models; read when no call is in flight).
    #[cfg(quota_loom)]
    pub(crate) fn backlog(&self, rate: usize) -> (u64, u64) {
        let last = self.last.load(Ordering::Acquire);
        let w = Backlog(self.rates[rate].load(Ordering::Acquire));
        (w.tick(last, last), w.backlog())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: Shape = Shape {
        buckets: 10,
        bucket_nanos: 100_000_000,
        max_throttle: Duration::from_secs(30),
    };

    fn at(tick: u64) -> Now {
        Now {
            tick,
            nanos: tick * SHAPE.bucket_nanos,
        }
    }

    #[test]
    fn a_burst_of_five_windows_waits_four() {
        let s = ThrottleState::default();
        let limits = [Limit::Window(100), Limit::Unlimited, Limit::Unlimited];
        // 500 at t=0 against 100 per 1 s window: 4 s of debt.
        assert_eq!(
            s.throttle(at(0), [500, 1, 1], limits, SHAPE),
            Duration::from_secs(4)
        );
        // One tick early: one tick's drain short.
        assert_eq!(
            s.throttle(at(39), [0, 0, 1], limits, SHAPE),
            Duration::from_millis(100)
        );
        assert_eq!(s.throttle(at(40), [0, 0, 1], limits, SHAPE), Duration::ZERO);
    }

    #[test]
    fn stamps_expand_across_the_20_bit_wrap() {
        let s = ThrottleState::default();
        let limits = [Limit::Window(100), Limit::Unlimited, Limit::Unlimited];
        let t = (1 << STAMP_BITS) - 3;
        assert_eq!(
            s.throttle(at(t), [200, 0, 0], limits, SHAPE),
            Duration::from_secs(1)
        );
        // 5 ticks later, past the wrap: drained by 5 * 100 of 2000.
        let d = s.throttle(at(t + 5), [0, 0, 0], limits, SHAPE);
        assert_eq!(d, Duration::from_millis(500));
    }

    #[test]
    fn an_old_backlog_is_forgotten() {
        let s = ThrottleState::default();
        let limits = [Limit::Window(1), Limit::Unlimited, Limit::Unlimited];
        assert!(s.throttle(at(0), [1 << 30, 0, 0], limits, SHAPE) > Duration::ZERO);
        assert_eq!(
            s.throttle(at(FORGET), [0, 0, 0], limits, SHAPE),
            Duration::ZERO
        );
    }

    #[test]
    fn four_words_per_tenant() {
        assert_eq!(std::mem::size_of::<ThrottleState>(), 32);
        println!(
            "QuotaTracker: {} bytes",
            std::mem::size_of::<crate::QuotaTracker>()
        );
    }

    #[test]
    fn zero_quota_waits_the_cap() {
        let s = ThrottleState::default();
        let limits = [Limit::Window(0), Limit::Unlimited, Limit::Unlimited];
        assert_eq!(
            s.throttle(at(3), [1, 0, 0], limits, SHAPE),
            SHAPE.max_throttle
        );
        assert_eq!(s.throttle(at(3), [0, 0, 0], limits, SHAPE), Duration::ZERO);
    }
}
