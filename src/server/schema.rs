//! The JSON Schemas of the values the admin API checks, built from the
//! constants and rules it checks them with, so that the OpenAPI document
//! states what the server accepts and nothing else.
//!
//! Lengths are in characters on both sides: JSON Schema's `maxLength` counts
//! characters, and so do the checks. The tenant id and the control
//! characters are regular expressions that the tests below compare with
//! the checks, character by character.
//!
//! One rule is wider than its schema: a quota field may also be given by
//! the seed's Go name (`MaxBytesPerSecond`). The schema names the
//! snake_case fields only, so that every body it allows is accepted.
//!
//! Each schema is a named component of the document (`TenantId`,
//! `TenantName`, ...), referenced wherever the value appears, in requests
//! and answers alike. `Tier` lists the built-in tiers here;
//! [`with_tiers`] puts a server's own in its place.

use std::borrow::Cow;

use utoipa::openapi::schema::{
    AdditionalProperties, KnownFormat, Object, ObjectBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::{OpenApi, RefOr};
use utoipa::{PartialSchema, ToSchema};

use super::admin::{
    MAX_DESCRIPTION_LEN, MAX_METADATA_ENTRIES, MAX_METADATA_KEY_LEN, MAX_METADATA_VALUE_LEN,
};
use super::config::Tiers;
use crate::Quotas;
use crate::{QuotaType, MAX_NAME_LEN, MAX_RATE_QUOTA, MAX_TENANT_ID_LEN, UNLIMITED};

/// The characters [`validate_tenant_id`](crate::validate_tenant_id)
/// admits, as the body of a regular expression class.
const ID_CHARS: &str = "A-Za-z0-9._-";

/// The characters [`char::is_control`] names (Unicode's `Cc`), as the body
/// of a regular expression class.
const CONTROL_CHARS: &str = r"\u0000-\u001F\u007F-\u009F";

/// The tenant id rule as a regular expression: the lookahead refuses `.`
/// and `..`.
fn tenant_id_pattern() -> String {
    format!(r"^(?!\.\.?$)[{ID_CHARS}]{{1,{MAX_TENANT_ID_LEN}}}$")
}

/// Text without control characters, as a regular expression.
fn no_control_pattern() -> String {
    format!("^[^{CONTROL_CHARS}]*$")
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// A tenant id, as [`validate_tenant_id`](crate::validate_tenant_id)
/// checks it.
pub(crate) fn tenant_id() -> Object {
    string()
        .min_length(Some(1))
        .max_length(Some(MAX_TENANT_ID_LEN))
        .pattern(Some(tenant_id_pattern()))
        .description(Some(format!(
            "A tenant id: 1 to {MAX_TENANT_ID_LEN} characters of A-Z a-z 0-9 . _ -, \
             other than . and .. (which a URL path cannot carry)"
        )))
        .build()
}

/// A tenant name, as [`validate_name`](crate::validate_name) checks it.
fn name() -> Object {
    string()
        .min_length(Some(1))
        .max_length(Some(MAX_NAME_LEN))
        .pattern(Some(no_control_pattern()))
        .description(Some(format!(
            "A display name: 1 to {MAX_NAME_LEN} characters, no control characters"
        )))
        .build()
}

/// A tenant description, as the admin path checks it.
fn description() -> Object {
    string()
        .max_length(Some(MAX_DESCRIPTION_LEN))
        .description(Some(format!(
            "Free text: at most {MAX_DESCRIPTION_LEN} characters"
        )))
        .build()
}

/// A tenant's metadata, as the admin path checks it.
fn metadata() -> Object {
    let key = string()
        .min_length(Some(1))
        .max_length(Some(MAX_METADATA_KEY_LEN))
        .pattern(Some(no_control_pattern()));
    let value = string().max_length(Some(MAX_METADATA_VALUE_LEN));
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .max_properties(Some(MAX_METADATA_ENTRIES))
        .property_names(Some(key))
        .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(value.into()))))
        .description(Some(format!(
            "Operator labels: at most {MAX_METADATA_ENTRIES} entries; keys of 1 to \
             {MAX_METADATA_KEY_LEN} characters without control characters, values of at most \
             {MAX_METADATA_VALUE_LEN} characters"
        )))
        .build()
}

