//! Tenant lifecycle and bad input at the boundary.

use std::collections::BTreeMap;

use streambus_tenancy::{
    Error, Manager, NewTenant, QuotaType, Quotas, TenantStatus, TenantUpdate, MAX_RATE_QUOTA,
};

#[test]
fn create_get_list_update_delete() {
    let m = Manager::new();
    assert!(m.is_empty());
    let t = m.create_tenant("b-tenant", "B", Quotas::default()).unwrap();
    assert_eq!(t.status, TenantStatus::Active);
    assert_eq!(t.quotas, Quotas::default());
    assert_eq!(t.created_at, t.updated_at);
    m.create_tenant("a-tenant", "A", Quotas::free_tier())
        .unwrap();
    assert_eq!(m.len(), 2);
    let ids: Vec<_> = m.list_tenants().into_iter().map(|t| t.id).collect();
    assert_eq!(ids, ["a-tenant", "b-tenant"]);

    let got = m.get_tenant("b-tenant").unwrap();
    assert_eq!(got, t);

    let updated = m
        .update_tenant("b-tenant", Some("B renamed"), Some(Quotas::pro_tier()))
        .unwrap();
    assert_eq!(updated.name, "B renamed");
    assert_eq!(updated.quotas, Quotas::pro_tier());
    assert!(updated.updated_at >= t.updated_at);
    assert_eq!(updated.created_at, t.created_at);
    // None leaves fields alone.
    let same = m.update_tenant("b-tenant", None, None).unwrap();
    assert_eq!((same.name, same.quotas), (updated.name, updated.quotas));

    m.delete_tenant("b-tenant").unwrap();
    assert_eq!(
        m.get_tenant("b-tenant").unwrap_err(),
        Error::TenantNotFound("b-tenant".into())
    );
    assert_eq!(m.len(), 1);
    assert_eq!(
        m.delete_tenant("b-tenant").unwrap_err(),
        Error::TenantNotFound("b-tenant".into())
    );
    // The id is free again.
    m.create_tenant("b-tenant", "B again", Quotas::default())
        .unwrap();
}

/// Paging walks every tenant once, in id order, whatever the page size,
/// with ids long enough to be stored outside the inline representation too.
#[test]
fn pages_cover_every_tenant_in_order() {
    let m = Manager::new();
    let mut ids: Vec<String> = (0..57)
        .map(|i| {
            if i % 3 == 0 {
                format!("tenant-with-a-long-id-{i:03}-past-the-inline-size")
            } else {
                format!("t{:02}", (i * 37) % 100)
            }
        })
        .collect();
    for id in &ids {
        m.create_tenant(id, "T", Quotas::default()).unwrap();
    }
    ids.sort();
    for limit in [1, 2, 7, 56, 57, 58, 1000] {
        let (mut seen, mut after) = (Vec::new(), None::<String>);
        loop {
            let page = m.list_tenants_page(after.as_deref(), limit);
            assert_eq!(page.total, ids.len());
            assert!(!page.tenants.is_empty() && page.tenants.len() <= limit);
            seen.extend(page.tenants.iter().map(|t| t.id.clone()));
            match page.next {
                Some(next) => {
                    assert_eq!(page.tenants.len(), limit, "only a last page is short");
                    assert_eq!(Some(&next), seen.last());
                    after = Some(next);
                }
                None => break,
            }
        }
        assert_eq!(seen, ids, "limit {limit}");
    }
    // The full tenant, as list_tenants has it.
    assert_eq!(
        m.list_tenants_page(None, 1000).tenants,
        m.list_tenants(),
        "pages hold whole tenants"
    );
    // The cursor is exclusive and need not exist.
    let page = m.list_tenants_page(Some("t5"), 2);
    let got: Vec<&str> = page.tenants.iter().map(|t| t.id.as_str()).collect();
    let want: Vec<&str> = ids
        .iter()
        .filter(|i| i.as_str() > "t5")
        .take(2)
        .map(String::as_str)
        .collect();
    assert_eq!(got, want);
    let page = m.list_tenants_page(Some(ids.last().unwrap()), 10);
    assert_eq!((page.tenants.len(), page.total, page.next), (0, 57, None));
    // A limit of 0 counts only.
    let page = m.list_tenants_page(None, 0);
    assert_eq!((page.tenants.len(), page.total, page.next), (0, 57, None));
    // An empty manager.
    let page = Manager::new().list_tenants_page(None, 10);
    assert_eq!((page.tenants.len(), page.total, page.next), (0, 0, None));
}

