//! Lock-free multi-tenancy for message brokers.
//!
//! `streambus-tenancy` gives a broker tenants with quotas, enforced on every
//! produce and fetch, with usage you can watch. It is the StreamBus
//! multi-tenancy design (tenant store, per-tenant quota trackers, a manager;
//! eleven quota types (plus a twelfth, the connection-creation rate) with
//! `-1` for unlimited; sliding-window rate limits of
//! 10 buckets of 100 ms; Active/Suspended/Deleted lifecycle) rebuilt without
//! locks on the enforcement path.
//!
//! # Usage
//!
//! ```
//! use streambus_tenancy::{Error, Manager, QuotaType, Quotas};
//!
//! let manager = Manager::new();
//! manager.create_tenant("acme-corp", "ACME Corporation", Quotas {
//!     max_bytes_per_second: 10 * 1024 * 1024, // 10 MiB/s
//!     max_messages_per_second: 10_000,
//!     max_connections: 500,
//!     ..Quotas::default()
//! })?;
//!
//! // Every produce request: one call, no lock, no allocation.
//! manager.enforce_produce_quota("acme-corp", 1024, 1)?;
//!
//! // Connections as RAII permits: released when dropped, so counts never drift.
//! let conn = manager.acquire_connection("acme-corp")?;
//! assert_eq!(manager.get_usage("acme-corp")?.connections, 1);
//! drop(conn);
//!
//! // A broker caches the tracker per connection and skips the map lookup.
//! let tracker = manager.get_tracker("acme-corp")?;
//! if let Err(Error::QuotaExceeded(e)) = tracker.enforce_produce(1 << 30, 1) {
//!     assert_eq!(e.quota_type, QuotaType::BytesPerSecond);
//! }
//! # Ok::<(), Error>(())
//! ```
//!
//! After a broker restarts, the counts it holds (topics, partitions,
//! consumer groups, producers, consumers, connections) and its storage read
//! 0 in a new engine; it re-reports them once, before it accepts traffic,
//! with [`Manager::restore_usage`], which skips the limit check:
//!
//! ```
//! use streambus_tenancy::{HeldUsage, Manager, Quotas};
//!
//! let manager = Manager::new();
//! manager.create_tenant("acme-corp", "ACME Corporation", Quotas { max_topics: 2, ..Quotas::default() })?;
//! // Three topics on disk, though the quota now allows two: still held.
//! let on_disk = HeldUsage { topics: 3, partitions: 24, storage_bytes: 5 << 30, ..HeldUsage::default() };
//! manager.restore_usage("acme-corp", &on_disk)?;
//! assert!(manager.enforce_topic_quota("acme-corp", 8).is_err()); // over the limit
//! manager.release_topic("acme-corp", 8);
//! manager.release_topic("acme-corp", 8);
//! manager.enforce_topic_quota("acme-corp", 8)?; // back below it
//! # Ok::<(), streambus_tenancy::Error>(())
//! ```
//!
//! Time-dependent behaviour is tested with a mock clock:
//!
//! ```
//! use std::time::Duration;
//! use streambus_tenancy::{Manager, Quotas};
//!
//! let (clock, mock) = quanta::Clock::mock();
//! let m = Manager::builder().clock(clock).build();
//! m.create_tenant("t", "T", Quotas { max_bytes_per_second: 1000, ..Quotas::unlimited() })?;
//! m.enforce_produce_quota("t", 1000, 1)?;
//! let refused = m.enforce_produce_quota("t", 1, 1).unwrap_err();
//! let wait = refused.as_quota_error().unwrap().retry_after.unwrap();
//! mock.increment(wait);
//! m.enforce_produce_quota("t", 1, 1)?; // admitted exactly when promised
//! # Ok::<(), streambus_tenancy::Error>(())
//! ```
//!
//! Throttle mode answers like a Kafka broker instead of refusing:
//! [`Manager::throttle_produce_quota`] (and `throttle_consume_quota`, and the
//! same on [`QuotaTracker`]) records the call always and returns how long to
//! hold the client off, zero within the quotas, at most
//! [`ManagerBuilder::max_throttle`] (30 s by default).
//!
//! # Consistency
//!
//! - A count quota (connections, producers, consumers, consumer groups,
//!   topics, partitions) is admitted by compare-and-swap: neither the number
//!   held nor any number a concurrent `get_usage` reads ever exceeds the limit.
//! - A rate window (bytes/s, messages/s, requests/s) admits a call only if the
//!   window plus the call fits, decided and published by one compare-exchange:
//!   under any interleaving the window never holds more than its limit.
//! - Produce and consume are all-or-nothing across bytes, messages and
//!   requests: a refused call leaves nothing recorded.
//! - Each call reads the tenant's quotas once, so it sees the old or the new
//!   quotas of a concurrent update whole, never a mix.
//! - `restore_usage` sets each held count with one store, without the limit
//!   check: an acquire or release racing it lands before it (and is
//!   overwritten) or after it (and applies to the restored value); a count
//!   restored over its limit refuses acquires until releases bring it below.
//!   Releases never take a count below 0.
//! - Once `suspend_tenant` or `delete_tenant` returns, no later admission on
//!   that tenant succeeds; handles held across a delete never touch a tenant
//!   re-created with the same id.
//!
//! These are proven by loom models over the engine's own code
//! (`loom-tests/`) and by bounded multi-threaded stress tests (`tests/`); see
//! `ARCHITECTURE.md` for the invariant-to-proof table.
//!
//! # Performance
//!
//! Enforcement by id is a foldhash of the id, one `papaya` lookup under an
//! epoch guard, the three rate limits from a sequence-locked copy of the
//! quotas (plain loads; the `arc-swap` cell stays the source of truth), one
//! clock read and, per rate window, three loads (head, epoch, the cached sum
//! of its sealed slots) and one compare-exchange. The first call of a new
//! 100 ms bucket (the common case for a tenant touched less often than
//! that) also rotates each window in one pass: seal, archive into a slot held
//! inline in the tracker, open, carry the cached sum, admit.
//! Nothing is allocated on admission or refusal. A tenant costs well under
//! 1 KiB, everything included. `BENCHMARKS.md` has the numbers.
//!
//! # Features
//!
//! - `serde` (default): `Serialize`/`Deserialize` for the data types;
//!   `Quotas` also reads the seed's Go field names.
//! - `cli` (default): the `streambus-tenancy` binary. A broker embedding the
//!   engine can use `default-features = false, features = ["serde"]`.
//! - `server` (default): [`server`], the admin HTTP API (axum) over a
//!   durable SQLite store, Prometheus metrics and alerts, and the binary's
//!   `serve` and `tenants` commands.

#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]
#![forbid(unsafe_code)]

mod clock;
#[cfg_attr(not(feature = "cluster"), allow(dead_code))]
mod cluster_hooks;
mod counter;
mod error;
#[cfg(quota_loom)]
pub mod loom_api;
mod manager;
mod permit;
mod quota_list;
mod quotas;
mod rate_copy;
mod registry;
mod sync;
mod tenant;
mod throttle;
mod tracker;
mod window;

#[cfg(feature = "server")]
pub mod server;

pub use error::{Error, QuotaError};
pub use manager::{Manager, ManagerBuilder, NewTenant, TenantUpdate};
pub use permit::Permit;
pub use quotas::{QuotaKind, QuotaType, QuotaUnit, Quotas, Usage, MAX_RATE_QUOTA, UNLIMITED};
pub use tenant::{
    validate_name, validate_tenant_id, HeldUsage, Tenant, TenantPage, TenantStats, TenantStatus,
    MAX_NAME_LEN, MAX_TENANT_ID_LEN,
};
pub use tracker::{QuotaTracker, TenantCounters};

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
