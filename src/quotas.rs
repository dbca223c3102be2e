//! Quotas: the limits of a tenant (declared once, in the table below), their
//! tiers and their validation.

use std::fmt;

use crate::quota_list::quota_list;

use crate::rate_copy::RateCopy;
use crate::sync::{Snapshot, SwapCell};
use crate::window::COUNT_MAX;

/// The value of a quota field that means "no limit".
pub const UNLIMITED: i64 = -1;

/// Largest rate quota (per second) a window can enforce exactly: 2^39 - 1,
/// about 512 GiB/s. Larger rate quotas are refused by validation.
pub const MAX_RATE_QUOTA: i64 = COUNT_MAX as i64;

const KIB: i64 = 1024;
const MIB: i64 = 1024 * KIB;
const GIB: i64 = 1024 * MIB;

quota_list! {
    /// Resource limits of one tenant. `-1` is unlimited, `0` allows nothing.
    ///
    /// The field names are the seed's (`MaxBytesPerSecond` becomes
    /// `max_bytes_per_second`). Rate quotas are enforced over the manager's
    /// sliding window; the count quotas are numbers held at once; storage is
    /// compared with the usage the broker reports; retention is a plain
    /// ceiling. [`QuotaType`] names each field; [`Quotas::get`],
    /// [`Quotas::set`] and [`Quotas::iter`] reach them by type.
    ///
    /// `Quotas::default()` is the seed's `DefaultQuotas()`, a moderate tenant:
    ///
    /// | quota | value |
    /// | --- | --- |
    /// | bytes/s | 10 MiB |
    /// | messages/s | 10,000 |
    /// | requests/s | 10,000 |
    /// | storage | 100 GiB |
    /// | topics / partitions | 100 / 1,000 |
    /// | connections / producers / consumers | 100 / 50 / 100 |
    /// | consumer groups | 50 |
    /// | retention | 168 h (7 days) |
    /// | connections opened/s | unlimited |
    ///
    /// # Examples
    ///
    /// ```
    /// use streambus_tenancy::{QuotaType, Quotas};
    ///
    /// // Start from a profile and override what differs.
    /// let mut quotas = Quotas { max_connections: 20, ..Quotas::free_tier() };
    /// assert!(quotas.validate().is_ok());
    /// quotas.set(QuotaType::Topics, -5);
    /// assert_eq!(quotas.validate().unwrap_err().to_string(),
    ///            "invalid quotas: max_topics must be -1 (unlimited) or at least 0, got -5");
    /// ```
    struct Quotas;

    /// Produce plus consume throughput, bytes per second.
    BytesPerSecond = "bytes_per_second" {
        field: max_bytes_per_second,
        go: "MaxBytesPerSecond",
        kind: Rate,
        unit: QuotaUnit::BytesPerSecond,
        default: 10 * MIB,
        describe: "Produce plus consume bytes per second",
        usage: bytes_per_second "Produce plus consume bytes per second over the window.",
    }
    /// Produce plus consume messages per second.
    MessagesPerSecond = "messages_per_second" {
        field: max_messages_per_second,
        go: "MaxMessagesPerSecond",
        kind: Rate,
        unit: QuotaUnit::PerSecond("msg/s"),
        default: 10_000,
        describe: "Produce plus consume messages per second",
        usage: messages_per_second "Produce plus consume messages per second over the window.",
    }
    /// Requests per second (every produce, consume and other request).
    RequestsPerSecond = "requests_per_second" {
        field: max_requests_per_second,
        go: "MaxRequestsPerSecond",
        kind: Rate,
        unit: QuotaUnit::PerSecond("req/s"),
        default: 10_000,
        describe: "Requests per second",
        usage: requests_per_second "Requests per second over the window.",
    }
    /// Storage the tenant may occupy, bytes (as reported by the broker).
    Storage = "storage" {
        field: max_storage_bytes,
        go: "MaxStorageBytes",
        kind: Storage,
        unit: QuotaUnit::Bytes,
        default: 100 * GIB,
        describe: "Storage bytes",
        usage: storage_bytes "Storage last reported by the broker, bytes.",
    }
    /// Topics held at once.
    Topics = "topics" {
        field: max_topics,
        go: "MaxTopics",
        kind: Count,
        unit: QuotaUnit::Count,
        default: 100,
        describe: "Topics held at once",
        usage: topics "Topics held.",
    }
    /// Partitions held at once, across all topics.
    Partitions = "partitions" {
        field: max_partitions,
        go: "MaxPartitions",
        kind: Count,
        unit: QuotaUnit::Count,
        default: 1_000,
        describe: "Partitions held at once",
        usage: partitions "Partitions held.",
    }
    /// Concurrent connections.
    Connections = "connections" {
        field: max_connections,
        go: "MaxConnections",
        kind: Count,
        unit: QuotaUnit::Count,
        default: 100,
        describe: "Concurrent connections",
        usage: connections "Connections held.",
    }
    /// Concurrent producers.
    Producers = "producers" {
        field: max_producers,
        go: "MaxProducers",
        kind: Count,
        unit: QuotaUnit::Count,
        default: 50,
        describe: "Concurrent producers",
        usage: producers "Producers held.",
    }
    /// Concurrent consumers.
    Consumers = "consumers" {
        field: max_consumers,
        go: "MaxConsumers",
        kind: Count,
        unit: QuotaUnit::Count,
        default: 100,
        describe: "Concurrent consumers",
        usage: consumers "Consumers held.",
    }
    /// Consumer groups held at once.
    ConsumerGroups = "consumer_groups" {
        field: max_consumer_groups,
        go: "MaxConsumerGroups",
        kind: Count,
        unit: QuotaUnit::Count,
        default: 50,
        describe: "Consumer groups held at once",
        usage: consumer_groups "Consumer groups held.",
    }
    /// Longest retention a topic may be configured with, hours.
    RetentionHours = "retention_hours" {
        field: max_retention_hours,
        go: "MaxRetentionHours",
        kind: Ceiling,
        unit: QuotaUnit::Hours,
        default: 168,
        describe: "Longest retention, hours",
    }
    /// Connections opened per second (against reconnect storms; Kafka's
    /// KIP-612). Checked before the connection count, over the window.
    ConnectionCreationRate = "connection_creation_rate" {
        field: max_connection_creation_rate,
        go: "MaxConnectionCreationRate",
        kind: Rate,
        unit: QuotaUnit::PerSecond("conn/s"),
        default: UNLIMITED,
        describe: "Connections opened per second",
        usage: connection_creation_rate "Connections opened per second over the window.",
    }
}

