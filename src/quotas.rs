//! Quotas: the eleven limits of a tenant, their tiers and their validation.

use std::fmt;

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

/// Resource limits of one tenant. `-1` is unlimited, `0` allows nothing.
///
/// The field names are the seed's (`MaxBytesPerSecond` becomes
/// `max_bytes_per_second`). Rate quotas (`*_per_second`) are enforced over the
/// manager's sliding window; the count quotas are numbers held at once; storage
/// is compared with the usage the broker reports; retention is a plain ceiling.
///
/// # Examples
///
/// ```
/// use streambus_tenancy::Quotas;
///
/// // Start from a profile and override what differs.
/// let quotas = Quotas { max_connections: 20, ..Quotas::free_tier() };
/// assert!(quotas.validate().is_ok());
/// assert_eq!(Quotas { max_topics: -5, ..quotas }.validate().unwrap_err().to_string(),
///            "invalid quotas: max_topics must be -1 (unlimited) or at least 0, got -5");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "de::MapOnly<de::QuotasDe>")
)]
pub struct Quotas {
    /// Produce plus consume throughput, bytes per second.
    pub max_bytes_per_second: i64,
    /// Produce plus consume messages per second.
    pub max_messages_per_second: i64,
    /// Storage the tenant may occupy, bytes (as reported by the broker).
    pub max_storage_bytes: i64,
    /// Topics held at once.
    pub max_topics: i64,
    /// Partitions held at once, across all topics.
    pub max_partitions: i64,
    /// Concurrent connections.
    pub max_connections: i64,
    /// Concurrent producers.
    pub max_producers: i64,
    /// Concurrent consumers.
    pub max_consumers: i64,
    /// Consumer groups held at once.
    pub max_consumer_groups: i64,
    /// Requests per second (every produce, consume and other request).
    pub max_requests_per_second: i64,
    /// Longest retention a topic may be configured with, hours.
    pub max_retention_hours: i64,
}

/// The default profile (the seed's `DefaultQuotas()`): a moderate tenant.
///
/// | quota | value |
/// | --- | --- |
/// | bytes/s | 10 MiB |
/// | messages/s | 10,000 |
/// | storage | 100 GiB |
/// | topics / partitions | 100 / 1,000 |
/// | connections / producers / consumers | 100 / 50 / 100 |
/// | consumer groups | 50 |
/// | requests/s | 10,000 |
/// | retention | 168 h (7 days) |
impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            max_bytes_per_second: 10 * MIB,
            max_messages_per_second: 10_000,
            max_storage_bytes: 100 * GIB,
            max_topics: 100,
            max_partitions: 1_000,
            max_connections: 100,
            max_producers: 50,
            max_consumers: 100,
            max_consumer_groups: 50,
            max_requests_per_second: 10_000,
            max_retention_hours: 168,
        }
    }
}

impl Quotas {
    /// Every quota unlimited (`-1`): the seed's `UnlimitedQuotas()`.
    pub const fn unlimited() -> Quotas {
        Quotas {
            max_bytes_per_second: UNLIMITED,
            max_messages_per_second: UNLIMITED,
            max_storage_bytes: UNLIMITED,
            max_topics: UNLIMITED,
            max_partitions: UNLIMITED,
            max_connections: UNLIMITED,
            max_producers: UNLIMITED,
            max_consumers: UNLIMITED,
            max_consumer_groups: UNLIMITED,
            max_requests_per_second: UNLIMITED,
            max_retention_hours: UNLIMITED,
        }
    }

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

    /// The limit for one quota type.
    pub const fn get(&self, quota_type: QuotaType) -> i64 {
        match quota_type {
            QuotaType::BytesPerSecond => self.max_bytes_per_second,
            QuotaType::MessagesPerSecond => self.max_messages_per_second,
            QuotaType::RequestsPerSecond => self.max_requests_per_second,
            QuotaType::Storage => self.max_storage_bytes,
            QuotaType::Topics => self.max_topics,
            QuotaType::Partitions => self.max_partitions,
            QuotaType::Connections => self.max_connections,
            QuotaType::Producers => self.max_producers,
            QuotaType::Consumers => self.max_consumers,
            QuotaType::ConsumerGroups => self.max_consumer_groups,
            QuotaType::RetentionHours => self.max_retention_hours,
        }
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

/// The eleven kinds of quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum QuotaType {
    /// `max_bytes_per_second`.
    BytesPerSecond,
    /// `max_messages_per_second`.
    MessagesPerSecond,
    /// `max_requests_per_second`.
    RequestsPerSecond,
    /// `max_storage_bytes`.
    Storage,
    /// `max_topics`.
    Topics,
    /// `max_partitions`.
    Partitions,
    /// `max_connections`.
    Connections,
    /// `max_producers`.
    Producers,
    /// `max_consumers`.
    Consumers,
    /// `max_consumer_groups`.
    ConsumerGroups,
    /// `max_retention_hours`.
    RetentionHours,
}

impl QuotaType {
    /// Every quota type, in the order of the [`Quotas`] fields' checks.
    pub const ALL: [QuotaType; 11] = [
        QuotaType::BytesPerSecond,
        QuotaType::MessagesPerSecond,
        QuotaType::RequestsPerSecond,
        QuotaType::Storage,
        QuotaType::Topics,
        QuotaType::Partitions,
        QuotaType::Connections,
        QuotaType::Producers,
        QuotaType::Consumers,
        QuotaType::ConsumerGroups,
        QuotaType::RetentionHours,
    ];