/// The names of `tiers`.
fn tier(tiers: &Tiers) -> Object {
    string()
        .enum_values(Some(tiers.names()))
        .description(Some("A tier of this server's configuration"))
        .build()
}

/// The largest value of a quota that [`Quotas::validate`](crate::Quotas::validate)
/// accepts.
pub(crate) fn quota_max(q: QuotaType) -> i64 {
    if q.is_rate() {
        MAX_RATE_QUOTA
    } else {
        i64::MAX
    }
}

/// One quota field, as [`Quotas::validate`](crate::Quotas::validate)
/// checks it.
fn quota(q: QuotaType) -> Object {
    let max = quota_max(q);
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(UNLIMITED))
        .maximum(Some(max))
        .description(Some(format!(
            "{}: {UNLIMITED} is unlimited, 0 allows nothing; at most {max}",
            q.description()
        )))
        .build()
}

/// Every quota field; all `required` when `whole`.
fn quotas(whole: bool) -> ObjectBuilder {
    QuotaType::ALL
        .into_iter()
        .fold(ObjectBuilder::new().schema_type(Type::Object), |o, q| {
            let o = o.property(q.field_name(), quota(q));
            if whole {
                o.required(q.field_name())
            } else {
                o
            }
        })
}

impl PartialSchema for Quotas {
    fn schema() -> RefOr<Schema> {
        quotas(true)
            .description(Some(format!(
                "A tenant's quotas: {UNLIMITED} is unlimited, 0 allows nothing"
            )))
            .build()
            .into()
    }
}

impl ToSchema for Quotas {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("QuotasJson")
    }
}

/// Declares a component of the document: a type that only names a schema.
macro_rules! component {
    ($(#[$doc:meta])* $ty:ident = $schema:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub(crate) struct $ty;

        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                Schema::Object($schema).into()
            }
        }

        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($ty))
            }
        }
    };
}

component!(
    /// A tenant id.
    TenantId = tenant_id()
);
component!(
    /// A tenant's display name.
    TenantName = name()
);
component!(
    /// A tenant's description.
    TenantDescription = description()
);
component!(
    /// A tenant's metadata.
    TenantMetadata = metadata()
);
component!(
    /// A tier name; [`with_tiers`] lists a server's own.
    Tier = tier(&Tiers::default())
);
component!(
    /// Quota fields to set: any subset, by their snake_case names. The
    /// seed's Go names are accepted too (one name per field) but left out
    /// here, so that the schema allows no body the server refuses.
    QuotasPatch = quotas(false)
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .description(Some(
            "Quota fields to set, any subset; fields left out keep their base value. \
             The seed's Go names (MaxBytesPerSecond, ...) are accepted too, one name per field.",
        ))
        .build()
);

