//! Sliding rate windows: atomic buckets stamped with the tick they count for.
//!
//! A window of `n` buckets is one *head* word, the bucket of the newest tick,
//! which is the only one admissions write, and `n` *slots* holding the sealed
//! counts of earlier ticks. Every word is a [`Bucket`]: a 24-bit stamp (the
//! tick modulo 2^24), a sealed flag and a 39-bit count, packed into one
//! `AtomicU64` so a stamp and its count always change together.
//!
//! ```text
//!   head  [ stamp=T   | open   | 310 ]   <- admissions CAS here
//!   slots [T-9: 120] [T-8: 0] ... [T-1: 95] [T-10: stale]
//!          \______ counted: stamp age 1..n-1 ______/
//! ```
//!
//! # Admission
//!
//! An admission at tick `T` loads the head. If the head is open and stamped
//! `T`, it sums the slots whose stamp is 1 to `n-1` ticks old, adds the head's
//! count and the amount, and, if that fits the limit, publishes the new count
//! with one compare-exchange on the head. Slots never change while the head is
//! open at `T`, so the sum the decision is made from is exact, and two racers
//! for the last unit of room cannot both win: the second compare-exchange fails
//! and re-decides from the first one's count.
//!
//! The slots' sum is not re-added on every call: it is cached per tick in a
//! word stamped with the tick (the *base*), carried over by the thread that
//! opens a tick one after the last, or summed by the first admission that
//! finds it invalid. The common case, head open at `T`, epoch `T`, base valid
//! for `T`, is [`WindowHead::admit_fast`]: three loads and the
//! compare-exchange.
//!
//! # Rotation (the first writer of a new tick)
//!
//! A caller at a tick newer than the head's first *seals* the head
//! (compare-exchange setting the flag; a sealed head accepts no more
//! admissions, so its count is final), then copies the sealed count into its
//! slot, then replaces the head with an open, empty head stamped with its own
//! tick. Every step can be done by any thread that finds the head sealed, so a
//! rotating thread that is preempted never blocks the others (lock-free). A
//! caller whose clock reading is older than the head's stamp adopts the head's
//! tick: time has already moved on, and counting the call in the newer bucket
//! can only make the window stricter. Slots of skipped ticks are not cleared:
//! their stale stamps already make them count as zero.
//!
//! # Roll-back
//!
//! An all-or-nothing call that is refused by a later window takes its amount
//! back from the earlier ones ([`Window::unrecord`]): from the head if it is
//! still open at the admission's tick, otherwise (after helping the rotation
//! finish) from the slot the count was sealed into. Only ever decreasing a
//! count can never make a window admit past its limit.
//!
//! # Orderings
//!
//! - Slot writes (`compare_exchange`, `AcqRel`) happen before the head
//!   compare-exchange that opens the next tick (`AcqRel`, its release half);
//!   an admission's head load (`Acquire`) therefore sees every slot sealed for
//!   the tick it admits at. A helper that finds the slot already written
//!   acquires that write with its `Acquire` load, and its own head
//!   compare-exchange releases it again (transitivity).
//! - The seal compare-exchange (`AcqRel`) pairs with the head loads of the
//!   helpers that read the sealed count.
//! - Slot loads in the sum are `Acquire` so that a roll-back (a slot decrement)
//!   seen by one thread is ordered like every other slot write.
//!
//! # Stamps and the epoch
//!
//! Stamps are ticks modulo 2^24 (19.4 days of 100 ms buckets). The window's
//! epoch, raised before every opening of the head, is a full-width tick never
//! behind the head and at most a few ticks ahead of it, so the head's stamp
//! always expands to its exact tick however long the window sat idle. Slots
//! are only compared with ticks within a window of the head, and the thread
//! that opens a head zeroes every slot left over from ticks that had no head
//! (all of them after an idle stretch of a window or more), so no stale count
//! survives long enough for its stamp to wrap around and read as recent
//! (until it is zeroed, a left-over can only be over-counted: the window errs
//! towards refusing). See [`Window::clear_stale`].
//! - The epoch `fetch_max` (`AcqRel`) is sequenced before the head
//!   compare-exchange that opens the new stamp, so any thread that acquires
//!   the new head also sees an epoch at least as new.
//! - The `archived` total is `Relaxed`: a monitoring counter that orders
//!   nothing and is read only for reports.

use std::time::Duration;

use crate::clock::{Divisor, Now};
use crate::sync::{AtomicU64, Ordering};

const COUNT_BITS: u32 = 39;
/// Largest count one bucket can hold; rate quotas are validated against it.
pub(crate) const COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;
const SEALED: u64 = 1 << COUNT_BITS;
const STAMP_SHIFT: u32 = COUNT_BITS + 1;
const STAMP_BITS: u32 = 64 - STAMP_SHIFT;
const STAMP_MASK: u64 = (1 << STAMP_BITS) - 1;

/// The value of a window's cached base when it is invalid (sealed flag set).
const INVALID_BASE: u64 = SEALED;

/// Snapshot of one packed bucket word: `| stamp: 24 | sealed: 1 | count: 39 |`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bucket(u64);

impl Bucket {
    #[inline]
    pub(crate) const fn new(tick: u64, count: u64) -> Bucket {
        Bucket(((tick & STAMP_MASK) << STAMP_SHIFT) | (count & COUNT_MAX))
    }

    #[inline]
    fn stamp(self) -> u64 {
        self.0 >> STAMP_SHIFT
    }

