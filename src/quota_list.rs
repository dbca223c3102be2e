//! The one declaration of the quota types.
//!
//! [`quota_list!`] is invoked once, in `quotas.rs`, with one entry per quota
//! type. Every shape the code needs is derived from that entry: the
//! [`Quotas`](crate::Quotas) field and its default, the
//! [`QuotaType`](crate::QuotaType) variant with its names (snake_case, the
//! field's, the seed's Go name), kind, unit and description, the
//! [`Usage`](crate::Usage) field that measures it, and the serde input that
//! reads either name. The store's columns, the admin API's JSON and OpenAPI
//! schema, the metrics and the CLI's tables iterate over
//! [`QuotaType::ALL`](crate::QuotaType::ALL) and read these, so adding a
//! quota type is one entry here plus its enforcement.

/// Expands the quota table. An entry:
///
/// ```text
/// /// doc of the Quotas struct
/// struct Quotas;
///
/// /// doc of the Quotas field
/// Variant = "snake_name" {
///     field: max_field_name,          // the Quotas field
///     go: "MaxFieldName",             // the seed's Go name, read as an alias
///     kind: Rate,                     // a QuotaKind variant
///     unit: PerSecond("msg/s"),       // a QuotaUnit value
///     default: 10_000,                // Quotas::default()
///     describe: "Short description",  // OpenAPI, CLI help
///     usage: usage_field "doc",       // optional: the Usage field it limits
/// }
/// ```
macro_rules! quota_list {
    (
        $(#[doc = $qdoc:literal])*
        struct Quotas;

        $(
            $(#[doc = $doc:literal])*
            $variant:ident = $name:literal {
                field: $field:ident,
                go: $go:literal,
                kind: $kind:ident,
                unit: $unit:expr,
                default: $default:expr,
                describe: $describe:literal,
                $(usage: $ufield:ident $udoc:literal,)?
            }
        )*
    ) => {
        $(#[doc = $qdoc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[cfg_attr(
            feature = "serde",
            derive(serde::Serialize, serde::Deserialize),
            serde(try_from = "de::MapOnly<de::QuotasDe>")
        )]
        pub struct Quotas {
            $(
                $(#[doc = $doc])*
                pub $field: i64,
            )*
        }

        /// Every quota type, one variant per [`Quotas`] field.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        pub enum QuotaType {
            $(
                #[doc = concat!("`", stringify!($field), "`.")]
                #[cfg_attr(feature = "serde", serde(rename = $name))]
                $variant,
            )*
        }

        impl QuotaType {
            /// Every quota type, in declaration order (the order of the
            /// [`Quotas`] fields and of their checks).
            pub const ALL: [QuotaType; QuotaType::COUNT] = [$(QuotaType::$variant),*];

            /// How many quota types there are.
            pub const COUNT: usize = [$($name),*].len();

            /// The name used in utilization maps, errors and metrics, e.g.
            /// `"bytes_per_second"`, `"storage"`, `"consumer_groups"`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(QuotaType::$variant => $name,)*
                }
            }

            /// The [`Quotas`] field that limits this type, e.g.
            /// `"max_storage_bytes"`.
            pub const fn field_name(self) -> &'static str {
                match self {
                    $(QuotaType::$variant => stringify!($field),)*
                }
            }

            /// The seed's Go name of the field, e.g. `"MaxStorageBytes"`
            /// (accepted on input beside [`QuotaType::field_name`]).
            pub const fn go_name(self) -> &'static str {
                match self {
                    $(QuotaType::$variant => $go,)*
                }
            }

            /// What kind of limit this is.
            pub const fn kind(self) -> QuotaKind {
                match self {
                    $(QuotaType::$variant => QuotaKind::$kind,)*
                }
            }

            /// The unit of its limit and usage.
            pub const fn unit(self) -> QuotaUnit {
                match self {
                    $(QuotaType::$variant => $unit,)*
                }
            }

            /// Whether [`Usage`] measures this type (all but retention).
            #[allow(unreachable_patterns)]
            pub const fn has_usage(self) -> bool {
                match self {
                    $($(QuotaType::$variant => {
                        let _ = stringify!($ufield);
                        true
                    })?)*
                    _ => false,
                }
            }

            /// A short description for people, e.g. `"Topics held at once"`.
            pub const fn description(self) -> &'static str {
                match self {
                    $(QuotaType::$variant => $describe,)*
                }
            }
        }

        impl Default for Quotas {
            fn default() -> Self {
                Quotas {
                    $($field: $default,)*
                }
            }
        }

        impl Quotas {
            /// Every quota unlimited (`-1`): the seed's `UnlimitedQuotas()`.
            pub const fn unlimited() -> Quotas {
                Quotas {
                    $($field: UNLIMITED,)*
                }
            }

            /// The limit for one quota type.
            pub const fn get(&self, quota_type: QuotaType) -> i64 {
                match quota_type {
                    $(QuotaType::$variant => self.$field,)*
                }
            }

            /// Sets the limit for one quota type (unchecked: see
            /// [`Quotas::validate`]).
            pub fn set(&mut self, quota_type: QuotaType, limit: i64) {
                match quota_type {
                    $(QuotaType::$variant => self.$field = limit,)*
                }
            }

            /// Quotas whose every limit is `limit(quota_type)`.
            pub fn from_fn(mut limit: impl FnMut(QuotaType) -> i64) -> Quotas {
                Quotas {
                    $($field: limit(QuotaType::$variant),)*
                }
            }

            /// Every quota type with its limit, in [`QuotaType::ALL`] order.
            pub fn iter(&self) -> impl Iterator<Item = (QuotaType, i64)> + '_ {
                QuotaType::ALL.into_iter().map(move |q| (q, self.get(q)))
            }
        }

        /// A tenant's usage at one moment: one field per quota type that has
        /// one (retention has none). Rates are per second over the window.
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        #[cfg_attr(feature = "server", derive(utoipa::ToSchema), schema(as = UsageJson))]
        pub struct Usage {
            /// Whose usage this is.
            #[cfg_attr(feature = "server", schema(value_type = crate::server::schema::TenantId))]
            pub tenant_id: String,
            $($(
                #[doc = $udoc]
                pub $ufield: u64,
            )?)*
        }

        impl Usage {
            /// The usage quota `quota_type` limits; `None` for a type that
            /// has none (retention).
            #[allow(unreachable_patterns)]
            pub const fn get(&self, quota_type: QuotaType) -> Option<u64> {
                match quota_type {
                    $($(QuotaType::$variant => Some(self.$ufield),)?)*
                    _ => None,
                }
            }

            /// Sets the usage of `quota_type`; does nothing for a type that
            /// has none.
            #[allow(unreachable_patterns)]
            pub fn set(&mut self, quota_type: QuotaType, value: u64) {
                match quota_type {
                    $($(QuotaType::$variant => self.$ufield = value,)?)*
                    _ => {}
                }
            }
        }

        #[cfg(feature = "serde")]
        mod de_fields {
            //! The serde shadow of [`Quotas`](super::Quotas): every field
            //! optional (from `Quotas::default()`), the Go names as aliases,
            //! unknown names refused.

            /// Field by field, as read.
            #[derive(serde::Deserialize)]
            #[serde(default, deny_unknown_fields)]
            pub(super) struct QuotasDe {
                $(
                    #[serde(alias = $go)]
                    pub(super) $field: i64,
                )*
            }

            impl Default for QuotasDe {
                fn default() -> Self {
                    let d = super::Quotas::default();
                    QuotasDe {
                        $($field: d.$field,)*
                    }
                }
            }

            impl QuotasDe {
                /// The fields as read, unchecked.
                pub(super) fn into_quotas(self) -> super::Quotas {
                    super::Quotas {
                        $($field: self.$field,)*
                    }
                }
            }
        }
    };
}

pub(crate) use quota_list;
