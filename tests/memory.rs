//! At most 1 KiB per tenant, everything included (map entry, id, name,
//! trackers, windows, quotas), measured with a counting allocator at 100,000
//! tenants. The benchmark `benches/memory.rs` measures 10k, 100k and 1M.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};

use streambus_tenancy::{Manager, Quotas};

struct Counting;

static LIVE: AtomicI64 = AtomicI64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn at_most_1_kib_per_tenant_at_100k() {
    const N: usize = 100_000;
    let before = LIVE.load(Ordering::SeqCst);
    let m = Manager::new();
    for i in 0..N {
        // A realistic id and name: "tenant-000042", "Tenant 42 Inc."
        m.create_tenant(
            &format!("tenant-{i:06}"),
            &format!("Tenant {i} Inc."),
            Quotas::default(),
        )
        .unwrap();
    }
    // Use every tenant once so lazily built state is counted too.
    for i in (0..N).step_by(7) {
        m.enforce_produce_quota(&format!("tenant-{i:06}"), 100, 1)
            .unwrap();
    }
    let after = LIVE.load(Ordering::SeqCst);
    let per_tenant = (after - before) as f64 / N as f64;
    println!("{per_tenant:.1} bytes per tenant at {N} tenants");
    assert!(
        per_tenant <= 1024.0,
        "{per_tenant:.1} bytes per tenant exceeds 1 KiB"
    );
    assert_eq!(m.len(), N);
    drop(m);
}