    #[inline]
    pub(crate) fn count(self) -> u64 {
        self.0 & COUNT_MAX
    }

    #[inline]
    fn is_sealed(self) -> bool {
        self.0 & SEALED != 0
    }

    #[inline]
    fn sealed(self) -> Bucket {
        Bucket(self.0 | SEALED)
    }

    #[inline]
    fn with_count(self, count: u64) -> Bucket {
        debug_assert!(count <= COUNT_MAX);
        Bucket((self.0 & !COUNT_MAX) | count)
    }

    /// Whether this is an open (not sealed) bucket stamped `tick`: one
    /// compare of the stamp and flag bits together.
    #[inline(always)]
    fn is_open_at(self, tick: u64) -> bool {
        self.0 >> COUNT_BITS == (tick & STAMP_MASK) << 1
    }

    /// Ticks between this bucket's stamp and `tick`, modulo 2^24.
    #[inline]
    fn age(self, tick: u64) -> u64 {
        (tick & STAMP_MASK).wrapping_sub(self.stamp()) & STAMP_MASK
    }
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket")
            .field("stamp", &self.stamp())
            .field("sealed", &self.is_sealed())
            .field("count", &self.count())
            .finish()
    }
}

/// A refused admission: what the window held when it said no.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Refused {
    /// Amount in the window at the decision.
    pub(crate) used: u64,
}

/// The hot words of a window: the head bucket, the window's epoch and the
/// cached base (the slots and the `archived` total live elsewhere, so that a
/// tracker can keep its three windows' hot words in one cache line and a
/// half).
///
/// The epoch is the newest tick any thread has tried to open the head at
/// (`fetch_max` before the opening compare-exchange), so it is never behind
/// the head and at most a few ticks ahead of it. With it, the head's 24-bit
/// stamp expands to its full tick without ambiguity, however long the window
/// sat idle.
#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct WindowHead {
    head: AtomicU64,
    epoch: AtomicU64,
    /// The sum of the sealed slots for the head's tick: carried over by the
    /// thread that opens the tick (see [`Window::carry_base`]) or else
    /// summed by its first admission, and reused by the rest. A [`Bucket`]
    /// stamped with the tick it is valid for; the sealed flag marks it
    /// invalid. Every rotation, roll-back from a slot and clearing of slots
    /// sets that flag, so a valid base equals what summing the slots would
    /// give, or (after the race described at [`Window::carry_base`]) exceeds
    /// it, which can only refuse.
    base: AtomicU64,
}

/// One rate window: its head, its `archived` total and its `n` slots.
///
/// The slots are every `stride`-th word of `slots` from `offset`: a tracker
/// interleaves its three windows' slots (`[bytes, messages, requests]` for
/// tick 0, then for tick 1, ...), so that a rotation of all three touches
/// the same one or two cache lines.
#[derive(Debug)]
pub(crate) struct Window<'a> {
    hot: &'a WindowHead,
    /// Everything ever sealed out of the head, less roll-backs taken from
    /// sealed slots: with the open head's count, the window's lifetime total
    /// (a monitoring counter that costs the hot path nothing).
    archived: &'a AtomicU64,
    slots: &'a [AtomicU64],
    stride: usize,
    offset: usize,
    /// The bucket count `n`, as a divisor (a tick's slot is `tick % n`).
    n: Divisor,
    bucket_nanos: u64,
}

/// What [`WindowHead::admit_fast`] made of an admission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fast {
    /// Counted at the caller's tick; the amount actually added.
    Admitted(u64),
    /// Refused, with what the window held.
    Refused(Refused),
    /// Not the common case: go through [`Window::try_admit`].
    Slow,
}

impl WindowHead {
    /// The common case of [`Window::try_admit`], which needs neither the
    /// slots nor a rotation: the head is open at `tick`, the epoch is `tick`
    /// and, for a limited window, the cached base is valid for `tick`.
    ///
    /// It decides exactly as the general loop's first pass does in that case
    /// (same loads, same orderings, same arithmetic); anything else, a lost
    /// compare-exchange included, answers [`Fast::Slow`] having changed
    /// nothing. `limit` is as for [`Window::try_admit`].
    #[inline(always)]
    pub(crate) fn admit_fast(&self, tick: u64, amount: u64, limit: u64) -> Fast {
        let Some(head) = self.head_open_at(tick) else {
            return Fast::Slow;
        };
        let used = if limit == u64::MAX {
            0
        } else {
            let Some(base) = self.base_valid_at(tick) else {
                return Fast::Slow;
            };
            base + head.count()
        };
        if used.saturating_add(amount) > limit {
            return Fast::Refused(Refused { used });
        }
        if amount == 0 {
            return Fast::Admitted(0);
        }
        let count = head.count().saturating_add(amount).min(COUNT_MAX);
        // AcqRel, as in `Window::try_admit`.
        match self.head.compare_exchange(
            head.0,
            head.with_count(count).0,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => Fast::Admitted(count - head.count()),
            Err(_) => Fast::Slow,
        }
    }

    /// Whether `amount` would fit under `limit` at `tick`, read from the
    /// head and the cached base alone; `None` when they cannot tell (the
    /// head is not open at `tick` or the base is not valid for it). Writes
    /// nothing.
    #[inline]
    pub(crate) fn fits_fast(&self, tick: u64, amount: u64, limit: u64) -> Option<bool> {
        let head = self.head_open_at(tick)?;
        let base = self.base_valid_at(tick)?;
        Some((base + head.count()).saturating_add(amount) <= limit)
    }

