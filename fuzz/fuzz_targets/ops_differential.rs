//! The engine against the reference model (`tests/model`), driven by any
//! sequence of operations the fuzzer invents: every answer and every reading
//! after every step must agree.

#![no_main]

#[path = "../../tests/model/mod.rs"]
mod model;

mod draw;

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;

use model::diff::{invalid_ids, valid_ids, Harness};

const MAX_OPS: usize = 200;

fn run(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let (window, buckets) = draw::geometry(u)?;
    let mut watched = valid_ids();
    watched.extend(invalid_ids().into_iter().take(2));
    let Some(mut h) = Harness::new(window, buckets, &watched) else {
        return Ok(());
    };
    let b = h.model.geometry.bucket_nanos;
    let w = h.model.geometry.window_nanos();
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        let op = draw::op(u, b, w)?;
        h.step(&op);
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
