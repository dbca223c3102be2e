//! Drawing test inputs from the fuzzer's bytes, weighted towards the edges:
//! 0, the limit and one either side, 2^39-1 and beyond, `u64::MAX`; ids and
//! names just inside and just outside their limits; clock moves of 0, 1 ns,
//! a bucket and one either side, a window, an hour, 2^24 buckets, backwards.

#![allow(dead_code)]

use std::time::Duration;

use arbitrary::{Result, Unstructured};
use streambus_tenancy::{QuotaType, Quotas, TenantStatus, MAX_RATE_QUOTA};

use crate::model::diff::{invalid_ids, names, valid_ids, Call, Op};
use crate::model::{Held, EDGE_AMOUNTS, ROUND_AMOUNTS};

/// A window and bucket count: a known shape, or any numbers at all.
pub fn geometry(u: &mut Unstructured<'_>) -> Result<(Duration, usize)> {
    let s = Duration::from_secs;
    let ms = Duration::from_millis;
    Ok(match u.int_in_range(0u8..=15)? {
        0..=7 => (s(1), 10),
        8 => (s(1), 1),
        9 => (ms(100), 10),
        10 => (s(2), 8),
        11 => (ms(1), 1000),
        12 => (s(3600), 1024),
        13 => *u.choose(&[
            (s(1), 0),
            (s(1), 3),
            (s(1), 1025),
            (s(7200), 10),
            (ms(1), 1001),
        ])?,
        _ => (
            Duration::from_nanos(u.int_in_range(0..=8_000_000_000_000)?),
            u.int_in_range(0..=1100)?,
        ),
    })
}

pub fn amount(u: &mut Unstructured<'_>) -> Result<u64> {
    Ok(match u.int_in_range(0u8..=10)? {
        0..=5 => u.int_in_range(0..=12)?,
        6 | 7 => *u.choose(&ROUND_AMOUNTS)?,
        8 => *u.choose(&EDGE_AMOUNTS)?,
        _ => u.arbitrary()?,
    })
}

pub fn quota_value(u: &mut Unstructured<'_>) -> Result<i64> {
    Ok(match u.int_in_range(0u8..=40)? {
        0..=9 => -1,
        10..=29 => u.int_in_range(0..=12)?,
        30..=35 => *u.choose(&[100, 1000, 10_000])?,
        36 | 37 => *u.choose(&[MAX_RATE_QUOTA - 1, MAX_RATE_QUOTA])?,
        38 => *u.choose(&[-2, i64::MIN, MAX_RATE_QUOTA + 1, i64::MAX])?,
        _ => u.arbitrary()?,
    })
}

pub fn quotas(u: &mut Unstructured<'_>) -> Result<Quotas> {
    Ok(match u.int_in_range(0u8..=9)? {
        0 => Quotas::default(),
        1 => Quotas::free_tier(),
        2 => Quotas::unlimited(),
        _ => {
            let mut q = Quotas::unlimited();
            for t in QuotaType::ALL {
                q.set(t, quota_value(u)?);
            }
            q
        }
    })
}

pub fn id(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.int_in_range(0u8..=15)? {
        0..=11 => ["a", "b"][usize::from(u.arbitrary::<bool>()?)].to_string(),
        12 | 13 => u.choose(&valid_ids())?.clone(),
        14 => u.choose(&invalid_ids())?.clone(),
        _ => u.arbitrary::<String>()?,
    })
}

pub fn name(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.int_in_range(0u8..=9)? {
        0..=6 => "A".to_string(),
        7 | 8 => u.choose(&names())?.clone(),
        _ => u.arbitrary::<String>()?,
    })
}

pub fn held(u: &mut Unstructured<'_>) -> Result<Held> {
    Ok(*u.choose(&Held::ALL)?)
}

pub fn partitions(u: &mut Unstructured<'_>) -> Result<u32> {
    Ok(match u.int_in_range(0u8..=4)? {
        0..=3 => u.int_in_range(0..=5)?,
        _ => *u.choose(&[100, u32::MAX - 1, u32::MAX])?,
    })
}