/// `doc` with `Tier` listing the tiers of `tiers`.
pub(crate) fn with_tiers(mut doc: OpenApi, tiers: &Tiers) -> OpenApi {
    let components = doc.components.get_or_insert_with(Default::default);
    components.schemas.insert(
        Tier::name().into_owned(),
        Schema::Object(tier(tiers)).into(),
    );
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{validate_name, validate_tenant_id};

    /// Whether `c` is in a regular expression class body of single
    /// characters, `a-z` ranges and `\uXXXX` escapes.
    fn in_class(class: &str, c: char) -> bool {
        let mut items = Vec::new();
        let mut rest = class;
        while let Some(first) = rest.chars().next() {
            let (item, tail) = match rest.strip_prefix(r"\u") {
                Some(hex) => {
                    let code = u32::from_str_radix(&hex[..4], 16).unwrap();
                    (char::from_u32(code).unwrap(), &hex[4..])
                }
                None => (first, &rest[first.len_utf8()..]),
            };
            items.push(item);
            rest = tail;
        }
        let mut i = 0;
        while i < items.len() {
            if i + 2 < items.len() && items[i + 1] == '-' {
                if (items[i]..=items[i + 2]).contains(&c) {
                    return true;
                }
                i += 3;
            } else {
                if items[i] == c {
                    return true;
                }
                i += 1;
            }
        }
        false
    }

    fn every_char() -> impl Iterator<Item = char> {
        (0..=0x10FFFF).filter_map(char::from_u32)
    }

    /// The documented id pattern admits exactly the characters, lengths
    /// and dot-only ids that `validate_tenant_id` admits.
    #[test]
    fn the_id_pattern_is_the_id_rule() {
        for c in every_char() {
            assert_eq!(
                in_class(ID_CHARS, c),
                validate_tenant_id(&format!("a{c}")).is_ok(),
                "{c:?}"
            );
        }
        // The pattern's quantifier, lookahead and the schema's lengths.
        assert!(tenant_id_pattern().ends_with(&format!("]{{1,{MAX_TENANT_ID_LEN}}}$")));
        assert!(tenant_id_pattern().starts_with(r"^(?!\.\.?$)["));
        let doc = serde_json::to_value(tenant_id()).unwrap();
        assert_eq!(
            (doc["minLength"].as_u64(), doc["maxLength"].as_u64()),
            (Some(1), Some(128))
        );
        assert!(validate_tenant_id(&"a".repeat(MAX_TENANT_ID_LEN)).is_ok());
        assert!(validate_tenant_id(&"a".repeat(MAX_TENANT_ID_LEN + 1)).is_err());
        for (id, ok) in [(".", false), ("..", false), ("...", true), (".a", true)] {
            assert_eq!(validate_tenant_id(id).is_ok(), ok, "{id:?}");
        }
    }

    /// The control characters the patterns refuse are exactly those
    /// `char::is_control` names, which the name and metadata checks use.
    #[test]
    fn the_control_class_is_char_is_control() {
        for c in every_char() {
            assert_eq!(in_class(CONTROL_CHARS, c), c.is_control(), "{c:?}");
        }
        assert!(validate_name("bell\u{7}").is_err());
        assert!(validate_name("nel\u{85}").is_err());
    }

    /// Lengths are characters, as JSON Schema counts them: a name of
    /// `MAX_NAME_LEN` two-byte characters is accepted.
    #[test]
    fn lengths_are_characters() {
        assert!(validate_name(&"ü".repeat(MAX_NAME_LEN)).is_ok());
        assert!(validate_name(&"ü".repeat(MAX_NAME_LEN + 1)).is_err());
        let doc = serde_json::to_value(name()).unwrap();
        assert_eq!(doc["maxLength"], MAX_NAME_LEN);
    }

    #[test]
    fn quota_ranges_are_the_validation() {
        for q in QuotaType::ALL {
            let doc = serde_json::to_value(quota(q)).unwrap();
            assert_eq!(doc["minimum"], UNLIMITED);
            assert_eq!(doc["maximum"], quota_max(q));
            let mut values = QuotaType::ALL.map(|_| 0);
            for (v, ok) in [
                (UNLIMITED - 1, false),
                (UNLIMITED, true),
                (quota_max(q), true),
            ] {
                values[q.index()] = v;
                let quotas = super::super::store::quotas_from(&values);
                assert_eq!(quotas.validate().is_ok(), ok, "{q} = {v}");
            }
            if let Some(over) = quota_max(q).checked_add(1) {
                values[q.index()] = over;
                let quotas = super::super::store::quotas_from(&values);
                assert!(quotas.validate().is_err(), "{q} = {over}");
            }
        }
    }
}