    /// The head, if it is open at `tick` and the epoch is `tick` (so the
    /// 24-bit stamp cannot be a wrapped older tick).
    #[inline(always)]
    fn head_open_at(&self, tick: u64) -> Option<Bucket> {
        // Acquire, as in `Window::load_head`.
        let head = Bucket(self.head.load(Ordering::Acquire));
        (head.is_open_at(tick) && self.epoch.load(Ordering::Acquire) == tick).then_some(head)
    }

    /// The cached base, if it is valid for `tick`.
    #[inline(always)]
    fn base_valid_at(&self, tick: u64) -> Option<u64> {
        // Acquire: pairs with the compare-exchange that published it, whose
        // thread read the slots after acquiring the head open at `tick`.
        let base = Bucket(self.base.load(Ordering::Acquire));
        base.is_open_at(tick).then(|| base.count())
    }

    /// The head and epoch, decoded, for the loom models' messages.
    #[cfg(quota_loom)]
    pub(crate) fn dump(&self) -> String {
        let v = self.head.load(Ordering::SeqCst);
        format!(
            "head (stamp {} sealed {} count {}) epoch {}",
            v >> 40,
            (v >> 39) & 1,
            v & COUNT_MAX,
            self.epoch.load(Ordering::SeqCst)
        )
    }
}

impl<'a> Window<'a> {
    /// The window of `head` and `archived` whose `n` slots are
    /// `slots[i * stride + offset]` for `i` in `0..n`.
    #[inline]
    pub(crate) fn new(
        head: &'a WindowHead,
        archived: &'a AtomicU64,
        slots: &'a [AtomicU64],
        (stride, offset, n): (usize, usize, Divisor),
        bucket_nanos: u64,
    ) -> Self {
        debug_assert!(offset < stride && slots.len() as u64 == n.get() * stride as u64);
        Window {
            hot: head,
            archived,
            slots,
            stride,
            offset,
            n,
            bucket_nanos,
        }
    }

