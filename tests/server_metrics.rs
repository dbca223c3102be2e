//! `/metrics`: the text parses as Prometheus text (format 0.0.4), the
//! per-tenant series follow `TenantSeries`, its parsing refuses bad input
//! with a clear message, and a large scrape streams whole over HTTP while
//! parallel scrapes wait their turn.

#![cfg(feature = "server")]

mod server_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use streambus_tenancy::server::{Alerts, Metrics, ParseTenantSeriesError, TenantSeries};
use streambus_tenancy::{HeldUsage, Manager, Quotas};

use server_support::TestServer;

/// One sample line.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// One metric family: its type and samples.
#[derive(Debug, Default)]
struct Family {
    kind: String,
    samples: Vec<Sample>,
}

fn is_name(s: &str, colon: bool) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
}

/// `{a="x",b="y"}` (the braces stripped) into a map, refusing anything the
/// format does not allow.
fn parse_labels(mut s: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    while !s.is_empty() {
        let (name, rest) = s
            .split_once("=\"")
            .unwrap_or_else(|| panic!("label in {line:?}"));
        assert!(is_name(name, false), "label name {name:?} in {line:?}");
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => panic!("bad escape {other:?} in {line:?}"),
                },
                Some((_, '\n')) | None => panic!("unterminated label value in {line:?}"),
                Some((_, c)) => value.push(c),
            }
        };
        assert!(
            labels.insert(name.to_owned(), value).is_none(),
            "label {name} twice in {line:?}"
        );
        s = &rest[end + 1..];
        s = s.strip_prefix(',').unwrap_or(s);
    }
    labels
}

/// Parses the Prometheus text format strictly: every family has one HELP
/// then one TYPE line before its samples, its samples are contiguous and
/// carry its name, no series repeats, every value is a number.
fn parse(text: &str) -> BTreeMap<String, Family> {
    assert!(text.ends_with('\n'), "the text ends with a newline");
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut help: Option<String> = None;
    let mut series = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, _) = rest.split_once(' ').expect("HELP name text");
            assert!(is_name(name, true), "{line:?}");
            assert!(!families.contains_key(name), "family {name} twice");
            help = Some(name.to_owned());
            current = None;
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name type");
            assert_eq!(help.as_deref(), Some(name), "HELP before TYPE for {name}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line:?}"
            );
            families.insert(
                name.to_owned(),
                Family {
                    kind: kind.to_owned(),
                    samples: Vec::new(),
                },
            );
            current = Some(name.to_owned());
        } else {
            assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
            let (series_part, value) = line.rsplit_once(' ').expect("series value");
            let (name, labels) = match series_part.split_once('{') {
                Some((name, rest)) => {
                    let inner = rest.strip_suffix('}').expect("closing brace");
                    (name, parse_labels(inner, line))
                }
                None => (series_part, BTreeMap::new()),
            };
            let family = current.as_deref().expect("a sample before any TYPE line");
            assert_eq!(name, family, "sample outside its family: {line:?}");
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("value in {line:?}"));
            assert!(
                series.insert(format!("{name}{labels:?}")),
                "series twice: {line:?}"
            );
            families.get_mut(family).unwrap().samples.push(Sample {
                name: name.to_owned(),
                labels,
                value,
            });
        }
    }
    families
}

/// The tenants named in any `tenant` label.
fn tenants_in(families: &BTreeMap<String, Family>) -> BTreeSet<String> {
    families
        .values()
        .flat_map(|f| &f.samples)
        .filter_map(|s| s.labels.get("tenant").cloned())
        .collect()
}

fn value(families: &BTreeMap<String, Family>, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    families.get(name)?.samples.iter().find_map(|s| {
        labels
            .iter()
            .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            .then_some(s.value)
    })
}

/// Four tenants: one idle, one at exactly 80 % of its connections, one
/// restored to 250 % of its topics (with alerts sampled), one suspended.
fn fixture() -> (Arc<Manager>, Arc<Alerts>) {
    let m = Arc::new(Manager::builder().clock(quanta::Clock::mock().0).build());
    let q = Quotas {
        max_connections: 10,
        max_topics: 2,
        ..Quotas::default()
    };
    for id in ["idle", "eighty", "over", "paused"] {
        m.create_tenant(id, id, q).unwrap();
    }
    for _ in 0..8 {
        m.enforce_connection_quota("eighty").unwrap();
    }
    m.restore_usage(
        "over",
        &HeldUsage {
            topics: 5,
            ..HeldUsage::default()
        },
    )
    .unwrap();
    m.enforce_produce_quota("over", 1000, 10).unwrap();
    m.suspend_tenant("paused").unwrap();
    assert!(m.enforce_produce_quota("paused", 1, 1).is_err());
    let alerts = Arc::new(Alerts::new());
    alerts.sample(&m);
    (m, alerts)
}

