//! One rate window (bytes; messages and requests unlimited) under any
//! sequence of admissions, checks, unchecked records and clock moves, on any
//! window shape and limit: the engine agrees with the exact model, and an
//! admission never leaves more than the limit in a window (checked here on a
//! ledger of its own, apart from the model).

#![no_main]

#[path = "../../tests/model/mod.rs"]
mod model;

mod draw;

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use streambus_tenancy::{Error, Quotas};

use model::diff::{Call, Harness, Op};

const MAX_OPS: usize = 400;

fn run(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let (window, buckets) = draw::geometry(u)?;
    let id = "w".to_string();
    let Some(mut h) = Harness::new(window, buckets, std::slice::from_ref(&id)) else {
        return Ok(());
    };
    let g = h.model.geometry;
    let (b, w) = (g.bucket_nanos, g.window_nanos());
    let limit = match u.int_in_range(0u8..=3)? {
        0 => u.int_in_range(0..=20)?,
        1 => *u.choose(&[1000, 1 << 20, model::BUCKET_MAX as i64, -1, -2, i64::MAX])?,
        _ => u.int_in_range(-2..=2000)?,
    };
    let create = Op::Create {
        id: id.clone(),
        name: "W".into(),
        quotas: Quotas {
            max_bytes_per_second: limit,
            ..Quotas::unlimited()
        },
    };
    h.step(&create);
    if h.manager.get_tenant(&id).is_err() {
        return Ok(()); // refused (checked against the model by `step`)
    }
    let quota = h
        .manager
        .get_tenant(&id)
        .unwrap()
        .quotas
        .max_bytes_per_second;
    let window_limit = (quota >= 0).then(|| g.limit(quota) as u128);
    // Ledger: (tick, amount) of everything the window counted, while the
    // clock has only moved forward.
    let mut ledger: Vec<(u64, u64)> = Vec::new();
    let mut monotonic = true;
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        let op = match u.int_in_range(0u8..=9)? {
            0..=3 => Op::Call {
                id: id.clone(),
                call: Call::Produce {
                    bytes: draw::amount(u)?,
                    messages: 0,
                },
            },
            4 => Op::Call {
                id: id.clone(),
                call: Call::Check {
                    bytes: draw::amount(u)?,
                    messages: 0,
                },
            },
            5 => Op::Call {
                id: id.clone(),
                call: Call::Record {
                    bytes: draw::amount(u)?,
                    messages: 0,
                },
            },
            _ => draw::clock(u, b, w)?,
        };
        let tick = h.model.now().tick;
        h.step(&op);
        match (&op, &h.last) {
            (Op::Rewind(n), _) if *n > 0 => monotonic = false,
            (
                Op::Call {
                    call: Call::Record { bytes, .. },
                    ..
                },
                Some(Ok(())),
            ) => {
                ledger.push((tick, *bytes));
            }
            (
                Op::Call {
                    call: Call::Produce { bytes, .. },
                    ..
                },
                Some(Ok(())),
            ) => {
                ledger.push((tick, *bytes));
                let in_window: u128 = ledger
                    .iter()
                    .filter(|(t, _)| *t + g.buckets > tick)
                    .map(|(_, a)| *a as u128)
                    .sum();
                if let (Some(l), true) = (window_limit, monotonic && *bytes > 0) {
                    assert!(
                        in_window <= l,
                        "window holds {in_window} > limit {l} after {op:?}"
                    );
                }
            }
            (Op::Call { .. }, Some(Err(Error::QuotaExceeded(e)))) if monotonic => {
                // A refusal never asks for more than a window's wait.
                if let Some(d) = e.retry_after {
                    assert!(
                        d.as_nanos() <= u128::from(w),
                        "retry_after {d:?} > window after {op:?}"
                    );
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