    /// The slot of index `i` (`0..n`).
    #[inline]
    fn slot(&self, i: u64) -> &'a AtomicU64 {
        &self.slots[i as usize * self.stride + self.offset]
    }

    /// The slot tick `tick` is archived into.
    #[inline]
    fn slot_of(&self, tick: u64) -> &'a AtomicU64 {
        self.slot(self.n.rem(tick))
    }

    /// Every slot, by index.
    #[inline]
    fn all_slots(&self) -> impl Iterator<Item = &'a AtomicU64> + '_ {
        (0..self.n.get()).map(move |i| self.slot(i))
    }

    #[inline]
    fn n(&self) -> u64 {
        self.n.get()
    }

    /// Loads the head and expands its stamp to the full tick.
    #[inline]
    fn load_head(&self) -> (Bucket, u64) {
        // Acquire: pairs with the AcqRel compare-exchange that opened this
        // head, so the slots sealed before it, and the epoch raised before it,
        // are visible.
        let head = Bucket(self.hot.head.load(Ordering::Acquire));
        let epoch = self.hot.epoch.load(Ordering::Acquire);
        let behind = epoch.wrapping_sub(head.stamp()) & STAMP_MASK;
        (head, epoch.wrapping_sub(behind))
    }

    /// Moves `now` forward to `tick` (a reading older than the head is stale:
    /// time has already moved on).
    #[inline]
    fn adopt(&self, now: &mut Now, tick: u64) {
        now.tick = tick;
        now.nanos = now.nanos.max(tick.saturating_mul(self.bucket_nanos));
    }

    /// Admits `amount` if the window plus `amount` stays within `limit`.
    ///
    /// On success returns the tick the amount was counted in and the amount
    /// actually added (less than `amount` only when an unlimited window's
    /// bucket saturates): both are what a roll-back needs. `now` may be moved
    /// forward to the head's tick if the caller's reading is older than a
    /// rotation another thread already made.
    ///
    /// `limit` is either `u64::MAX` (record without a limit) or at most
    /// [`COUNT_MAX`], so an admitted amount always fits in its bucket.
    #[inline]
    pub(crate) fn try_admit(
        &self,
        now: &mut Now,
        amount: u64,
        limit: u64,
    ) -> Result<(u64, u64), Refused> {
        match self.hot.admit_fast(now.tick, amount, limit) {
            Fast::Admitted(added) => Ok((now.tick, added)),
            Fast::Refused(refused) => Err(refused),
            Fast::Slow => self.admit_general(now, amount, limit),
        }
    }

    /// [`Window::try_admit`] past its fast path: rotations, a base to
    /// recompute, lost races. Callers that have already tried
    /// [`WindowHead::admit_fast`] come straight here.
    pub(crate) fn admit_general(
        &self,
        now: &mut Now,
        amount: u64,
        limit: u64,
    ) -> Result<(u64, u64), Refused> {
        debug_assert!(limit == u64::MAX || limit <= COUNT_MAX);
        if let Some(outcome) = self.rotate_one(now.tick, amount, limit) {
            return outcome;
        }
        loop {
            let (head, head_tick) = self.load_head();
            if head_tick > now.tick {
                self.adopt(now, head_tick);
            }
            if head.is_sealed() && head_tick == now.tick {
                // Sealed by a thread whose clock reads a later tick: time has
                // moved past this bucket, and re-opening it would start a
                // second bucket for the same tick (the first one's archive
                // would then be overwritten). Move on to the next tick.
                self.adopt(now, head_tick + 1);
            }
            if head_tick != now.tick || head.is_sealed() {
                self.advance(head, head_tick, now.tick);
                continue;
            }
            let used = if limit == u64::MAX {
                0
            } else {
                self.base_for(now.tick).saturating_add(head.count())
            };
            if used.saturating_add(amount) > limit {
                return Err(Refused { used });
            }
            if amount == 0 {
                return Ok((now.tick, 0));
            }
            let count = head.count().saturating_add(amount).min(COUNT_MAX);
            let next = head.with_count(count);
            // AcqRel: release publishes the count to later admissions and
            // helpers; acquire on failure re-reads a head whose slots we need.
            match self.hot.head.compare_exchange_weak(
                head.0,
                next.0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok((now.tick, count - head.count())),
                Err(_) => continue,
            }
        }
    }

    /// The common rotation, done in one pass: the head is open at a tick
    /// `from` less than a window behind `tick` (the epoch says so too) and
    /// the call is the first of `tick`. Seals the head, archives its count,
    /// and opens `tick` *with the call's amount already in it* when the base
    /// can be carried: one compare-exchange opens the tick and admits the
    /// call. Most often `from` is `tick - 1` (a tenant touched about once a
    /// bucket); a tenant touched every few buckets is `k = tick - from`
    /// ticks behind, `1 < k < n`.
    ///
    /// The base for `tick` is decided before the seal, from values read
    /// while the head was open at `from`: the base valid there (`prior`),
    /// the head's count and the slots of ticks `from + 1 ..= tick` (ticks
    /// `from + 1 - n ..= tick - n`, which leave the window). That sum is
    /// what the window holds at `tick` before anything is admitted there, or
    /// more (never less): once the head opened at `from`, every slot of its
    /// window was final but for roll-backs and clearings, which only lower
    /// slots (a late helper's archive compare-exchanges from a value read
    /// before the archive, which no longer matches, and writes nothing). The
    /// leaving slots are loaded after `prior` (Acquire), so each is at most
    /// what `prior` counted for its tick: a roll-back of a leaving tick
    /// landing between the loads leaves the sum high by the amount rolled
    /// back (the call errs towards refusing), and one landing before or
    /// after them keeps it exact. The skipped ticks `from + 1 .. tick` never
    /// had a head, so their slots can only hold the tick a window older
    /// (which leaves) or nothing: anything else is a left-over, and with
    /// `k > 1` any left-over hands the call to the general loop before
    /// anything is written (its clearing, [`Window::clear_stale`], visits
    /// exactly these slots). Nothing can be admitted at `tick` before the
    /// opening compare-exchange, so deciding the call on that sum and
    /// opening with its amount (or with nothing, if it does not fit) is the
    /// admission the general loop would make right after opening, made at
    /// the same point.
    ///
    /// It makes the same writes, in the same order and with the same
    /// orderings, as one pass of the general loop through
    /// [`Window::advance`] followed by its admission, less three: a base
    /// valid at `from` is not set invalid before the opening (it is not
    /// valid at `tick` anyway; the carry replaces it by compare-exchange from
    /// the value read before the seal, so a roll-back's invalidation in
    /// between makes the carry fail; a base stamped with an older tick still
    /// is set invalid, so no stamp can alias), the slot is not re-checked
    /// against the head before its write (the slot was read while the head
    /// was open at `from`, and the seal succeeding proves no rotation came
    /// in between, so the compare-exchange from that value can only succeed
    /// for this rotation's archive), and the admission is the opening
    /// itself. The visited slots need no clearing: they were checked to
    /// hold nothing or the tick a window older, which the clearing leaves.
    ///
    /// Without a valid `prior` the tick is opened empty, as by
    /// [`Window::advance`], and the admission sums the slots; so it is, when
    /// `k = 1`, with a left-over in the slot of `tick` (which is then
    /// cleared, and the general loop sums anew). `None` when the state is
    /// anything else or a step finds another thread's work: the general loop
    /// then takes over from whatever state the window is in (every step here
    /// is one it would help with).
    #[inline(always)]
    fn rotate_one(
        &self,
        tick: u64,
        amount: u64,
        limit: u64,
    ) -> Option<Result<(u64, u64), Refused>> {
        // Acquire, as in `Window::load_head`.
        let head = Bucket(self.hot.head.load(Ordering::Acquire));
        let from = self.hot.epoch.load(Ordering::Acquire);
        let n = self.n();
        // One tick behind (any window, one bucket included), or less than a
        // window behind (a reading older than `from` wraps to a huge `k`).
        let k = tick.wrapping_sub(from);
        if (k != 1 && !(2..n).contains(&k)) || !head.is_open_at(from) {
            return None;
        }
        // Acquire, as in `WindowHead::base_valid_at`.
        let prior = Bucket(self.hot.base.load(Ordering::Acquire));
        let index = self.n.rem(from);
        let archive = self.slot(index);
        // Acquire, as in `Window::advance`.
        let before = archive.load(Ordering::Acquire);
        // The slots of `from + 1 ..= tick`: each must hold nothing or
        // exactly the tick a window older, which leaves the window (what the
        // clearing of `clear_stale` leaves); anything else is a left-over.
        let leaving_slot = self.slot(if index + 1 == n { 0 } else { index + 1 });
        let leaving = if k == 1 {
            // Acquire, as in `Window::carry_base`.
            let s = Bucket(leaving_slot.load(Ordering::Acquire));
            if n == 1 {
                // One bucket: the slot of `tick` is the one `from` is about
                // to be archived into, and that count is what leaves.
                Some(head.count())
            } else {
                self.leaving_count(s, tick)
            }
        } else {
            // A left-over among them: the general loop clears it.
            Some(self.leaving_sum(index, from, k)?)
        };
        // The base for `tick`, if it can be carried from `prior`.
        let carried = match leaving {
            Some(leaving) if prior.is_open_at(from) => {
                let sum = prior
                    .count()
                    .saturating_add(head.count())
                    .saturating_sub(leaving);
                (sum < COUNT_MAX).then_some(sum)
            }
            _ => None,
        };
        // Seal (AcqRel, as in `Window::advance`).
        let sealed = head.sealed();
        self.hot
            .head
            .compare_exchange(head.0, sealed.0, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        let target = Bucket::new(from, head.count()).sealed();
        if before != target.0 {
            // AcqRel, as in `Window::advance`. A failure means a helper
            // archived first (or the slot moved): let the general loop go on.
            archive
                .compare_exchange(before, target.0, Ordering::AcqRel, Ordering::Acquire)
                .ok()?;
        }
        if k == 1 {
            // AcqRel, as in `Window::advance`. Every other raise is to a
            // tick of at least `tick`, so a failure leaves the epoch at or
            // past it.
            let _ =
                self.hot
                    .epoch
                    .compare_exchange(from, tick, Ordering::AcqRel, Ordering::Relaxed);
        } else {
            // Another thread may raise it to a tick between `from` and
            // `tick`: as in `Window::advance`.
            self.hot.epoch.fetch_max(tick, Ordering::AcqRel);
        }
        if !prior.is_open_at(from) && prior.0 != INVALID_BASE {
            // A base stamped with an older tick (never summed since, as in
            // an unlimited window): set it invalid before the opening, so
            // no stamp 2^24 ticks old can read as valid for `tick`.
            self.invalidate_base();
        }
        if let Some(base) = carried {
            // The admission, decided on the carried base: the call's amount
            // goes into the opening if it fits.
            let used = if limit == u64::MAX { 0 } else { base };
            let fits = used.saturating_add(amount) <= limit;
            let count = if fits { amount.min(COUNT_MAX) } else { 0 };
            // AcqRel, as in `Window::advance`.
            self.hot
                .head
                .compare_exchange(
                    sealed.0,
                    Bucket::new(tick, count).0,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .ok()?;
            // The opener archives the count into the total (Relaxed: a
            // monitoring total, ordered by nothing).
            self.archived.fetch_add(head.count(), Ordering::Relaxed);
            // AcqRel, as in `Window::carry_base`.
            let _ = self.hot.base.compare_exchange(
                prior.0,
                Bucket::new(tick, base).0,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
            return Some(if fits {
                Ok((tick, count))
            } else {
                Err(Refused { used })
            });
        }
        let fresh = Bucket::new(tick, 0);
        // AcqRel, as in `Window::advance`.
        self.hot
            .head
            .compare_exchange(sealed.0, fresh.0, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        // As above.
        self.archived.fetch_add(head.count(), Ordering::Relaxed);
        if leaving.is_none() {
            // A left-over: clear it, and let the general loop sum anew.
            self.clear_slot(leaving_slot, tick, Some(tick));
            return None;
        }
        // No base to carry: the admission sums the slots, on the head just
        // opened.
        let used = if limit == u64::MAX {
            0
        } else {
            self.base_for(tick)
        };
        if used.saturating_add(amount) > limit {
            return Some(Err(Refused { used }));
        }
        if amount == 0 {
            return Some(Ok((tick, 0)));
        }
        let count = amount.min(COUNT_MAX);
        // AcqRel, as in the general loop.
        self.hot
            .head
            .compare_exchange(
                fresh.0,
                fresh.with_count(count).0,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .ok()?;
        Some(Ok((tick, count)))
    }

    /// The counts leaving the window when its head moves from `from` (slot
    /// index `index`) to `from + k` (`1 < k < n`): the slots of ticks
    /// `from + 1 ..= from + k`, each holding exactly the tick a window older
    /// or nothing. `None` if one holds anything else (a left-over). Loads
    /// only (Acquire, as in `Window::carry_base`).
    #[inline(never)]
    fn leaving_sum(&self, index: u64, from: u64, k: u64) -> Option<u64> {
        let n = self.n();
        let mut sum = 0u64;
        for j in 1..=k {
            let i = index + j;
            let s = Bucket(
                self.slot(if i >= n { i - n } else { i })
                    .load(Ordering::Acquire),
            );
            sum = sum.saturating_add(self.leaving_count(s, from + j)?);
        }
        Some(sum)
    }

    /// What the slot `s` of tick `t` takes out of the window when the head
    /// opens at `t`: its count if it holds exactly tick `t - n` (what the
    /// clearing of `clear_stale` leaves), 0 if it holds nothing, `None` if it
    /// holds anything else (a left-over).
    #[inline(always)]
    fn leaving_count(&self, s: Bucket, t: u64) -> Option<u64> {
        if s.age(t) == self.n() & STAMP_MASK {
            Some(s.count())
        } else if s.count() == 0 {
            Some(0)
        } else {
            None
        }
    }

    /// Counts `amount` without a limit (saturating at [`COUNT_MAX`] per
    /// bucket); returns the tick counted in and the amount actually added.
    /// (The tracker records through [`WindowHead::admit_fast`] and
    /// [`Window::admit_general`] itself, the same steps; the loom models
    /// call this.)
    #[cfg(quota_loom)]
    #[inline]
    pub(crate) fn record(&self, now: &mut Now, amount: u64) -> (u64, u64) {
        match self.try_admit(now, amount, u64::MAX) {
            Ok(counted) => counted,
            Err(_) => unreachable!("an unlimited window never refuses"),
        }
    }

    /// Takes back `amount` that an earlier `try_admit`/`record` added at
    /// `tick` (pass what they returned as added, not what was asked).
    ///
    /// Saturates at zero; does nothing if the bucket has already expired.
    #[cold]
    #[inline(never)]
    pub(crate) fn unrecord(&self, tick: u64, amount: u64) {
        if amount == 0 {
            return;
        }
        loop {
            let (head, head_tick) = self.load_head();
            if head_tick < tick {
                // Cannot happen: the head reached `tick` when we were admitted.
                return;
            }
            if head_tick == tick {
                if head.is_sealed() {
                    // The count is final in the head and about to move to its
                    // slot: finish the rotation, then take it from the slot.
                    self.advance(head, head_tick, tick + 1);
                    continue;
                }
                let next = head.with_count(head.count().saturating_sub(amount));
                if self
                    .hot
                    .head
                    .compare_exchange_weak(head.0, next.0, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return;
                }
                continue;
            }
            // The head has moved past `tick`: the amount sits in its slot,
            // unless that slot has since been reused for a newer tick.
            let slot = self.slot_of(tick);
            let s = Bucket(slot.load(Ordering::Acquire));
            if s.age(tick) != 0 {
                return;
            }
            let taken = s.count().min(amount);
            let next = s.with_count(s.count() - taken);
            if slot
                .compare_exchange(s.0, next.0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                // Relaxed: a monitoring total, ordered by nothing.
                self.archived.fetch_sub(taken, Ordering::Relaxed);
                self.invalidate_base();
                return;
            }
        }
    }

    /// Moves the window one step towards `tick`: seals an open stale head, or
    /// archives a sealed head and opens a fresh one at `tick`.
    #[cold]
    #[inline(never)]
    fn advance(&self, head: Bucket, head_tick: u64, tick: u64) {
        debug_assert!(head_tick <= tick);
        let mut head = head;
        if !head.is_sealed() {
            // Seal it so its count is final; a failure means the head changed
            // and the caller re-reads it. AcqRel pairs with helpers' loads.
            if self
                .hot
                .head
                .compare_exchange(head.0, head.sealed().0, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                return;
            }
            // Sealed by us: go on with the archive and the opening, as a
            // helper that loaded this sealed head would.
            head = head.sealed();
        }
        // A head a whole window or more behind needs no archive: every slot
        // is cleared below, and its count is out of the window at `tick`.
        let idle = tick - head_tick >= self.n();
        // Archive the sealed count into the slot of the tick it counted for.
        let slot = self.slot_of(head_tick);
        // Archived slots keep the sealed flag, so a slot that was archived
        // and then rolled back to its old count can never again equal the
        // value a slow helper loaded before the archive (no ABA).
        let target = Bucket::new(head_tick, head.count()).sealed();
        let current = slot.load(Ordering::Acquire);
        if !idle && current != target.0 {
            // Only write while the head is still this sealed bucket: once the
            // rotation is done the slot may be reused for a later tick.
            if self.hot.head.load(Ordering::Acquire) != head.0 {
                return;
            }
            // AcqRel: the release half is what the head compare-exchange below
            // carries to admissions at the new tick.
            if slot
                .compare_exchange(current, target.0, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                return;
            }
        }
        // Raise the epoch before the head can show the new stamp, so every
        // thread that sees the new head can expand its stamp (AcqRel; the
        // head compare-exchange below releases it again).
        self.hot.epoch.fetch_max(tick, Ordering::AcqRel);
        // No base computed for an earlier tick, or 2^24 ticks ago, may be
        // taken for the new one's. AcqRel: as `invalidate_base`, and the
        // acquire half makes the replaced base's sum visible for the carry.
        let prior = Bucket(self.hot.base.swap(INVALID_BASE, Ordering::AcqRel));
        let fresh = Bucket::new(tick, 0);
        // AcqRel: release publishes the slot written (or acquired) above.
        let opened = self
            .hot
            .head
            .compare_exchange(head.0, fresh.0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if opened {
            // Only the thread that opened the new head archives the old count
            // into the total, so it is added exactly once. Relaxed: a
            // monitoring total, ordered by nothing. (A roll-back from the slot
            // may subtract first; the wrapping arithmetic evens out.)
            self.archived.fetch_add(head.count(), Ordering::Relaxed);
            let cleared = self.clear_stale(head_tick, tick);
            if idle {
                // Every slot is now empty or holds a tick the window at
                // `tick` does not count (one archived since the opening, or
                // a slow helper's archive of an expired tick): the sum is 0.
                // AcqRel, as in `carry_base`.
                let _ = self.hot.base.compare_exchange(
                    INVALID_BASE,
                    Bucket::new(tick, 0).0,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
            } else if !cleared && tick == head_tick + 1 && prior.is_open_at(head_tick) {
                // A clearing lowered a slot the prior base may count: sum anew.
                self.carry_base(prior.count(), head.count(), tick);
            }
        }
    }

    /// Publishes the base for `tick`, the tick just opened right after
    /// `tick - 1`, from the base that was valid for `tick - 1` (`before`) and
    /// the count sealed at `tick - 1` (`sealed`), instead of summing every
    /// slot again on the next admission: the window gains tick `tick - 1`
    /// and loses tick `tick - n`, whose slot is the one at `tick`'s index.
    ///
    /// Runs in the thread that opened `tick`, after [`Window::clear_stale`],
    /// and only if that zeroed nothing (a zeroed slot may be one the prior
    /// base counted). The compare-exchange from the invalid base this thread
    /// stored fails if another thread published since. A roll-back or
    /// clearing by another thread that lands between the load of the slot
    /// and the compare-exchange is not told apart (the invalid value is a
    /// constant) and can only have lowered a slot: the carried sum is then
    /// high by that amount until the next rotation, and the window errs
    /// towards refusing, never past its limit. The same holds of
    /// [`Window::publish_base`].
    ///
    /// The slot is read after the opening, so a rotation right after ours
    /// may already have archived tick `tick` into it: the count of
    /// `tick - n` that `before` holds is then gone, and nothing is carried
    /// (taking 0 for it left the base high by that count; loom model 1d
    /// found it, a stale admission racing a rotation two ticks ahead).
    #[cold]
    fn carry_base(&self, before: u64, sealed: u64, tick: u64) {
        let n = self.n();
        let slot = Bucket(self.slot_of(tick).load(Ordering::Acquire));
        // Counted in `before` (age n - 1 from `tick - 1`) only if it holds
        // exactly tick `tick - n`. (With one bucket that is the slot `sealed`
        // was just archived into, and the base stays 0; but there the
        // clearing has zeroed that slot and no carry is made.)
        let age = slot.age(tick);
        let leaving = if age == n & STAMP_MASK {
            slot.count()
        } else if age == 0 || age > STAMP_MASK / 2 {
            // Archived since the opening (tick `tick` itself, sealed and
            // archived by a rotation that came right after ours): the count
            // of `tick - n` that `before` holds is gone from the slot, and a
            // carry that took 0 for it would be high by that much. Leave the
            // base invalid; the next admission sums the slots.
            return;
        } else {
            0
        };
        let sum = before.saturating_add(sealed).saturating_sub(leaving);
        if sum < COUNT_MAX {
            // AcqRel: the release half pairs with the Acquire load in
            // `admit_fast` and `base_for`.
            let _ = self.hot.base.compare_exchange(
                INVALID_BASE,
                Bucket::new(tick, sum).0,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }

    /// Everything the window has counted since it was created, less
    /// roll-backs. May trail by the one bucket being rotated.
    pub(crate) fn total(&self) -> u64 {
        let (head, _) = self.load_head();
        let archived = self.archived.load(Ordering::Relaxed);
        // `archived` can be transiently "negative" (wrapped) if a roll-back
        // from a slot lands before the archiving add; read that as 0.
        let archived = if archived > u64::MAX / 2 { 0 } else { archived };
        archived.saturating_add(if head.is_sealed() { 0 } else { head.count() })
    }

    /// After the head moved from `from` to `to`, zeroes the slots that could
    /// otherwise outlive their stamps.
    ///
    /// Invariant kept (by induction over openings): while the head is open at
    /// `T`, every slot whose stamp claims a tick in `(T-n, T)` holds that
    /// tick's true sealed count, and no slot's stamp is more than a few
    /// windows old, so no 24-bit stamp ever wraps around to read as recent.
    /// A slot at index `t % n` only ever holds ticks congruent to `t`. After
    /// a move of less than a window, the indices of the ticks `(from, to]`
    /// are visited: those ticks never had a head (but `to`, just opened), so
    /// their slots can hold nothing current. A slot holding exactly the tick
    /// one window earlier is left (it has expired and counts for nothing; the
    /// next visit of its index, a window later, clears or overwrites it); any
    /// other count there is a left-over and is zeroed. Every index is thus
    /// archived into or visited at least once a window. After an idle
    /// stretch of a window or more every slot is stale and all are visited.
    /// Until this runs, a left-over can only be over-counted, so the window
    /// errs towards refusing.
    ///
    /// Runs in the thread whose compare-exchange opened `to`, after it: the
    /// only later slot writes are archives of ticks `>= to`, and those are
    /// never touched here (the slot is loaded before the head, so an archive
    /// that lands after the load fails the compare-exchange).
    ///
    /// Returns whether it zeroed any slot.
    #[cold]
    fn clear_stale(&self, from: u64, to: u64) -> bool {
        let n = self.n();
        let mut cleared = false;
        if to - from >= n {
            for slot in self.all_slots() {
                cleared |= self.clear_slot(slot, to, None);
            }
        } else {
            for t in from + 1..=to {
                cleared |= self.clear_slot(self.slot_of(t), to, Some(t));
            }
        }
        cleared
    }

    /// Zeroes `slot` after the opening of `to`, unless it is empty, holds a
    /// tick archived since that opening or, when `visiting` the index of tick
    /// `t`, holds exactly tick `t - n`. Returns whether it zeroed it.
    #[inline]
    fn clear_slot(&self, slot: &AtomicU64, to: u64, visiting: Option<u64>) -> bool {
        let s = Bucket(slot.load(Ordering::Acquire));
        if s.count() == 0 {
            return false;
        }
        if let Some(t) = visiting {
            if s.age(t) == self.n() & STAMP_MASK {
                return false;
            }
        }
        // Ticks from `to` up to the head now (and the head itself once it is
        // sealed) may have been archived after our opening: leave any slot
        // that claims one of them.
        let (head, head_tick) = self.load_head();
        let archived_upto = head_tick - to + u64::from(head.is_sealed());
        let after_to = s.stamp().wrapping_sub(to & STAMP_MASK) & STAMP_MASK;
        if after_to < archived_upto {
            return false;
        }
        if slot
            .compare_exchange(s.0, s.with_count(0).0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.invalidate_base();
            return true;
        }
        false
    }

    /// The sealed sum for `tick`, the head's tick (the head is open there):
    /// the cached base if it is valid for `tick`, else summed and published.
    #[inline]
    fn base_for(&self, tick: u64) -> u64 {
        // Acquire, as in `WindowHead::base_valid_at`.
        let b = Bucket(self.hot.base.load(Ordering::Acquire));
        if b.is_open_at(tick) {
            return b.count();
        }
        self.publish_base(b, tick)
    }

    #[cold]
    #[inline(never)]
    fn publish_base(&self, seen: Bucket, tick: u64) -> u64 {
        let sum = self.sealed_sum(tick);
        if sum < COUNT_MAX {
            // Fails if the base changed since `seen` was loaded: in particular
            // if a rotation, roll-back or clearing invalidated it while the
            // slots were being summed, in which case this sum may be stale.
            // AcqRel: the release half pairs with the Acquire load in
            // `base_for`.
            let _ = self.hot.base.compare_exchange(
                seen.0,
                Bucket::new(tick, sum).0,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
        sum
    }

    /// Marks the cached base invalid (it is recomputed on the next admission).
    #[inline]
    fn invalidate_base(&self) {
        // Release: a thread that acquires the invalid base and then sums the
        // slots sees the slot write that preceded this store.
        self.hot.base.store(INVALID_BASE, Ordering::Release);
    }

    /// Sum of the sealed slots 1 to n-1 ticks older than `tick` (the head's
    /// tick).
    #[inline]
    fn sealed_sum(&self, tick: u64) -> u64 {
        let n = self.n();
        let mut sum = 0u64;
        for slot in self.all_slots() {
            let s = Bucket(slot.load(Ordering::Acquire));
            let age = s.age(tick);
            if age != 0 && age < n {
                sum = sum.saturating_add(s.count());
            }
        }
        sum
    }

    /// The count of tick `t` (not newer than the head), from the head or its
    /// slot, without changing anything.
    fn count_of(&self, head: Bucket, head_tick: u64, t: u64) -> u64 {
        if t == head_tick {
            return head.count();
        }
        let s = Bucket(self.slot_of(t).load(Ordering::Acquire));
        if s.age(t) == 0 {
            s.count()
        } else {
            0
        }
    }

    /// Counts of the ticks in the window at `tick`, oldest first, as
    /// `(tick, count)`; nothing if the head is a window or more behind.
    #[inline]
    fn buckets_at(&self, tick: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        let (head, head_tick) = self.load_head();
        let tick = tick.max(head_tick);
        let n = self.n();
        let oldest = tick.saturating_sub(n - 1);
        // Ticks after the head hold nothing yet; a head a window or more
        // behind `tick` has expired with everything before it.
        let end = if tick - head_tick < n {
            head_tick + 1
        } else {
            oldest
        };
        (oldest..end).map(move |t| (t, self.count_of(head, head_tick, t)))
    }

    /// Amount in the window at `now`, for usage reports and refusals. Never
    /// writes.
    ///
    /// Always summed from the buckets, never taken from the cached base: a
    /// base published in a race with a roll-back can be high by the amount
    /// rolled back until the next rotation (see [`Window::carry_base`]), which
    /// is harmless in an admission (it errs towards refusing) but would be a
    /// wrong report (the loom model of a roll-back racing a rotation catches
    /// exactly that).
    pub(crate) fn used(&self, now: Now) -> u64 {
        self.buckets_at(now.tick)
            .fold(0u64, |acc, (_, c)| acc.saturating_add(c))
    }

    /// How long until `amount` fits under `limit` if nothing else is recorded.
    ///
    /// `None` when it never will (`amount > limit`). Otherwise at most one
    /// window.
    #[cold]
    ///
    /// `used` is what the window holds at `now` if the caller already knows
    /// it (a refusal does); `None` reads it.
    pub(crate) fn retry_after(
        &self,
        now: Now,
        amount: u64,
        limit: u64,
        used: Option<u64>,
    ) -> Option<Duration> {
        if amount > limit {
            return None;
        }
        let mut used = used.unwrap_or_else(|| self.used(now));
        if used.saturating_add(amount) <= limit {
            return Some(Duration::ZERO);
        }
        // Buckets expire oldest first: tick `t` leaves the window when the
        // clock reaches tick `t + n`.
        let n = self.n();
        for (t, count) in self.buckets_at(now.tick) {
            used = used.saturating_sub(count);
            if used.saturating_add(amount) <= limit {
                let expires = (t + n).saturating_mul(self.bucket_nanos);
                return Some(Duration::from_nanos(expires.saturating_sub(now.nanos)));
            }
        }
        // Unreachable while amount <= limit (everything expires within a
        // window); answer with a full window rather than panic.
        Some(Duration::from_nanos(n * self.bucket_nanos))
    }
}