#[test]
fn the_text_parses_as_prometheus_text() {
    let (m, alerts) = fixture();
    let text = Metrics::new(m, alerts).render();
    let f = parse(&text);
    let names: Vec<&str> = f.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "streambus_tenant_admitted_bytes_total",
            "streambus_tenant_admitted_messages_total",
            "streambus_tenant_admitted_requests_total",
            "streambus_tenant_alert_level",
            "streambus_tenant_limit",
            "streambus_tenant_refused_total",
            "streambus_tenant_status",
            "streambus_tenant_usage",
            "streambus_tenant_utilization_percent",
            "streambus_tenants",
        ]
    );
    assert_eq!(f["streambus_tenant_refused_total"].kind, "counter");
    assert_eq!(f["streambus_tenant_usage"].kind, "gauge");
    assert_eq!(
        tenants_in(&f),
        ["eighty", "idle", "over", "paused"]
            .map(String::from)
            .into()
    );
    // Within a family, tenants come sorted by id.
    let order: Vec<&str> = f["streambus_tenant_status"]
        .samples
        .iter()
        .map(|s| s.labels["tenant"].as_str())
        .collect();
    assert_eq!(order, ["eighty", "idle", "over", "paused"]);
    assert!(f
        .values()
        .flat_map(|f| &f.samples)
        .all(|s| !s.name.is_empty()));

    let v = |name: &str, labels: &[(&str, &str)]| value(&f, name, labels);
    assert_eq!(v("streambus_tenants", &[("status", "active")]), Some(3.0));
    assert_eq!(
        v("streambus_tenants", &[("status", "suspended")]),
        Some(1.0)
    );
    let over = [("tenant", "over"), ("quota", "topics")];
    assert_eq!(v("streambus_tenant_usage", &over), Some(5.0));
    assert_eq!(v("streambus_tenant_limit", &over), Some(2.0));
    assert_eq!(
        v("streambus_tenant_utilization_percent", &over),
        Some(250.0)
    );
    assert_eq!(v("streambus_tenant_alert_level", &over), Some(2.0));
    let eighty = [("tenant", "eighty"), ("quota", "connections")];
    assert_eq!(v("streambus_tenant_alert_level", &eighty), Some(1.0));
    assert_eq!(
        v(
            "streambus_tenant_admitted_bytes_total",
            &[("tenant", "over")]
        ),
        Some(1000.0)
    );
    assert_eq!(
        v(
            "streambus_tenant_refused_total",
            &[("tenant", "paused"), ("quota", "not_active")]
        ),
        Some(1.0)
    );
    assert_eq!(
        v(
            "streambus_tenant_status",
            &[("tenant", "paused"), ("status", "suspended")]
        ),
        Some(1.0)
    );
    // 11 usage + 11 limits (the connection-creation rate is unlimited) + 11
    // utilization + 3 admitted + 13 refused + status.
    let idle = f
        .values()
        .flat_map(|f| &f.samples)
        .filter(|s| s.labels.get("tenant").map(String::as_str) == Some("idle"))
        .count();
    assert_eq!(idle, 50);
}

#[test]
fn series_none_writes_no_tenant_label() {
    let (m, alerts) = fixture();
    let metrics = Metrics::new(m, alerts).with_tenant_series(TenantSeries::None);
    assert_eq!(metrics.tenant_series(), TenantSeries::None);
    let text = metrics.render();
    assert!(!text.contains("tenant="), "{text}");
    let f = parse(&text);
    assert_eq!(f.keys().collect::<Vec<_>>(), ["streambus_tenants"]);
    assert_eq!(
        value(&f, "streambus_tenants", &[("status", "active")]),
        Some(3.0)
    );
    assert_eq!(
        value(&f, "streambus_tenants", &[("status", "suspended")]),
        Some(1.0)
    );
}