    /// The name used in utilization maps, errors and metrics:
    /// `"bytes_per_second"`, `"messages_per_second"`, `"requests_per_second"`,
    /// `"storage"`, `"topics"`, `"partitions"`, `"connections"`, `"producers"`,
    /// `"consumers"`, `"consumer_groups"`, `"retention_hours"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            QuotaType::BytesPerSecond => "bytes_per_second",
            QuotaType::MessagesPerSecond => "messages_per_second",
            QuotaType::RequestsPerSecond => "requests_per_second",
            QuotaType::Storage => "storage",
            QuotaType::Topics => "topics",
            QuotaType::Partitions => "partitions",
            QuotaType::Connections => "connections",
            QuotaType::Producers => "producers",
            QuotaType::Consumers => "consumers",
            QuotaType::ConsumerGroups => "consumer_groups",
            QuotaType::RetentionHours => "retention_hours",
        }
    }

    /// The [`Quotas`] field that limits this type, e.g. `"max_storage_bytes"`.
    pub const fn field_name(self) -> &'static str {
        match self {
            QuotaType::BytesPerSecond => "max_bytes_per_second",
            QuotaType::MessagesPerSecond => "max_messages_per_second",
            QuotaType::RequestsPerSecond => "max_requests_per_second",
            QuotaType::Storage => "max_storage_bytes",
            QuotaType::Topics => "max_topics",
            QuotaType::Partitions => "max_partitions",
            QuotaType::Connections => "max_connections",
            QuotaType::Producers => "max_producers",
            QuotaType::Consumers => "max_consumers",
            QuotaType::ConsumerGroups => "max_consumer_groups",
            QuotaType::RetentionHours => "max_retention_hours",
        }
    }

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
        matches!(
            self,
            QuotaType::BytesPerSecond | QuotaType::MessagesPerSecond | QuotaType::RequestsPerSecond
        )
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
        rates_of(&self.whole.load())
    }

    /// Swaps `quotas` in; every call that starts after this returns sees them.
    pub(crate) fn store(&self, quotas: Quotas) {
        self.rates
            .write(rates_of(&quotas), || self.whole.store(quotas));
    }
}

fn rates_of(q: &Quotas) -> [i64; 3] {
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

    #[derive(serde::Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub(super) struct QuotasDe {
        #[serde(alias = "MaxBytesPerSecond")]
        max_bytes_per_second: i64,
        #[serde(alias = "MaxMessagesPerSecond")]
        max_messages_per_second: i64,
        #[serde(alias = "MaxStorageBytes")]
        max_storage_bytes: i64,
        #[serde(alias = "MaxTopics")]
        max_topics: i64,
        #[serde(alias = "MaxPartitions")]
        max_partitions: i64,
        #[serde(alias = "MaxConnections")]
        max_connections: i64,
        #[serde(alias = "MaxProducers")]
        max_producers: i64,
        #[serde(alias = "MaxConsumers")]
        max_consumers: i64,
        #[serde(alias = "MaxConsumerGroups")]
        max_consumer_groups: i64,
        #[serde(alias = "MaxRequestsPerSecond")]
        max_requests_per_second: i64,
        #[serde(alias = "MaxRetentionHours")]
        max_retention_hours: i64,
    }

    impl Default for QuotasDe {
        fn default() -> Self {
            let d = Quotas::default();
            QuotasDe {
                max_bytes_per_second: d.max_bytes_per_second,
                max_messages_per_second: d.max_messages_per_second,
                max_storage_bytes: d.max_storage_bytes,
                max_topics: d.max_topics,
                max_partitions: d.max_partitions,
                max_connections: d.max_connections,
                max_producers: d.max_producers,
                max_consumers: d.max_consumers,
                max_consumer_groups: d.max_consumer_groups,
                max_requests_per_second: d.max_requests_per_second,
                max_retention_hours: d.max_retention_hours,
            }
        }
    }

    impl TryFrom<QuotasDe> for Quotas {
        type Error = String;

        fn try_from(d: QuotasDe) -> Result<Quotas, String> {
            let q = Quotas {
                max_bytes_per_second: d.max_bytes_per_second,
                max_messages_per_second: d.max_messages_per_second,
                max_storage_bytes: d.max_storage_bytes,
                max_topics: d.max_topics,
                max_partitions: d.max_partitions,
                max_connections: d.max_connections,
                max_producers: d.max_producers,
                max_consumers: d.max_consumers,
                max_consumer_groups: d.max_consumer_groups,
                max_requests_per_second: d.max_requests_per_second,
                max_retention_hours: d.max_retention_hours,
            };
            q.validate().map_err(|e| match e {
                crate::Error::InvalidQuotas(m) => m,
                other => other.to_string(),
            })?;
            Ok(q)
        }
    }
}