#[test]
fn description_and_metadata() {
    let m = Manager::new();
    let mut meta = BTreeMap::new();
    meta.insert("team".to_string(), "payments".to_string());
    let t = m
        .create(NewTenant {
            id: "acme".into(),
            name: "ACME".into(),
            description: "the first customer".into(),
            metadata: meta.clone(),
            quotas: Quotas::default(),
        })
        .unwrap();
    assert_eq!(t.description, "the first customer");
    assert_eq!(m.get_tenant("acme").unwrap().metadata, meta);
    meta.insert("tier".into(), "gold".into());
    let t = m
        .update(
            "acme",
            TenantUpdate {
                description: Some("renewed".into()),
                metadata: Some(meta.clone()),
                ..TenantUpdate::default()
            },
        )
        .unwrap();
    assert_eq!((t.description.as_str(), &t.metadata), ("renewed", &meta));
    assert_eq!(t.name, "ACME");
}

#[test]
fn duplicate_ids_are_refused() {
    let m = Manager::new();
    m.create_tenant("x", "X", Quotas::default()).unwrap();
    assert_eq!(
        m.create_tenant("x", "Other", Quotas::unlimited())
            .unwrap_err(),
        Error::TenantExists("x".into())
    );
    assert_eq!(m.get_tenant("x").unwrap().name, "X");
}

#[test]
fn suspend_and_activate() {
    let m = Manager::new();
    m.create_tenant("t", "T", Quotas::default()).unwrap();
    let conn = m.acquire_connection("t").unwrap();
    m.enforce_producer_quota("t").unwrap();
    m.suspend_tenant("t").unwrap();
    m.suspend_tenant("t").unwrap(); // idempotent
    assert_eq!(m.get_tenant("t").unwrap().status, TenantStatus::Suspended);

    let not_active = Error::TenantNotActive {
        id: "t".into(),
        status: TenantStatus::Suspended,
    };
    let tracker = m.get_tracker("t").unwrap();
    let refused: Vec<Result<(), Error>> = vec![
        m.enforce_produce_quota("t", 1, 1),
        m.enforce_consume_quota("t", 1, 1),
        m.enforce_request_quota("t"),
        m.enforce_connection_quota("t"),
        m.enforce_producer_quota("t"),
        m.enforce_consumer_quota("t"),
        m.enforce_consumer_group_quota("t"),
        m.enforce_topic_quota("t", 1),
        m.enforce_storage_quota("t", 1),
        m.enforce_retention_quota("t", 1),
        m.acquire_connection("t").map(drop),
        m.acquire_producer("t").map(drop),
        m.acquire_consumer("t").map(drop),
        m.acquire_consumer_group("t").map(drop),
        tracker.enforce_produce(1, 1),
        tracker.check_throughput(1, 1),
        tracker.add_topic(1),
        tracker.check_storage(0),
    ];
    for r in refused {
        assert_eq!(r.unwrap_err(), not_active);
    }
    // Draining still works: releases, permit drops, storage updates; usage
    // and stats stay readable.
    drop(conn);
    m.release_producer("t");
    m.update_storage_usage("t", 5).unwrap();
    let u = m.get_usage("t").unwrap();
    assert_eq!((u.connections, u.producers, u.storage_bytes), (0, 0, 5));
    assert_eq!(
        m.get_tenant_stats("t").unwrap().tenant.status,
        TenantStatus::Suspended
    );

    m.activate_tenant("t").unwrap();
    m.activate_tenant("t").unwrap(); // idempotent
    m.enforce_produce_quota("t", 1, 1).unwrap();
    tracker.enforce_produce(1, 1).unwrap();

    assert!(matches!(
        m.suspend_tenant("nope"),
        Err(Error::TenantNotFound(_))
    ));
    assert!(matches!(
        m.activate_tenant("nope"),
        Err(Error::TenantNotFound(_))
    ));
}