#[test]
fn series_above_writes_only_the_tenants_at_or_above() {
    let (m, alerts) = fixture();
    let render = |series| {
        let text = Metrics::new(Arc::clone(&m), Arc::clone(&alerts))
            .with_tenant_series(series)
            .render();
        parse(&text)
    };
    let names = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();

    let f = render(TenantSeries::AboveUtilization(80));
    assert_eq!(tenants_in(&f), names(&["eighty", "over"]));
    // The aggregate still counts every tenant.
    assert_eq!(
        value(&f, "streambus_tenants", &[("status", "active")]),
        Some(3.0)
    );
    // A chosen tenant keeps every one of its series, alerts included.
    let over = f
        .values()
        .flat_map(|f| &f.samples)
        .filter(|s| s.labels.get("tenant").map(String::as_str) == Some("over"))
        .count();
    assert_eq!(over, 50 + 1);

    assert_eq!(
        tenants_in(&render(TenantSeries::AboveUtilization(81))),
        names(&["over"])
    );
    assert_eq!(
        tenants_in(&render(TenantSeries::AboveUtilization(100))),
        names(&["over"])
    );
    assert_eq!(
        tenants_in(&render(TenantSeries::AboveUtilization(0))),
        names(&["eighty", "idle", "over", "paused"])
    );
    // Nobody above: the aggregate alone.
    m.restore_usage("over", &HeldUsage::default()).unwrap();
    let text = Metrics::new(Arc::clone(&m), Arc::clone(&alerts))
        .with_tenant_series(TenantSeries::AboveUtilization(90))
        .render();
    assert!(!text.contains("tenant="), "{text}");
    parse(&text);
}

#[test]
fn tenant_series_parses_and_refuses_with_clear_errors() {
    for (text, series) in [
        ("all", TenantSeries::All),
        ("none", TenantSeries::None),
        ("above:0", TenantSeries::AboveUtilization(0)),
        ("above:80", TenantSeries::AboveUtilization(80)),
        ("above:100", TenantSeries::AboveUtilization(100)),
        ("above:007", TenantSeries::AboveUtilization(7)),
    ] {
        assert_eq!(text.parse::<TenantSeries>(), Ok(series), "{text}");
    }
    for series in [
        TenantSeries::All,
        TenantSeries::None,
        TenantSeries::AboveUtilization(80),
    ] {
        assert_eq!(series.to_string().parse::<TenantSeries>(), Ok(series));
    }
    assert_eq!(TenantSeries::default(), TenantSeries::All);

    for (text, problem) in [
        ("", "not one of the choices"),
        ("All", "not one of the choices"),
        (" all", "not one of the choices"),
        ("some", "not one of the choices"),
        ("above", "not one of the choices"),
        ("above80", "not one of the choices"),
        ("above:", "the percentage is missing"),
        (
            "above:101",
            "\"101\" is not a whole percentage from 0 to 100",
        ),
        (
            "above:256",
            "\"256\" is not a whole percentage from 0 to 100",
        ),
        ("above:-1", "\"-1\" is not a whole percentage"),
        ("above:+80", "\"+80\" is not a whole percentage"),
        ("above:80%", "\"80%\" is not a whole percentage"),
        ("above:80.5", "\"80.5\" is not a whole percentage"),
        ("above: 80", "\" 80\" is not a whole percentage"),
    ] {
        let err: ParseTenantSeriesError = text.parse::<TenantSeries>().unwrap_err();
        assert_eq!(err.input(), text);
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("invalid tenant series {text:?}: {problem}")),
            "{text:?}: {msg}"
        );
        assert!(
            msg.ends_with(
                "use all, none, or above:N with N a whole percentage from 0 to 100 (e.g. above:80)"
            ),
            "{msg}"
        );
    }

    // In a config file it is the same string.
    #[derive(serde::Deserialize, serde::Serialize, Debug, PartialEq)]
    struct Conf {
        tenant_series: TenantSeries,
    }
    let conf: Conf = toml::from_str("tenant_series = \"above:90\"").unwrap();
    assert_eq!(conf.tenant_series, TenantSeries::AboveUtilization(90));
    assert_eq!(
        serde_json::to_string(&conf).unwrap(),
        r#"{"tenant_series":"above:90"}"#
    );
    let err = toml::from_str::<Conf>("tenant_series = \"above:x\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid tenant series \"above:x\""), "{err}");
}

#[test]
fn a_large_scrape_streams_whole_and_parallel_scrapes_wait_their_turn() {
    const TENANTS: usize = 3000;
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path());
    for i in 0..TENANTS {
        let id = format!("t{i:05}");
        s.manager
            .create_tenant(&id, &id, Quotas::default())
            .unwrap();
    }
    // About 11 MB each. The client sends the token, which /metrics may or
    // may not ask for.
    let client = s.client();
    let scrapes: Vec<_> = (0..3)
        .map(|_| {
            let c = client.clone();
            std::thread::spawn(move || c.get("/metrics"))
        })
        .collect();
    for scrape in scrapes {
        let r = scrape.join().unwrap();
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.content_type, Metrics::CONTENT_TYPE);
        let f = parse(&r.text);
        assert_eq!(f["streambus_tenant_status"].samples.len(), TENANTS);
        assert_eq!(
            value(&f, "streambus_tenants", &[("status", "active")]),
            Some(TENANTS as f64)
        );
    }
}
