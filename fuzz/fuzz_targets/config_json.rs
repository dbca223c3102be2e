//! Arbitrary bytes into the JSON (and TOML) parsing of the boundary types:
//! `Quotas` (snake_case or the seed's Go names), tenants as the admin API
//! and the store exchange them, tier tables (name -> quotas), `Usage`,
//! `TenantStatus` and `QuotaType`; with the `server` feature also the
//! service's TOML config with its `[tiers.*]` and the admin API's tenant
//! create/update requests. Nothing panics; what parses is valid (or is
//! refused cleanly by the engine, for tenants); serializing what parsed and
//! parsing it again gives the same value.

#![no_main]

use std::collections::BTreeMap;
use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;
use streambus_tenancy::{Error, Manager, QuotaType, Quotas, Tenant, TenantStatus, Usage};

/// Parses `data` as `T`; if it parses, the value must survive a round trip
/// through JSON (and, where `toml` is set, TOML).
fn json<T>(data: &[u8]) -> Option<T>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    match serde_json::from_slice::<T>(data) {
        Ok(v) => {
            let text = serde_json::to_string(&v).expect("a parsed value serializes");
            let again: T = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{text} does not parse back: {e}"));
            assert_eq!(again, v, "JSON round trip changed the value: {text}");
            Some(v)
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            None
        }
    }
}

fn toml<T>(text: &str)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    if let Ok(v) = ::toml::from_str::<T>(text) {
        let out = ::toml::to_string(&v).expect("a parsed value serializes");
        let again: T =
            ::toml::from_str(&out).unwrap_or_else(|e| panic!("{out} does not parse back: {e}"));
        assert_eq!(again, v, "TOML round trip changed the value: {out}");
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some(q) = json::<Quotas>(data) {
        assert_eq!(q.validate(), Ok(()), "a parsed Quotas must be valid: {q:?}");
    }
    if let Some(tiers) = json::<BTreeMap<String, Quotas>>(data) {
        assert!(tiers.values().all(|q| q.validate().is_ok()));
    }
    if let Some(t) = json::<Tenant>(data) {
        assert_eq!(t.quotas.validate(), Ok(()));
        // The engine takes it or says why not; it never panics.
        match Manager::new().restore(t.clone()) {
            Ok(back) => assert_eq!(back, t),
            Err(Error::InvalidTenantId(m) | Error::InvalidName(m) | Error::InvalidConfig(m)) => {
                assert!(!m.is_empty())
            }
            Err(other) => panic!("restore of {t:?}: unexpected {other:?}"),
        }
    }
    json::<Vec<Tenant>>(data);
    json::<Usage>(data);
    json::<TenantStatus>(data);
    json::<QuotaType>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        toml::<Quotas>(text);
        toml::<BTreeMap<String, Quotas>>(text);
    }
    #[cfg(feature = "server")]
    server(data);
});

/// Parses `data` as `T` and checks the round trip on the JSON it writes
/// (for types without `PartialEq`).
#[cfg(feature = "server")]
fn json_value<T: Serialize + DeserializeOwned>(data: &[u8]) -> Option<T> {
    let v: T = serde_json::from_slice(data).ok()?;
    let first = serde_json::to_value(&v).expect("a parsed value serializes");
    let again: T = serde_json::from_value(first.clone())
        .unwrap_or_else(|e| panic!("{first} does not parse back: {e}"));
    assert_eq!(serde_json::to_value(&again).unwrap(), first);
    Some(v)
}

#[cfg(feature = "server")]
fn server(data: &[u8]) {
    use streambus_tenancy::server::{
        Config, CreateTenantRequest, TenantJson, Tiers, UpdateTenantRequest,
    };
    json_value::<CreateTenantRequest>(data);
    json_value::<UpdateTenantRequest>(data);
    json_value::<TenantJson>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        match Config::parse(text) {
            Ok(config) => {
                let tiers = Tiers::with(&config.tiers);
                for (name, q) in &config.tiers {
                    assert_eq!(q.validate(), Ok(()), "tier {name}");
                    assert_eq!(tiers.get(name), Some(*q), "tier {name}");
                }
            }
            Err(e) => assert!(!e.0.is_empty()),
        }
    }
}