#[test]
fn handles_held_across_delete_and_recreate() {
    let m = Manager::new();
    let q = Quotas {
        max_connections: 1,
        ..Quotas::default()
    };
    m.create_tenant("t", "T", q).unwrap();
    let old_tracker = m.get_tracker("t").unwrap();
    let old_permit = m.acquire_connection("t").unwrap();
    m.delete_tenant("t").unwrap();
    assert_eq!(old_tracker.status(), TenantStatus::Deleted);
    assert_eq!(
        old_tracker.enforce_produce(1, 1).unwrap_err(),
        Error::TenantNotActive {
            id: "t".into(),
            status: TenantStatus::Deleted
        }
    );
    assert!(old_tracker.add_connection().is_err());

    m.create_tenant("t", "T2", q).unwrap();
    let new_permit = m.acquire_connection("t").unwrap();
    // Dropping the old permit must not free the new tenant's connection.
    drop(old_permit);
    assert_eq!(m.get_usage("t").unwrap().connections, 1);
    assert!(m.acquire_connection("t").is_err());
    old_tracker.remove_connection();
    assert_eq!(m.get_usage("t").unwrap().connections, 1);
    drop(new_permit);
    assert_eq!(m.get_usage("t").unwrap().connections, 0);
    // Suspend/activate never revive a deleted handle.
    assert_eq!(old_tracker.status(), TenantStatus::Deleted);
}

#[test]
fn unknown_tenants() {
    let m = Manager::new();
    let nf = Error::TenantNotFound("ghost".into());
    assert_eq!(m.enforce_produce_quota("ghost", 1, 1).unwrap_err(), nf);
    assert_eq!(m.enforce_connection_quota("ghost").unwrap_err(), nf);
    assert_eq!(m.get_usage("ghost").unwrap_err(), nf);
    assert_eq!(m.get_utilization("ghost").unwrap_err(), nf);
    assert_eq!(m.get_tenant_stats("ghost").unwrap_err(), nf);
    assert_eq!(m.get_tracker("ghost").unwrap_err(), nf);
    assert_eq!(m.update_storage_usage("ghost", 1).unwrap_err(), nf);
    assert_eq!(m.update_tenant("ghost", Some("x"), None).unwrap_err(), nf);
    // Releases of unknown ids are ignored, not panics.
    m.release_connection("ghost");
    m.release_topic("ghost", 3);
    assert!(m.acquire_connection("").is_err());
    assert!(m.enforce_produce_quota(&"x".repeat(10_000), 1, 1).is_err());
}

#[test]
fn invalid_ids() {
    let m = Manager::new();
    for id in [
        "",
        " ",
        "has space",
        "slash/y",
        "uni\u{e9}",
        "tab\t",
        "nul\0",
        "emoji\u{1f600}",
        "semi;colon",
        &"a".repeat(129),
        ".",
        "..",
    ] {
        match m.create_tenant(id, "Name", Quotas::default()) {
            Err(Error::InvalidTenantId(msg)) => assert!(!msg.is_empty()),
            other => panic!("{id:?}: {other:?}"),
        }
    }
    for id in ["a", "A.b_c-9", &"z".repeat(128), "...", ".a", "-"] {
        m.create_tenant(id, "Name", Quotas::default()).unwrap();
    }
    let e = m
        .create_tenant("bad id", "N", Quotas::default())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid tenant id: \"bad id\" contains ' '; only A-Z a-z 0-9 . _ - are allowed"
    );
}

#[test]
fn invalid_names() {
    let m = Manager::new();
    for name in ["", &"n".repeat(257), "line\nbreak", "bell\u{7}"] {
        match m.create_tenant("t", name, Quotas::default()) {
            Err(Error::InvalidName(msg)) => assert!(!msg.is_empty()),
            other => panic!("{name:?}: {other:?}"),
        }
        m.create_tenant("ok", "ok", Quotas::default()).ok();
        assert!(matches!(
            m.update_tenant("ok", Some(name), None),
            Err(Error::InvalidName(_))
        ));
    }
    m.create_tenant("t", &"n".repeat(256), Quotas::default())
        .unwrap();
    m.create_tenant("u", "Ünïcödé ✓", Quotas::default())
        .unwrap();
}