pub fn call(u: &mut Unstructured<'_>) -> Result<Call> {
    let two = |u: &mut Unstructured<'_>| Ok::<_, arbitrary::Error>((amount(u)?, amount(u)?));
    // New kinds are appended at the end, so every input of the committed
    // corpus still decodes to a valid sequence.
    Ok(match u.int_in_range(0u8..=34)? {
        0..=7 => {
            let (bytes, messages) = two(u)?;
            Call::Produce { bytes, messages }
        }
        8..=10 => {
            let (bytes, messages) = two(u)?;
            Call::Consume { bytes, messages }
        }
        11..=13 => Call::Request,
        14 | 15 => {
            let (bytes, messages) = two(u)?;
            Call::Check { bytes, messages }
        }
        16 | 17 => {
            let (bytes, messages) = two(u)?;
            Call::Record { bytes, messages }
        }
        18..=21 => Call::Acquire(held(u)?),
        22..=24 => Call::Release(held(u)?),
        25 | 26 => Call::Topic(partitions(u)?),
        27 => Call::ReleaseTopic(partitions(u)?),
        28 => Call::Storage(amount(u)?),
        29 => Call::UpdateStorage(amount(u)?),
        30 => Call::Retention(amount(u)?),
        31..=33 => {
            let (bytes, messages) = two(u)?;
            Call::ThrottleProduce { bytes, messages }
        }
        _ => {
            let (bytes, messages) = two(u)?;
            Call::ThrottleConsume { bytes, messages }
        }
    })
}

/// A clock move for buckets of `b` ns and windows of `w` ns.
pub fn clock(u: &mut Unstructured<'_>, b: u64, w: u64) -> Result<Op> {
    Ok(match u.int_in_range(0u8..=12)? {
        0..=7 => Op::Advance(*u.choose(&[0, 1, b - 1, b, b + 1, 2 * b, w - 1, w, w + 1, 3 * w])?),
        8 | 9 => Op::Advance(u.int_in_range(0..=3 * w)?),
        10 => Op::Advance(*u.choose(&[
            3_600_000_000_000,
            (1u64 << 24).saturating_mul(b),
            ((1u64 << 24) - 1).saturating_mul(b),
            ((1u64 << 24) + 1).saturating_mul(b),
            u64::MAX,
        ])?),
        11 => Op::Advance(u.arbitrary()?),
        _ => Op::Rewind(*u.choose(&[1, b, w, u64::MAX])?),
    })
}

pub fn op(u: &mut Unstructured<'_>, b: u64, w: u64) -> Result<Op> {
    Ok(match u.int_in_range(0u8..=49)? {
        0..=2 => Op::Create {
            id: id(u)?,
            name: name(u)?,
            quotas: quotas(u)?,
        },
        3 => Op::Restore {
            id: id(u)?,
            name: name(u)?,
            quotas: quotas(u)?,
            status: *u.choose(&[
                TenantStatus::Active,
                TenantStatus::Suspended,
                TenantStatus::Deleted,
            ])?,
        },
        4 | 5 => Op::Update {
            id: id(u)?,
            name: if u.arbitrary()? { Some(name(u)?) } else { None },
            quotas: if u.arbitrary()? {
                Some(quotas(u)?)
            } else {
                None
            },
        },
        6 => Op::Delete(id(u)?),
        7 => Op::Suspend(id(u)?),
        8 => Op::Activate(id(u)?),
        9..=28 => Op::Call {
            id: id(u)?,
            call: call(u)?,
        },
        29 | 30 => Op::Permit {
            id: id(u)?,
            kind: held(u)?,
        },
        31 | 32 => Op::DropPermit(u.arbitrary()?),
        33 | 34 => Op::GetTracker(id(u)?),
        35..=40 => Op::OnTracker {
            index: u.arbitrary()?,
            call: call(u)?,
        },
        _ => clock(u, b, w)?,
    })
}
