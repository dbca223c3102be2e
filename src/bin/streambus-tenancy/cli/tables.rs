//! Tables for people: sizes in binary units (`1.5 KiB`, `10 MiB`), byte
//! rates as `MiB/s`, other rates as `msg/s` and `req/s`, retention in days
//! or hours, counts with grouped digits. `--output json` keeps the server's
//! exact numbers.

use std::collections::BTreeMap;
use std::time::Duration;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use streambus_tenancy::server::{StatsJson, TenantJson, UsageJson};
use streambus_tenancy::{QuotaType, QuotaUnit};

/// The usage a quota limits (retention has none).
fn used(u: &UsageJson, q: QuotaType) -> Option<u64> {
    u.get(q)
}

/// A value of quota `q` in its unit.
fn human(q: QuotaType, v: u64) -> String {
    match q.unit() {
        QuotaUnit::Bytes => bytes(v),
        QuotaUnit::BytesPerSecond => format!("{}/s", bytes(v)),
        QuotaUnit::PerSecond(u) => format!("{} {u}", grouped(v)),
        QuotaUnit::Hours if v > 0 && v.is_multiple_of(24) => format!("{} d", grouped(v / 24)),
        QuotaUnit::Hours => format!("{} h", grouped(v)),
        _ => grouped(v),
    }
}

/// A limit of quota `q`: `unlimited` below zero, else [`human`].
fn limit(q: QuotaType, v: i64) -> String {
    u64::try_from(v).map_or_else(|_| "unlimited".to_owned(), |v| human(q, v))
}

/// Bytes in binary units: `512 B`, `1.5 KiB`, `10 MiB`, `100 GiB`; whole
/// multiples without decimals, others to one decimal.
pub(super) fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut scale = 1024u64;
    let mut i = 0;
    while i + 1 < UNITS.len() && n / scale >= 1024 {
        scale *= 1024;
        i += 1;
    }
    if n.is_multiple_of(scale) {
        format!("{} {}", n / scale, UNITS[i])
    } else {
        format!("{:.1} {}", n as f64 / scale as f64, UNITS[i])
    }
}

/// Digits grouped by three: `10,000`.
pub(super) fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

fn when(secs: f64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_secs_f64(secs.max(0.0));
    humantime::format_rfc3339_seconds(t).to_string()
}

fn table() -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t
}

fn right(text: String) -> Cell {
    Cell::new(text).set_alignment(CellAlignment::Right)
}

/// The tenants, one a row, then `footer`.
pub(super) fn list_table(tenants: &[TenantJson], footer: &str) -> String {
    let mut t = table();
    t.set_header(vec![
        "ID",
        "NAME",
        "STATUS",
        "BYTES/S",
        "STORAGE",
        "CONNECTIONS",
        "TOPICS",
        "CREATED",
    ]);
    for x in tenants {
        let q = x.quotas;
        let lim = |qt: QuotaType| right(limit(qt, q.get(qt)));
        t.add_row(vec![
            Cell::new(&x.id),
            Cell::new(&x.name),
            Cell::new(&x.status),
            lim(QuotaType::BytesPerSecond),
            lim(QuotaType::Storage),
            lim(QuotaType::Connections),
            lim(QuotaType::Topics),
            Cell::new(when(x.created_at)),
        ]);
    }
    format!("{t}\n{footer}")
}

/// One tenant: its fields, labels and quotas (by the field names that
/// `--quota` takes).
pub(super) fn tenant_table(x: &TenantJson) -> String {
    let mut t = table();
    t.set_header(vec!["FIELD", "VALUE"]);
    t.add_row(vec!["id", &x.id]);
    t.add_row(vec!["name", &x.name]);
    t.add_row(vec!["description", &x.description]);
    t.add_row(vec!["status", &x.status]);
    t.add_row(vec!["created", &when(x.created_at)]);
    t.add_row(vec!["updated", &when(x.updated_at)]);
    for (k, v) in &x.metadata {
        t.add_row(vec![format!("metadata.{k}"), v.clone()]);
    }
    let quotas = x.quotas;
    for q in QuotaType::ALL {
        t.add_row(vec![
            Cell::new(q.field_name()),
            right(limit(q, quotas.get(q))),
        ]);
    }
    t.to_string()
}

/// Usage against limits, utilization, alerts and refusals by quota, then
/// the lifetime counters.
pub(super) fn stats_table(s: &StatsJson) -> String {
    let alerts: BTreeMap<&str, &str> = s
        .alerts
        .iter()
        .map(|a| (a.quota.as_str(), a.level.as_str()))
        .collect();
    let quotas = s.tenant.quotas;
    let mut t = table();
    t.set_header(vec![
        "QUOTA",
        "USAGE",
        "LIMIT",
        "UTILIZATION",
        "ALERT",
        "REFUSED",
    ]);
    for q in QuotaType::ALL {
        let name = q.as_str();
        let util = s
            .utilization
            .get(name)
            .map(|u| format!("{u:.1}%"))
            .unwrap_or_default();
        t.add_row(vec![
            Cell::new(name),
            right(used(&s.usage, q).map(|v| human(q, v)).unwrap_or_default()),
            right(limit(q, quotas.get(q))),
            right(util),
            Cell::new(alerts.get(name).copied().unwrap_or("")),
            right(grouped(s.counters.refused.get(name).copied().unwrap_or(0))),
        ]);
    }
    let c = &s.counters;
    format!(
        "tenant {} ({}), {}\n{t}\nadmitted: {}, {} messages, {} requests; refused while suspended: {}",
        s.tenant.id,
        s.tenant.name,
        s.tenant.status,
        bytes(c.admitted_bytes),
        grouped(c.admitted_messages),
        grouped(c.admitted_requests),
        grouped(c.refused_not_active),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1 KiB");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(10 << 20), "10 MiB");
        assert_eq!(bytes((1 << 30) + 512), "1.0 GiB");
        assert_eq!(bytes(100 << 30), "100 GiB");
        assert_eq!(bytes(3 << 40), "3 TiB");
        assert_eq!(bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn quota_units() {
        assert_eq!(limit(QuotaType::BytesPerSecond, 50 << 20), "50 MiB/s");
        assert_eq!(limit(QuotaType::Storage, -1), "unlimited");
        assert_eq!(limit(QuotaType::MessagesPerSecond, 10_000), "10,000 msg/s");
        assert_eq!(limit(QuotaType::RequestsPerSecond, 0), "0 req/s");
        assert_eq!(limit(QuotaType::Connections, 1_000_000), "1,000,000");
        assert_eq!(limit(QuotaType::RetentionHours, 168), "7 d");
        assert_eq!(limit(QuotaType::RetentionHours, 36), "36 h");
        assert_eq!(limit(QuotaType::RetentionHours, 0), "0 h");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(u64::MAX), "18,446,744,073,709,551,615");
    }
}