#[test]
fn invalid_quotas_name_the_field() {
    let m = Manager::new();
    m.create_tenant("t", "T", Quotas::default()).unwrap();
    for q in QuotaType::ALL {
        for bad in [-2, i64::MIN] {
            let mut quotas = Quotas::default();
            quotas.set(q, bad);
            let e = m.create_tenant("new", "N", quotas).unwrap_err();
            assert_eq!(
                e,
                Error::InvalidQuotas(format!(
                    "{} must be -1 (unlimited) or at least 0, got {bad}",
                    q.field_name()
                ))
            );
            assert_eq!(m.update_tenant("t", None, Some(quotas)).unwrap_err(), e);
        }
        // Every count quota takes any non-negative i64; rate quotas stop at
        // what a window can count exactly.
        let mut quotas = Quotas::default();
        quotas.set(q, i64::MAX);
        let r = m.update_tenant("t", None, Some(quotas));
        if q.is_rate() {
            assert!(
                matches!(&r, Err(Error::InvalidQuotas(m)) if m.contains(q.field_name())),
                "{r:?}"
            );
            quotas.set(q, MAX_RATE_QUOTA);
            m.update_tenant("t", None, Some(quotas)).unwrap();
        } else {
            r.unwrap();
        }
    }
    // A refused update changes nothing.
    assert!(m.get_tenant("t").unwrap().quotas.max_topics != -2);
    assert!(m.get_tenant("new").is_err());
}

#[test]
fn u64_max_arguments_never_panic() {
    for quotas in [Quotas::default(), Quotas::unlimited(), Quotas::free_tier()] {
        let m = Manager::new();
        m.create_tenant("t", "T", quotas).unwrap();
        let t = m.get_tracker("t").unwrap();
        for _ in 0..3 {
            let _ = m.enforce_produce_quota("t", u64::MAX, u64::MAX);
            let _ = m.enforce_consume_quota("t", u64::MAX, 0);
            let _ = m.enforce_consume_quota("t", 0, u64::MAX);
            let _ = m.enforce_storage_quota("t", u64::MAX);
            let _ = m.enforce_retention_quota("t", u64::MAX);
            let _ = m.enforce_topic_quota("t", u32::MAX);
            m.release_topic("t", u32::MAX);
            m.update_storage_usage("t", u64::MAX).unwrap();
            let _ = m.enforce_storage_quota("t", u64::MAX);
            t.record_throughput(u64::MAX, u64::MAX);
            let _ = t.check_throughput(u64::MAX, u64::MAX);
            let _ = t.check_storage(u64::MAX);
        }
        let u = m.get_usage("t").unwrap();
        assert_eq!(u.storage_bytes, u64::MAX);
        let _ = m.get_utilization("t").unwrap();
        let _ = m.get_tenant_stats("t").unwrap();
    }
}

#[test]
fn tier_profiles() {
    let free = Quotas::free_tier();
    assert_eq!(free.max_bytes_per_second, 1024 * 1024);
    assert_eq!(free.max_messages_per_second, 1000);
    assert_eq!(free.max_storage_bytes, 10 * 1024 * 1024 * 1024);
    assert_eq!(
        (free.max_topics, free.max_partitions, free.max_connections),
        (10, 50, 10)
    );
    assert_eq!((free.max_producers, free.max_consumers), (5, 10));
    let pro = Quotas::pro_tier();
    assert_eq!(pro.max_bytes_per_second, 50 * 1024 * 1024);
    assert_eq!(pro.max_partitions, 5000);
    assert_eq!(Quotas::enterprise_tier(), Quotas::unlimited());
    for q in [Quotas::default(), free, pro, Quotas::unlimited()] {
        q.validate().unwrap();
        // The seed leaves some fields unset; none of ours is "nothing allowed".
        assert!(QuotaType::ALL.iter().all(|t| q.get(*t) != 0));
    }
}