/// What kind of limit a [`QuotaType`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QuotaKind {
    /// Per second, enforced over the manager's sliding window.
    Rate,
    /// A number held at once (acquired and released).
    Count,
    /// Bytes occupied, as the broker reports them.
    Storage,
    /// A ceiling on a configured value, with no usage.
    Ceiling,
}

/// The unit a [`QuotaType`]'s limit and usage are in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QuotaUnit {
    /// Bytes.
    Bytes,
    /// Bytes per second.
    BytesPerSecond,
    /// Things per second, with the symbol people read, e.g. `"msg/s"`.
    PerSecond(&'static str),
    /// A plain count.
    Count,
    /// Hours.
    Hours,
}

impl Quotas {
    /// The seed's free tier: 1 MiB/s, 1,000 msg/s, 10 GiB, 10 topics,
    /// 50 partitions, 10 connections, 5 producers, 10 consumers.
    ///
    /// The seed leaves consumer groups, requests/s and retention unset, which
    /// in Go means 0 ("nothing allowed") and would block every request; here
    /// they take the [`Default`] values.
    pub fn free_tier() -> Quotas {
        Quotas {
            max_bytes_per_second: MIB,
            max_messages_per_second: 1_000,
            max_storage_bytes: 10 * GIB,
            max_topics: 10,
            max_partitions: 50,
            max_connections: 10,
            max_producers: 5,
            max_consumers: 10,
            ..Quotas::default()
        }
    }

    /// The seed's pro tier: 50 MiB/s, 50,000 msg/s, 500 GiB, 500 topics,
    /// 5,000 partitions, 1,000 connections, 200 producers, 500 consumers;
    /// the unset fields take the [`Default`] values.
    pub fn pro_tier() -> Quotas {
        Quotas {
            max_bytes_per_second: 50 * MIB,
            max_messages_per_second: 50_000,
            max_storage_bytes: 500 * GIB,
            max_topics: 500,
            max_partitions: 5_000,
            max_connections: 1_000,
            max_producers: 200,
            max_consumers: 500,
            ..Quotas::default()
        }
    }

    /// The seed's enterprise tier: [`Quotas::unlimited`].
    pub const fn enterprise_tier() -> Quotas {
        Quotas::unlimited()
    }

    /// Checks every field: `-1` or at least `0`, and rate quotas at most
    /// [`MAX_RATE_QUOTA`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidQuotas`](crate::Error::InvalidQuotas) naming the first
    /// bad field (by its snake_case name) and what is allowed.
    pub fn validate(&self) -> Result<(), crate::Error> {
        for q in QuotaType::ALL {
            let v = self.get(q);
            if v < UNLIMITED {
                return Err(crate::Error::InvalidQuotas(format!(
                    "{} must be -1 (unlimited) or at least 0, got {v}",
                    q.field_name()
                )));
            }
            if q.is_rate() && v > MAX_RATE_QUOTA {
                return Err(crate::Error::InvalidQuotas(format!(
                    "{} must be -1 (unlimited) or at most {MAX_RATE_QUOTA}, got {v}",
                    q.field_name()
                )));
            }
        }
        Ok(())
    }
}

impl QuotaType {
    /// Position in [`QuotaType::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Parses [`QuotaType::as_str`] back.
    pub fn parse(name: &str) -> Option<QuotaType> {
        QuotaType::ALL.into_iter().find(|q| q.as_str() == name)
    }

    /// Whether this quota is a per-second rate enforced over the window.
    pub const fn is_rate(self) -> bool {
        matches!(self.kind(), QuotaKind::Rate)
    }
}

impl fmt::Display for QuotaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The cell a tracker's quotas live in: swapped whole, read whole.
///
/// The quotas themselves sit in a [`SwapCell`] (an `ArcSwap`). Beside them,
/// the three rate quotas are copied under a sequence lock ([`RateCopy`]), so
/// that the produce path reads the limits it needs with four plain loads
/// instead of an `ArcSwap` guard; a reader that finds a write under way
/// takes them from the `ArcSwap`, which is whole by construction.
#[derive(Debug)]
pub(crate) struct QuotaCell {
    whole: SwapCell<Quotas>,
    rates: RateCopy,
}

/// A snapshot of a tracker's quotas.
pub(crate) type QuotasSnapshot = Snapshot<Quotas>;

impl QuotaCell {
    pub(crate) fn new(quotas: Quotas) -> QuotaCell {
        QuotaCell {
            rates: RateCopy::new(rates_of(&quotas)),
            whole: SwapCell::new(quotas),
        }
    }

    /// A consistent snapshot of every quota; never allocates.
    #[inline]
    pub(crate) fn load(&self) -> QuotasSnapshot {
        self.whole.load()
    }

    /// A copy of the quotas in force.
    pub(crate) fn get(&self) -> Quotas {
        self.whole.get()
    }

    /// The three rate quotas (bytes, messages, requests per second) of one
    /// version of the quotas, read without a guard.
    #[inline]
    pub(crate) fn rates(&self) -> [i64; 3] {
        match self.rates.read() {
            Some(rates) => rates,
            None => self.rates_whole(),
        }
    }

    #[cold]
    #[inline(never)]
    fn rates_whole(&self) -> [i64; 3] {
        // A write is under way. Under a cluster sync the copy may hold caps
        // the source of truth does not, so wait a little for the writer (a
        // few stores) before deciding on the quotas themselves.
        for _ in 0..SPINS_BEFORE_FALLBACK {
            crate::sync::spin_loop();
            if let Some(rates) = self.rates.read() {
                return rates;
            }
        }
        rates_of(&self.whole.load())
    }

    /// Swaps `quotas` in; every call that starts after this returns sees them.
    pub(crate) fn store(&self, quotas: Quotas) {
        self.store_with(quotas, rates_of);
    }

    /// Swaps `quotas` in, with the rates `rates` computes from them (caps
    /// of a cluster sync) in the hot path's copy.
    pub(crate) fn store_with(&self, quotas: Quotas, rates: impl FnOnce(&Quotas) -> [i64; 3]) {
        self.rates.write(|| {
            self.whole.store(quotas);
            rates(&quotas)
        });
    }

    /// Replaces the hot path's rates with those `rates` computes from the
    /// quotas in force, leaving the quotas themselves as they are.
    pub(crate) fn recap(&self, rates: impl FnOnce(&Quotas) -> [i64; 3]) {
        self.rates.write(|| rates(&self.whole.load()));
    }
}

/// Reads of the hot path's copy a reader retries, finding a write under way,
/// before it reads the source of truth (none under loom, whose models would
/// otherwise explore every retry).
const SPINS_BEFORE_FALLBACK: usize = if cfg!(quota_loom) { 0 } else { 64 };

/// The three rate quotas, in window order (bytes, messages, requests).
pub(crate) fn rates_of(q: &Quotas) -> [i64; 3] {
    [
        q.max_bytes_per_second,
        q.max_messages_per_second,
        q.max_requests_per_second,
    ]
}

#[cfg(feature = "serde")]
mod de {
    //! JSON/TOML input for [`Quotas`]: snake_case names or the seed's Go names
    //! (`MaxBytesPerSecond`, ...), omitted fields from `Quotas::default()`,
    //! unknown names and values below -1 refused with the field named.

    use std::fmt;
    use std::marker::PhantomData;

    pub(super) use super::de_fields::QuotasDe;
    use super::Quotas;

    /// Accepts only a map (a JSON object, a TOML table), never a sequence:
    /// serde's derive would otherwise fill the fields by position from an
    /// array, so `[1048576, 10]` would load with no field name in sight.
    pub(super) struct MapOnly<T>(T);

    impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for MapOnly<T> {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Visitor<T>(PhantomData<T>);
            impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Visitor<T> {
                type Value = MapOnly<T>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an object of quota fields, e.g. {\"max_connections\": 100}")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    map: A,
                ) -> Result<Self::Value, A::Error> {
                    T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(MapOnly)
                }
            }
            d.deserialize_map(Visitor(PhantomData))
        }
    }

    impl TryFrom<MapOnly<QuotasDe>> for Quotas {
        type Error = String;

        fn try_from(m: MapOnly<QuotasDe>) -> Result<Quotas, String> {
            Quotas::try_from(m.0)
        }
    }

    impl TryFrom<QuotasDe> for Quotas {
        type Error = String;

        fn try_from(d: QuotasDe) -> Result<Quotas, String> {
            let q = d.into_quotas();
            q.validate().map_err(|e| match e {
                crate::Error::InvalidQuotas(m) => m,
                other => other.to_string(),
            })?;
            Ok(q)
        }
    }
}
