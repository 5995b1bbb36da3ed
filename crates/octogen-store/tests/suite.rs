//! One store test suite, run against every backend available: SQLite always,
//! PostgreSQL when `OCTOGEN_TEST_DATABASE_URL` is set (CI sets it).

use octogen_core::{ApiKey, KeyId, Pepper, Timestamp};
use octogen_store::*;

struct Backends {
    _dir: tempfile::TempDir,
    stores: Vec<(&'static str, Box<dyn Store>)>,
}

async fn backends() -> Backends {
    let dir = tempfile::tempdir().unwrap();
    let mut stores: Vec<(&'static str, Box<dyn Store>)> =
        vec![("sqlite", Box::new(SqlStore::open_sqlite(&dir.path().join("octogen.db")).await.unwrap()))];
    if let Ok(url) = std::env::var("OCTOGEN_TEST_DATABASE_URL") {
        stores.push(("postgres", Box::new(fresh_postgres(&url).await)));
    }
    Backends { _dir: dir, stores }
}

/// A new empty database on the server of `url`, so tests never share state.
async fn fresh_postgres(url: &str) -> SqlStore {
    use sqlx::Executor;
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(url).await.unwrap();
    let name = format!("octogen_test_{}", uuid::Uuid::new_v4().simple());
    admin.execute(format!("CREATE DATABASE {name}").as_str()).await.unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    SqlStore::connect_postgres(&format!("{base}/{name}")).await.unwrap()
}

fn pepper() -> Pepper {
    Pepper::new(vec![1; 32]).unwrap()
}

async fn partner(store: &dyn Store, name: &str) -> Org {
    store.create_org(NewOrg::new(name, OrgType::CatalogPartner), &[]).await.unwrap()
}

async fn catalog(store: &dyn Store, key: &str) -> Catalog {
    store
        .create_catalog(NewCatalog { key: key.into(), display_name: key.to_uppercase(), source_base_url: None }, &[])
        .await
        .unwrap()
}

async fn mint(store: &dyn Store, org: &Org) -> ApiKey {
    let key = ApiKey::generate();
    store
        .create_api_key(
            NewApiKey {
                id: key.id(),
                org_id: org.id.clone(),
                name: "test".into(),
                secret_hash: key.hash(&pepper()),
                expires_at: None,
            },
            &[],
        )
        .await
        .unwrap();
    key
}

#[tokio::test]
async fn organizations() {
    for (backend, store) in backends().await.stores {
        let store = store.as_ref();
        let acme = partner(store, "Acme Search").await;
        assert_eq!(acme.slug, "acme-search", "{backend}");
        assert!(!acme.suspended);
        let duplicate = store.create_org(NewOrg::new("ACME search", OrgType::Merchant), &[]).await;
        assert!(matches!(duplicate, Err(StoreError::Conflict(_))), "{backend}");
        let suspended = store.set_org_suspended(&acme.id, true, &[]).await.unwrap();
        assert!(suspended.suspended);
        assert_eq!(store.get_org(&acme.id).await.unwrap(), suspended);
        assert_eq!(store.list_orgs().await.unwrap(), vec![suspended.clone()]);
        assert!(matches!(store.get_org("nope").await, Err(StoreError::NotFound(_))));
        assert_eq!((suspended.rate_limit_per_minute, suspended.api_version.as_deref()), (None, None));
        let limited = store.set_org_rate_limit(&acme.id, Some(120), &[]).await.unwrap();
        assert_eq!(limited.rate_limit_per_minute, Some(120), "{backend}");
        let pinned = store.set_org_api_version(&acme.id, Some("2026-10-01"), &[]).await.unwrap();
        assert_eq!((pinned.rate_limit_per_minute, pinned.api_version.as_deref()), (Some(120), Some("2026-10-01")));
        assert_eq!(store.set_org_rate_limit(&acme.id, None, &[]).await.unwrap().rate_limit_per_minute, None);
        assert!(matches!(store.set_org_rate_limit("nope", Some(1), &[]).await, Err(StoreError::NotFound(_))));
        assert!(matches!(store.set_org_suspended("nope", true, &[]).await, Err(StoreError::NotFound(_))));
    }
}

#[tokio::test]
async fn catalogs_and_grants_shape_the_principal() {
    for (backend, store) in backends().await.stores {
        let store = store.as_ref();
        let org = partner(store, "Partner").await;
        let other = partner(store, "Other").await;
        catalog(store, "zeta").await;
        catalog(store, "alpha").await;
        catalog(store, "hidden").await;
        assert!(matches!(
            store
                .create_catalog(
                    NewCatalog { key: "alpha".into(), display_name: "x".into(), source_base_url: None },
                    &[]
                )
                .await,
            Err(StoreError::Conflict(_))
        ));
        let key = mint(store, &org).await;
        assert!(store.resolve_api_key(&key.id()).await.unwrap().unwrap().catalogs.is_empty(), "{backend}");

        assert!(store.grant(&org.id, "zeta", &[]).await.unwrap());
        assert!(store.grant(&org.id, "alpha", &[]).await.unwrap());
        assert!(!store.grant(&org.id, "alpha", &[]).await.unwrap(), "granting twice changes nothing");
        store.grant(&other.id, "hidden", &[]).await.unwrap();
        let principal = store.resolve_api_key(&key.id()).await.unwrap().unwrap();
        let keys: Vec<_> = principal.catalogs.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["alpha", "zeta"], "{backend}: sorted, only this org's grants");
        assert_eq!(principal.org.id, org.id);

        assert!(store.ungrant(&org.id, "zeta", &[]).await.unwrap());
        assert!(!store.ungrant(&org.id, "zeta", &[]).await.unwrap());
        let principal = store.resolve_api_key(&key.id()).await.unwrap().unwrap();
        assert_eq!(principal.catalogs.len(), 1, "{backend}: ungrant is visible to the very next resolve");
        assert!(matches!(store.grant(&org.id, "missing", &[]).await, Err(StoreError::NotFound(Entity::Catalog(_)))));
        assert!(matches!(
            store.grant("missing", "alpha", &[]).await,
            Err(StoreError::NotFound(Entity::Organization(_)))
        ));
        let granted: Vec<_> = store.granted_catalogs(&org.id).await.unwrap().into_iter().map(|c| c.key).collect();
        assert_eq!(granted, ["alpha"]);
    }
}

#[tokio::test]
async fn api_keys_store_only_a_hash_and_revoke_immediately() {
    for (backend, store) in backends().await.stores {
        let store = store.as_ref();
        let org = partner(store, "Keys").await;
        let key = mint(store, &org).await;
        let principal = store.resolve_api_key(&key.id()).await.unwrap().unwrap();
        assert!(key.verify(&pepper(), &principal.secret_hash), "{backend}");
        assert!(!principal.revoked);
        assert!(store.resolve_api_key(&KeyId::random()).await.unwrap().is_none());

        let listed = store.list_api_keys(&org.id).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, key.id().to_string());

        let revoked = store.revoke_api_key(&key.id().to_string(), &[]).await.unwrap();
        let first_revocation = revoked.revoked_at.expect("revoked_at set");
        assert!(store.resolve_api_key(&key.id()).await.unwrap().unwrap().revoked, "{backend}");
        let again = store.revoke_api_key(&key.id().to_string(), &[]).await.unwrap();
        assert_eq!(again.revoked_at, Some(first_revocation), "a second revoke keeps the first time");
        assert!(matches!(store.revoke_api_key("0000", &[]).await, Err(StoreError::NotFound(_))));
    }
}

fn audit_event(org: Option<&str>, action: &str, target: &str) -> AuditEvent {
    AuditEvent {
        occurred_at: Timestamp::now(),
        org_id: org.map(str::to_string),
        actor: "operator".into(),
        action: action.into(),
        target: Some(target.into()),
        client_addr: Some("127.0.0.1".into()),
        detail: None,
    }
}

fn replacement_for(org: &Org) -> (ApiKey, NewApiKey) {
    let key = ApiKey::generate();
    let new = NewApiKey {
        id: key.id(),
        org_id: org.id.clone(),
        name: "replacement".into(),
        secret_hash: key.hash(&pepper()),
        expires_at: None,
    };
    (key, new)
}

#[tokio::test]
async fn audit_events_are_written_with_the_change_they_record() {
    for (backend, store) in backends().await.stores {
        let store = store.as_ref();
        let actions = |org_id: String| async move {
            let events = store.list_audit(Some(&org_id), 100).await.unwrap();
            events.into_iter().rev().map(|event| event.action).collect::<Vec<_>>()
        };
        let new = NewOrg { api_version: Some("2026-10-01".into()), ..NewOrg::new("Audited", OrgType::CatalogPartner) };
        let id = new.id.clone();
        let created = store.create_org(new, &[audit_event(Some(&id), "organization.created", &id)]).await.unwrap();
        assert_eq!((created.id.as_str(), created.api_version.as_deref()), (id.as_str(), Some("2026-10-01")));
        // A change that fails writes no event.
        let clash = NewOrg::new("audited", OrgType::Merchant);
        let clash_id = clash.id.clone();
        let refused = store.create_org(clash, &[audit_event(Some(&clash_id), "organization.created", "x")]).await;
        assert!(matches!(refused, Err(StoreError::Conflict(_))), "{backend}");
        assert!(store.list_audit(Some(&clash_id), 10).await.unwrap().is_empty(), "{backend}");

        catalog(store, "shop").await;
        for _ in 0..2 {
            store.grant(&id, "shop", &[audit_event(Some(&id), "grant.added", "shop")]).await.unwrap();
            store.ungrant(&id, "shop", &[audit_event(Some(&id), "grant.removed", "shop")]).await.unwrap();
        }
        store.ungrant(&id, "shop", &[audit_event(Some(&id), "grant.removed", "shop")]).await.unwrap();
        let suspend = [audit_event(Some(&id), "organization.suspended", &id)];
        store.set_org_suspended(&id, true, &suspend).await.unwrap();
        let nothing = [audit_event(Some("nope"), "organization.suspended", "x")];
        assert!(matches!(store.set_org_suspended("nope", true, &nothing).await, Err(StoreError::NotFound(_))));
        assert!(store.list_audit(Some("nope"), 10).await.unwrap().is_empty(), "{backend}: nothing changed");

        let key = ApiKey::generate();
        let new_key = NewApiKey {
            id: key.id(),
            org_id: id.clone(),
            name: "k".into(),
            secret_hash: key.hash(&pepper()),
            expires_at: None,
        };
        let key_id = key.id().to_string();
        store.create_api_key(new_key, &[audit_event(Some(&id), "api_key.created", &key_id)]).await.unwrap();
        for _ in 0..2 {
            store.revoke_api_key(&key_id, &[audit_event(Some(&id), "api_key.revoked", &key_id)]).await.unwrap();
        }
        let expected = [
            "organization.created",
            "grant.added",
            "grant.removed",
            "grant.added",
            "grant.removed",
            "organization.suspended",
            "api_key.created",
            "api_key.revoked",
        ];
        assert_eq!(actions(id.clone()).await, expected, "{backend}: one event per change that happened");
    }
}

#[tokio::test]
async fn rotation_ends_the_old_key_now_later_or_never() {
    for (backend, store) in backends().await.stores {
        let store = store.as_ref();
        let org = partner(store, "Rotating").await;
        let old = mint(store, &org).await;
        let old_id = old.id().to_string();
        let now = Timestamp::now();
        let in_a_day = now.plus_millis(86_400_000);

        let (_, replacement) = replacement_for(&org);
        let rotated = |id: &str| audit_event(Some(&org.id), "api_key.rotated", id);
        let (new, previous) = store
            .rotate_api_key(&old_id, replacement, OldKeyEnd::ExpiresAt(in_a_day), now, &[rotated(&old_id)])
            .await
            .unwrap();
        assert_eq!((new.org_id.as_str(), new.expires_at), (org.id.as_str(), None), "{backend}");
        assert_eq!(previous.expires_at, Some(in_a_day), "{backend}");
        assert_eq!(previous.status_at(now), KeyStatus::Active);
        assert_eq!(previous.status_at(in_a_day), KeyStatus::Expired);
        let principal = store.resolve_api_key(&old.id()).await.unwrap().unwrap();
        assert_eq!((principal.revoked, principal.expires_at), (false, Some(in_a_day)), "{backend}: seen by auth");
        assert!(store.resolve_api_key(&KeyId::parse(&new.id).unwrap()).await.unwrap().is_some());

        // A second rotation never extends the old key's life; a shorter one wins.
        let (_, later) = replacement_for(&org);
        let (_, previous) = store
            .rotate_api_key(&old_id, later, OldKeyEnd::ExpiresAt(in_a_day.plus_millis(1)), now, &[])
            .await
            .unwrap();
        assert_eq!(previous.expires_at, Some(in_a_day), "{backend}");
        let (_, sooner) = replacement_for(&org);
        let soon = now.plus_millis(1_000);
        let (_, previous) = store.rotate_api_key(&old_id, sooner, OldKeyEnd::ExpiresAt(soon), now, &[]).await.unwrap();
        assert_eq!(previous.expires_at, Some(soon), "{backend}");

        // An expired or revoked key cannot be rotated; nothing is created or recorded.
        let keys_before = store.list_api_keys(&org.id).await.unwrap().len();
        let (_, refused) = replacement_for(&org);
        let expired = store.rotate_api_key(&old_id, refused, OldKeyEnd::Revoked, soon, &[rotated("refused")]).await;
        assert!(matches!(expired, Err(StoreError::Conflict(message)) if message.contains("expired")), "{backend}");
        assert_eq!(store.list_api_keys(&org.id).await.unwrap().len(), keys_before, "{backend}");
        assert!(store
            .list_audit(Some(&org.id), 10)
            .await
            .unwrap()
            .iter()
            .all(|e| e.target.as_deref() != Some("refused")));

        let (_, revoking) = replacement_for(&org);
        let new_id = new.id.clone();
        let (_, previous) = store.rotate_api_key(&new_id, revoking, OldKeyEnd::Revoked, now, &[]).await.unwrap();
        assert_eq!(previous.status_at(now), KeyStatus::Revoked, "{backend}");
        assert!(store.resolve_api_key(&KeyId::parse(&new_id).unwrap()).await.unwrap().unwrap().revoked);
        let (_, again) = replacement_for(&org);
        let refused = store.rotate_api_key(&new_id, again, OldKeyEnd::StaysActive, now, &[]).await;
        assert!(matches!(refused, Err(StoreError::Conflict(message)) if message.contains("revoked")), "{backend}");
        let (_, missing) = replacement_for(&org);
        let refused = store.rotate_api_key("0000", missing, OldKeyEnd::StaysActive, now, &[]).await;
        assert!(matches!(refused, Err(StoreError::NotFound(_))), "{backend}");
    }
}

#[tokio::test]
async fn keys_can_be_created_with_an_expiry() {
    for (backend, store) in backends().await.stores {
        let store = store.as_ref();
        let org = partner(store, "Expiring").await;
        let (key, mut new) = replacement_for(&org);
        let at = Timestamp::from_millis(5_000_000);
        new.expires_at = Some(at);
        let info = store.create_api_key(new, &[]).await.unwrap();
        assert_eq!(info.expires_at, Some(at), "{backend}");
        assert_eq!(store.get_api_key(&info.id).await.unwrap().expires_at, Some(at));
        assert_eq!(store.resolve_api_key(&key.id()).await.unwrap().unwrap().expires_at, Some(at), "{backend}");
    }
}

#[tokio::test]
async fn key_usage_never_moves_backwards() {
    for (backend, store) in backends().await.stores {
        let store = store.as_ref();
        let org = partner(store, "Usage").await;
        let key = mint(store, &org).await;
        let later = Timestamp::from_millis(2_000_000);
        store.record_key_usage(&[(key.id(), later)]).await.unwrap();
        store.record_key_usage(&[(key.id(), Timestamp::from_millis(1_000_000))]).await.unwrap();
        let info = store.get_api_key(&key.id().to_string()).await.unwrap();
        assert_eq!(info.last_used_at, Some(later), "{backend}");
    }
}

#[tokio::test]
async fn audit_and_settings() {
    for (backend, store) in backends().await.stores {
        let store = store.as_ref();
        let org = partner(store, "Audited").await;
        for action in ["api_key.created", "api_key.revoked"] {
            store
                .append_audit(AuditEvent {
                    occurred_at: Timestamp::now(),
                    org_id: Some(org.id.clone()),
                    actor: "operator".into(),
                    action: action.into(),
                    target: Some("k1".into()),
                    client_addr: Some("127.0.0.1".into()),
                    detail: Some(serde_json::json!({"name": "ci"})),
                })
                .await
                .unwrap();
        }
        let events = store.list_audit(Some(&org.id), 10).await.unwrap();
        assert_eq!(
            events.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            ["api_key.revoked", "api_key.created"]
        );
        assert_eq!(events[0].detail, Some(serde_json::json!({"name": "ci"})), "{backend}");
        assert!(store.list_audit(Some("other"), 10).await.unwrap().is_empty());
        audit_queries_filter_and_page(backend, store, &org).await;

        assert_eq!(store.get_setting("x").await.unwrap(), None);
        store.put_setting("x", "1").await.unwrap();
        store.put_setting("x", "2").await.unwrap();
        assert_eq!(store.get_setting("x").await.unwrap().as_deref(), Some("2"));
        store.ping().await.unwrap();
    }
}

/// `query_audit`: each filter, then pages in both directions that neither skip nor repeat.
async fn audit_queries_filter_and_page(backend: &str, store: &dyn Store, org: &Org) {
    let other = partner(store, "Elsewhere").await;
    let at = |n: i64| Timestamp::from_millis(2_000_000_000_000 + n * 1000);
    for n in 0..7 {
        let (actor, action) =
            if n % 2 == 0 { ("user:Ada@Example.com", "user.signed_in") } else { ("user:b_o%b@x", "grant.added") };
        let event = AuditEvent {
            occurred_at: at(n),
            org_id: Some(org.id.clone()),
            actor: actor.into(),
            action: action.into(),
            target: Some(format!("t{n}")),
            client_addr: None,
            detail: None,
        };
        store.append_audit(event.clone()).await.unwrap();
        store.append_audit(AuditEvent { org_id: Some(other.id.clone()), ..event }).await.unwrap();
    }
    let query = |page: AuditPage| AuditQuery { org_id: Some(org.id.clone()), page, limit: 3, ..AuditQuery::default() };
    let targets = |entries: &[AuditEntry]| -> Vec<String> {
        entries.iter().map(|entry| entry.event.target.clone().unwrap_or_default()).collect()
    };
    let filtered = |query: AuditQuery| async move { targets(&store.query_audit(&query).await.unwrap()) };

    let newest = store.query_audit(&AuditQuery { limit: 100, ..query(AuditPage::Newest) }).await.unwrap();
    assert_eq!(targets(&newest)[..3], ["t6", "t5", "t4"], "{backend}: newest first, this organization only");
    assert_eq!(newest.iter().filter(|entry| entry.event.target.as_deref() == Some("t6")).count(), 1);
    let by_action = AuditQuery { actions: vec!["grant.added".into()], limit: 10, ..query(AuditPage::Newest) };
    assert_eq!(filtered(by_action).await, ["t5", "t3", "t1"], "{backend}");
    let by_actor = AuditQuery { actor_contains: Some("ADA@".into()), limit: 10, ..query(AuditPage::Newest) };
    assert_eq!(filtered(by_actor).await, ["t6", "t4", "t2", "t0"], "{backend}: case-insensitive");
    let wildcard = AuditQuery { actor_contains: Some("b_o%".into()), limit: 10, ..query(AuditPage::Newest) };
    assert_eq!(filtered(wildcard).await.len(), 3, "{backend}: % and _ are literal");
    let no_wildcard = AuditQuery { actor_contains: Some("%".into()), limit: 10, ..query(AuditPage::Newest) };
    assert_eq!(filtered(no_wildcard).await.len(), 3, "{backend}: a lone % matches only a %");
    let by_time = AuditQuery { from: Some(at(2)), until: Some(at(4)), limit: 10, ..query(AuditPage::Newest) };
    assert_eq!(filtered(by_time).await, ["t3", "t2"], "{backend}: from inclusive, until exclusive");
    let by_target = AuditQuery { targets: vec!["t1".into(), "t4".into()], limit: 10, ..query(AuditPage::Newest) };
    assert_eq!(filtered(by_target).await, ["t4", "t1"], "{backend}");

    // Paging by id: new events between page loads neither shift nor repeat a page.
    let first = store.query_audit(&query(AuditPage::Newest)).await.unwrap();
    assert_eq!(targets(&first), ["t6", "t5", "t4"]);
    store
        .append_audit(AuditEvent {
            occurred_at: at(8),
            org_id: Some(org.id.clone()),
            actor: "operator".into(),
            action: "grant.added".into(),
            target: Some("t8".into()),
            client_addr: None,
            detail: None,
        })
        .await
        .unwrap();
    let second = store.query_audit(&query(AuditPage::OlderThan(first[2].id))).await.unwrap();
    assert_eq!(targets(&second), ["t3", "t2", "t1"], "{backend}");
    let back = store.query_audit(&query(AuditPage::NewerThan(second[0].id))).await.unwrap();
    assert_eq!(targets(&back), ["t6", "t5", "t4"], "{backend}: newer pages are shown newest first too");
    let newest = store.query_audit(&query(AuditPage::NewerThan(back[0].id))).await.unwrap();
    assert_eq!(targets(&newest), ["t8"], "{backend}");
}

#[tokio::test]
async fn sqlite_refuses_a_second_process_on_the_same_file_and_reloads_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("octogen.db");
    let store = SqlStore::open_sqlite(&path).await.unwrap();
    let org = partner(&store, "Persisted").await;
    catalog(&store, "kept").await;
    store.grant(&org.id, "kept", &[]).await.unwrap();
    let key = mint(&store, &org).await;
    let second = SqlStore::open_sqlite(&path).await;
    assert!(matches!(&second, Err(StoreError::Config(message)) if message.contains("in use")));
    drop(store);

    let reopened = SqlStore::open_sqlite(&path).await.unwrap();
    let principal = reopened.resolve_api_key(&key.id()).await.unwrap().expect("directory reloaded from disk");
    assert_eq!(principal.catalogs[0].key, "kept");
}

/// A lock released a moment ago can still look busy (a child process forked
/// by another thread holds a copy of its descriptor until it execs): opening
/// waits for it briefly instead of reporting another process.
#[tokio::test]
async fn sqlite_waits_briefly_for_a_lock_that_is_being_released() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("octogen.db");
    let held =
        std::fs::File::options().create(true).truncate(false).write(true).open(path.with_extension("lock")).unwrap();
    held.try_lock().unwrap();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(held);
    });
    let store = SqlStore::open_sqlite(&path).await.expect("opened once the lock was released");
    releaser.join().unwrap();
    partner(&store, "Works").await;
}

mod index_runs {
    use super::*;
    use octogen_core::{Product, ProductRecord};

    /// A product of `catalog` whose normalized URL is `url`.
    fn staged(catalog: &Catalog, url: &str, title: &str) -> StagedProduct {
        let product = Product { url: url.into(), title: title.into(), ..Product::default() };
        StagedProduct::new(&catalog.id, url.into(), &serde_json::to_vec(&product).unwrap())
    }

    /// Staged products handed over in batches, optionally failing after some of them.
    struct Batches {
        batches: std::collections::VecDeque<Vec<StagedProduct>>,
        fail_at_end: bool,
    }

    impl Batches {
        fn of(products: &[StagedProduct], size: usize) -> Self {
            Batches { batches: products.chunks(size).map(<[StagedProduct]>::to_vec).collect(), fail_at_end: false }
        }
    }

    #[async_trait::async_trait]
    impl StagedProducts for Batches {
        async fn next_batch(&mut self) -> Result<Option<Vec<StagedProduct>>, String> {
            match self.batches.pop_front() {
                Some(batch) => Ok(Some(batch)),
                None if self.fail_at_end => Err("the staging file is truncated".into()),
                None => Ok(None),
            }
        }
    }

    async fn start_run(store: &dyn Store, catalog: &str) -> IndexRun {
        let run = store
            .create_index_run(NewIndexRun {
                catalog_key: catalog.into(),
                trigger: RunTrigger::Operator,
                format: "shopify".into(),
                source: "feed.json".into(),
            })
            .await
            .unwrap();
        assert_eq!(run.status, RunStatus::Queued);
        assert!(store.start_index_run(&run.id).await.unwrap());
        run
    }

    fn progress(seen: u64, skipped: u64) -> RunProgress {
        RunProgress { seen, skipped, ..RunProgress::default() }
    }

    async fn run(store: &dyn Store, catalog: &str, products: &[StagedProduct]) -> IndexRun {
        let run = start_run(store, catalog).await;
        let mut staged = StagedInMemory::new(products.to_vec());
        store
            .publish_index_run(&run.id, &mut staged, progress(products.len() as u64 + 1, 1), serde_json::json!({}))
            .await
            .unwrap()
    }

    async fn all_changes(store: &dyn Store) -> Vec<ProductChange> {
        let mut cursor = ChangeCursor::default();
        let mut changes = Vec::new();
        loop {
            let page = store.product_changes(&cursor, 2).await.unwrap();
            let Some(last) = page.last() else { return changes };
            cursor = last.cursor();
            changes.extend(page);
        }
    }

    /// A large publish reads (counts the staged rows) before it writes; the
    /// run's progress heartbeat writes meanwhile. On SQLite a transaction that
    /// read first then failed with SQLITE_BUSY_SNAPSHOT (seen at 1M products).
    #[tokio::test]
    async fn a_publish_succeeds_while_the_runs_progress_is_written() {
        for (backend, store) in backends().await.stores {
            let store: std::sync::Arc<dyn Store> = std::sync::Arc::from(store);
            let cat = catalog(store.as_ref(), "big").await;
            let run = start_run(store.as_ref(), "big").await;
            let products: Vec<StagedProduct> =
                (0..50_000).map(|i| staged(&cat, &format!("https://big.example/p/{i}"), &format!("P{i}"))).collect();
            let heartbeat = {
                let (store, run_id) = (store.clone(), run.id.clone());
                tokio::spawn(async move {
                    loop {
                        // Errors (e.g. the run has finished) are the heartbeat's own business.
                        let _ = store.record_run_progress(&run_id, progress(1, 0)).await;
                        tokio::task::yield_now().await;
                    }
                })
            };
            let published = store
                .publish_index_run(
                    &run.id,
                    &mut Batches::of(&products, 5_000),
                    progress(50_000, 0),
                    serde_json::json!({}),
                )
                .await;
            heartbeat.abort();
            let published = published.unwrap_or_else(|error| panic!("{backend}: {error}"));
            assert_eq!(published.status, RunStatus::Succeeded, "{backend}");
            assert_eq!(store.get_catalog("big").await.unwrap().product_count, 50_000, "{backend}");
        }
    }

    #[tokio::test]
    async fn publish_upserts_deactivates_and_counts() {
        for (backend, store) in backends().await.stores {
            let store = store.as_ref();
            let org = partner(store, "Reader").await;
            let cat = catalog(store, "shop").await;
            store.grant(&org.id, "shop", &[]).await.unwrap();
            let key = mint(store, &org).await;

            let first =
                run(store, "shop", &[staged(&cat, "a", "A"), staged(&cat, "b", "B"), staged(&cat, "c", "C")]).await;
            assert_eq!(first.status, RunStatus::Succeeded, "{backend}");
            assert_eq!(first.published_seq, Some(1));
            assert_eq!(
                first.counts,
                RunCounts { seen: 4, added: 3, updated: 0, unchanged: 0, deactivated: 0, skipped: 1 },
                "{backend}"
            );
            let shop = store.get_catalog("shop").await.unwrap();
            assert_eq!(shop.product_count, 3);
            assert!(shop.last_indexed_at.is_some());
            let granted = &store.resolve_api_key(&key.id()).await.unwrap().unwrap().catalogs[0];
            assert_eq!(granted.product_count, 3, "{backend}: the principal sees the new count at once");
            assert_eq!(store.latest_change_seq().await.unwrap(), 1);

            // b changes, c disappears, d is new, a is unchanged.
            let second =
                run(store, "shop", &[staged(&cat, "a", "A"), staged(&cat, "b", "B2"), staged(&cat, "d", "D")]).await;
            assert_eq!(
                second.counts,
                RunCounts { seen: 4, added: 1, updated: 1, unchanged: 1, deactivated: 1, skipped: 1 },
                "{backend}"
            );
            assert_eq!(store.get_catalog("shop").await.unwrap().product_count, 3);

            let changes = all_changes(store).await;
            let state: Vec<(String, bool, i64)> =
                changes.iter().map(|c| (c.record.normalized_url.clone(), c.record.is_active, c.seq)).collect();
            // a was published at seq 1 and never changed again; the rest moved to
            // seq 2, in the order the publish wrote them: changed, added, deactivated.
            assert_eq!(
                state,
                [("a".into(), true, 1), ("b".into(), true, 2), ("d".into(), true, 2), ("c".into(), false, 2)],
                "{backend}"
            );
            let b: &ProductRecord = &changes[1].record;
            let orders: Vec<(i64, i64)> = changes.iter().map(|change| (change.seq, change.order)).collect();
            assert_eq!(orders, [(1, 0), (2, 0), (2, 1), (2, 2)], "{backend}");
            assert_eq!(b.product.title, "B2");
            assert_eq!(b.catalog_key, "shop");

            let found = store.find_product(std::slice::from_ref(&cat.id), "d").await.unwrap().unwrap();
            assert_eq!(found.uuid, octogen_core::product::product_uuid(&cat.id, "d"));
            assert!(store.find_product(std::slice::from_ref(&cat.id), "c").await.unwrap().is_none(), "inactive");
            assert!(store.find_product(&[], "d").await.unwrap().is_none(), "no catalogs, no product");
            let products = store.catalog_products("shop", "", 10).await.unwrap();
            assert!(products.windows(2).all(|pair| pair[0].uuid < pair[1].uuid), "{backend}: in uuid order");
            let mut rows: Vec<(String, bool)> = products.into_iter().map(|p| (p.normalized_url, p.is_active)).collect();
            rows.sort();
            assert_eq!(rows, [("a".into(), true), ("b".into(), true), ("c".into(), false), ("d".into(), true)]);

            let runs = store.list_index_runs(Some("shop"), 10).await.unwrap();
            assert_eq!(runs.len(), 2);
            assert!(matches!(store.get_index_run("nope").await, Err(StoreError::NotFound(_))));
        }
    }

    /// Hashes stored before content hashes became xxh3 (SHA-256, unmarked)
    /// still tell an unchanged product from a changed one: an upgrade must not
    /// rewrite (and re-date) every product of every catalog.
    #[tokio::test]
    async fn content_hashes_from_before_xxh3_still_tell_unchanged_products() {
        let dir = tempfile::tempdir().unwrap();
        let mut stores = vec![("sqlite", SqlStore::open_sqlite(&dir.path().join("octogen.db")).await.unwrap())];
        if let Ok(url) = std::env::var("OCTOGEN_TEST_DATABASE_URL") {
            stores.push(("postgres", fresh_postgres(&url).await));
        }
        for (backend, store) in stores {
            let cat = catalog(&store, "hashes").await;
            let products = [staged(&cat, "a", "A"), staged(&cat, "b", "B")];
            run(&store, "hashes", &products).await;
            for (product, title) in products.iter().zip(["A", "B"]) {
                let json = serde_json::to_string(&Product {
                    url: product.url_key.clone(),
                    title: title.into(),
                    ..Product::default()
                });
                use sha2::Digest;
                let legacy = hex::encode(&sha2::Sha256::digest(json.unwrap())[..16]);
                let sql = match backend {
                    "sqlite" => "UPDATE products SET content_hash = ? WHERE uuid = ?",
                    _ => "UPDATE products SET content_hash = $1 WHERE uuid = $2",
                };
                sqlx::query(sql).bind(legacy).bind(&product.uuid).execute(store.pool()).await.unwrap();
            }
            let next = run(&store, "hashes", &[staged(&cat, "a", "A"), staged(&cat, "b", "B, changed")]).await;
            assert_eq!((next.counts.unchanged, next.counts.updated, next.counts.added), (1, 1, 0), "{backend}");
        }
    }

    /// A database from before migration 0009 (a change feed ordered by uuid, a
    /// URL index): migrated, its feed still pages through every product once,
    /// in seq order, lookups by URL find the products by their derived uuid,
    /// and the next publish's changes come after them.
    #[tokio::test]
    async fn products_written_before_change_orders_keep_their_feed_and_lookups() {
        use sqlx::Connection;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("octogen.db");
        let catalog_id = "c0ffee00-0000-4000-8000-000000000001";
        let urls = [
            "https://old.example/p/1",
            "https://old.example/p/2",
            "https://old.example/p/3",
            "https://old.example/p/4",
        ];
        {
            let mut before_0009 = sqlx::migrate!("./migrations/sqlite");
            before_0009.migrations = before_0009
                .migrations
                .iter()
                .filter(|migration| migration.version <= 8)
                .cloned()
                .collect::<Vec<_>>()
                .into();
            let mut connection =
                sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display())).await.unwrap();
            before_0009.run(&mut connection).await.unwrap();
            sqlx::query("INSERT INTO catalogs (id, catalog_key, display_name, created_at) VALUES (?, 'old', 'Old', 0)")
                .bind(catalog_id)
                .execute(&mut connection)
                .await
                .unwrap();
            // Two publishes: products 1-3 at seq 1, then 4 added and 2 deactivated at seq 2.
            for (i, url) in urls.iter().enumerate() {
                let (seq, active) = match i {
                    1 => (2, 0),
                    3 => (2, 1),
                    _ => (1, 1),
                };
                let json = serde_json::to_string(&Product {
                    url: url.to_string(),
                    title: format!("P{i}"),
                    ..Product::default()
                })
                .unwrap();
                sqlx::query(
                    "INSERT INTO products (uuid, catalog_id, url_key, data, content_hash, is_active, seq, created_at, updated_at) \
                     VALUES (?, ?, ?, ?, 'h', ?, ?, 0, 0)",
                )
                .bind(octogen_core::product::product_uuid(catalog_id, url))
                .bind(catalog_id)
                .bind(url)
                .bind(json)
                .bind(active)
                .bind(seq)
                .execute(&mut connection)
                .await
                .unwrap();
            }
            sqlx::query("UPDATE change_seq SET value = 2").execute(&mut connection).await.unwrap();
        }

        let store = SqlStore::open_sqlite(&path).await.unwrap();
        let changes = all_changes(&store).await;
        let mut seen: Vec<(i64, &str)> = changes.iter().map(|c| (c.seq, c.record.normalized_url.as_str())).collect();
        assert!(seen.windows(2).all(|pair| pair[0].0 <= pair[1].0), "in seq order: {seen:?}");
        seen.sort();
        assert_eq!(seen, [(1, urls[0]), (1, urls[2]), (2, urls[1]), (2, urls[3])]);
        let ids = [catalog_id.to_string()];
        for url in [urls[0], urls[2], urls[3]] {
            assert_eq!(store.find_product(&ids, url).await.unwrap().unwrap().normalized_url, url);
        }
        assert!(store.find_product(&ids, urls[1]).await.unwrap().is_none(), "inactive");

        let cat = store.get_catalog("old").await.unwrap();
        let next = run(&store, "old", &[staged(&cat, "https://old.example/p/5", "P5")]).await;
        assert_eq!(next.published_seq, Some(3));
        // The new publish adds p/5, then deactivates the three the feed no longer has.
        let after = all_changes(&store).await;
        let latest: Vec<(&str, bool, i64)> = after
            .iter()
            .filter(|change| change.seq == 3)
            .map(|change| (change.record.normalized_url.as_str(), change.record.is_active, change.order))
            .collect();
        assert_eq!(latest[0], ("https://old.example/p/5", true, 0));
        assert_eq!(latest.len(), 4, "{latest:?}");
        assert!(latest[1..].iter().all(|(_, active, _)| !active), "{latest:?}");
        assert_eq!(after.len(), 5, "every product once: {after:?}");
    }

    /// Feeds are deduplicated by URL before staging; should a uuid still come
    /// twice (in one batch or in two), the first is kept and counted once.
    #[tokio::test]
    async fn a_product_staged_twice_is_written_once() {
        for (backend, store) in backends().await.stores {
            let store = store.as_ref();
            let cat = catalog(store, "twice").await;
            let products = [
                staged(&cat, "a", "A"),
                staged(&cat, "a", "A again"),
                staged(&cat, "b", "B"),
                staged(&cat, "a", "A thrice"),
            ];
            let run = start_run(store, "twice").await;
            let published = store
                .publish_index_run(&run.id, &mut Batches::of(&products, 2), progress(4, 0), serde_json::json!({}))
                .await
                .unwrap();
            assert_eq!((published.counts.added, published.counts.updated), (2, 0), "{backend}");
            let rows = store.catalog_products("twice", "", 10).await.unwrap();
            let mut titles: Vec<&str> = rows.iter().map(|p| p.product.title.as_str()).collect();
            titles.sort_unstable();
            assert_eq!(titles, ["A", "B"], "{backend}");
        }
    }

    /// Rows written before products were stored compressed (migration 0008)
    /// keep their JSON in `data`, and read back as before.
    #[tokio::test]
    async fn products_stored_as_plain_json_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqlStore::open_sqlite(&dir.path().join("octogen.db")).await.unwrap();
        let cat = catalog(&store, "old").await;
        run(&store, "old", &[staged(&cat, "a", "Old A")]).await;
        let json =
            serde_json::to_string(&Product { url: "a".into(), title: "Plain A".into(), ..Product::default() }).unwrap();
        sqlx::query("UPDATE products SET data = $1, packed = NULL").bind(&json).execute(store.pool()).await.unwrap();
        let found = store.find_product(std::slice::from_ref(&cat.id), "a").await.unwrap().unwrap();
        assert_eq!(found.product.title, "Plain A");
        sqlx::query("UPDATE products SET packed = $1").bind(b"not zstd".to_vec()).execute(store.pool()).await.unwrap();
        let corrupt = store.find_product(std::slice::from_ref(&cat.id), "a").await;
        assert!(
            matches!(&corrupt, Err(StoreError::Corrupt(message)) if message.contains(&octogen_core::product::product_uuid(&cat.id, "a"))),
            "{corrupt:?}"
        );
    }

    #[tokio::test]
    async fn failed_and_interrupted_runs_change_nothing() {
        for (backend, store) in backends().await.stores {
            let store = store.as_ref();
            let cat = catalog(store, "steady").await;
            run(store, "steady", &[staged(&cat, "a", "A")]).await;
            let before = store.get_catalog("steady").await.unwrap();

            // A publish whose staged products cannot all be read writes nothing
            // (here after a first batch was written inside its transaction).
            let broken = start_run(store, "steady").await;
            let mut truncated = Batches::of(&[staged(&cat, "z", "Z"), staged(&cat, "a", "A2")], 1);
            truncated.fail_at_end = true;
            let refused =
                store.publish_index_run(&broken.id, &mut truncated, progress(2, 0), serde_json::json!({})).await;
            assert!(
                matches!(&refused, Err(StoreError::Staging(message)) if message.contains("truncated")),
                "{backend}: {refused:?}"
            );
            assert_eq!(store.get_index_run(&broken.id).await.unwrap().status, RunStatus::Running, "{backend}");
            store.fail_index_run(&broken.id, "staging lost", progress(2, 0), serde_json::json!({})).await.unwrap();

            let failing = store
                .create_index_run(NewIndexRun {
                    catalog_key: "steady".into(),
                    trigger: RunTrigger::Schedule,
                    format: "csv".into(),
                    source: "https://x".into(),
                })
                .await
                .unwrap();
            store.start_index_run(&failing.id).await.unwrap();
            let failed = store
                .fail_index_run(&failing.id, "feed truncated", progress(1, 0), serde_json::json!({}))
                .await
                .unwrap();
            assert_eq!(failed.status, RunStatus::Failed);
            assert_eq!(failed.error.as_deref(), Some("feed truncated"));
            assert!(matches!(
                store
                    .publish_index_run(
                        &failing.id,
                        &mut StagedInMemory::new(vec![staged(&cat, "z", "Z")]),
                        progress(1, 0),
                        serde_json::json!({})
                    )
                    .await,
                Err(StoreError::Conflict(_))
            ));

            let orphan = store
                .create_index_run(NewIndexRun {
                    catalog_key: "steady".into(),
                    trigger: RunTrigger::Operator,
                    format: "csv".into(),
                    source: "f".into(),
                })
                .await
                .unwrap();
            store.start_index_run(&orphan.id).await.unwrap();
            if backend == "sqlite" {
                assert_eq!(store.interrupt_unfinished_runs().await.unwrap(), vec![orphan.id.clone()]);
                assert_eq!(store.get_index_run(&orphan.id).await.unwrap().status, RunStatus::Interrupted);
            } else {
                assert!(
                    store.interrupt_unfinished_runs().await.unwrap().is_empty(),
                    "a live run on another node is left alone"
                );
            }

            let after = store.get_catalog("steady").await.unwrap();
            assert_eq!((after.product_count, after.last_indexed_at), (before.product_count, before.last_indexed_at));
            assert_eq!(all_changes(store).await.len(), 1, "{backend}: no product was touched");
        }
    }

    #[tokio::test]
    async fn catalog_sources_schedule() {
        for (_backend, store) in backends().await.stores {
            let store = store.as_ref();
            catalog(store, "fed").await;
            assert_eq!(store.get_catalog_source("fed").await.unwrap(), None);
            let source = CatalogSource {
                url: "https://fed.example/products.json".into(),
                format: "shopify".into(),
                mapping: None,
                currency: Some("GBP".into()),
                interval_secs: 3600,
                next_run_at: Timestamp::from_millis(1_000),
            };
            store.set_catalog_source("fed", Some(source.clone())).await.unwrap();
            assert_eq!(store.get_catalog_source("fed").await.unwrap(), Some(source.clone()));
            assert_eq!(store.due_catalog_sources(Timestamp::from_millis(999)).await.unwrap(), vec![]);
            assert_eq!(
                store.due_catalog_sources(Timestamp::from_millis(1_000)).await.unwrap(),
                vec![("fed".into(), source)]
            );
            let (due, later) = (Timestamp::from_millis(1_000), Timestamp::from_millis(5_000));
            assert!(store.claim_catalog_source("fed", due, later).await.unwrap(), "the first claim wins");
            assert!(!store.claim_catalog_source("fed", due, later).await.unwrap(), "a second node's claim loses");
            assert!(store.due_catalog_sources(Timestamp::from_millis(4_999)).await.unwrap().is_empty());
            store.set_catalog_source("fed", None).await.unwrap();
            assert_eq!(store.get_catalog_source("fed").await.unwrap(), None);
        }
    }

    #[tokio::test]
    async fn catalog_url_aliases_are_replaced_per_catalog() {
        use octogen_core::url_alias::UrlAliasRule;
        for (_backend, store) in backends().await.stores {
            let store = store.as_ref();
            let (fashion, shoes, plain) =
                (catalog(store, "fashion").await, catalog(store, "shoes").await, catalog(store, "plain").await);
            let ids = [fashion.id.clone(), shoes.id.clone(), plain.id.clone()];
            assert_eq!(store.catalog_url_aliases(&ids).await.unwrap(), vec![]);
            let rule = |host: &str| {
                UrlAliasRule::new(&format!("https://{host}/{{*}}/{{Id}}/buy"), &format!("https://{host}/{{Id}}"))
                    .unwrap()
            };
            store.set_catalog_url_aliases("fashion", &[rule("a.example"), rule("b.example")]).await.unwrap();
            store.set_catalog_url_aliases("shoes", &[rule("c.example")]).await.unwrap();
            let mut stored = store.catalog_url_aliases(&ids).await.unwrap();
            stored.sort();
            let mut expected = vec![
                (fashion.id.clone(), vec![rule("a.example"), rule("b.example")]),
                (shoes.id.clone(), vec![rule("c.example")]),
            ];
            expected.sort();
            assert_eq!(stored, expected);
            assert_eq!(
                store.catalog_url_aliases(std::slice::from_ref(&shoes.id)).await.unwrap().len(),
                1,
                "only the catalogs asked for"
            );
            assert_eq!(store.catalog_url_aliases(&[]).await.unwrap(), vec![]);

            store.set_catalog_url_aliases("fashion", &[rule("d.example")]).await.unwrap();
            store.set_catalog_url_aliases("shoes", &[]).await.unwrap();
            assert_eq!(
                store.catalog_url_aliases(&ids).await.unwrap(),
                vec![(fashion.id.clone(), vec![rule("d.example")])]
            );
            assert!(matches!(store.set_catalog_url_aliases("missing", &[]).await, Err(StoreError::NotFound(_))));
        }
    }
}

mod portal {
    use super::*;

    async fn user(store: &dyn Store, email: &str, is_operator: bool) -> User {
        let new = NewUser::new(email, format!("$argon2id$hash-of-{email}"), is_operator);
        store.create_user(new, &[]).await.unwrap()
    }

    fn session_for(user: &User, token_hash: &str, created_at: Timestamp) -> NewSession {
        NewSession {
            token_hash: token_hash.into(),
            user_id: user.id.clone(),
            org_id: None,
            created_at,
            expires_at: created_at.plus_millis(60_000),
            client_addr: Some("192.0.2.1".into()),
        }
    }

    #[tokio::test]
    async fn users_are_unique_by_email_and_keep_their_hash_private() {
        for (backend, store) in backends().await.stores {
            let store = store.as_ref();
            let ada = user(store, "ada@example.com", true).await;
            let duplicate = NewUser::new("ada@example.com", "x", false);
            assert!(matches!(store.create_user(duplicate, &[]).await, Err(StoreError::Conflict(_))), "{backend}");
            assert_eq!(store.get_user(&ada.id).await.unwrap(), ada);
            assert!(matches!(store.get_user("nope").await, Err(StoreError::NotFound(Entity::User(_)))));

            let credentials = store.find_user_credentials("ada@example.com").await.unwrap().unwrap();
            assert_eq!(credentials.user, ada, "{backend}");
            assert_eq!(credentials.password_hash, "$argon2id$hash-of-ada@example.com");
            assert!(!format!("{credentials:?}").contains("argon2"), "Debug redacts the hash");
            assert!(store.find_user_credentials("nobody@example.com").await.unwrap().is_none());

            let bob = user(store, "bob@example.com", false).await;
            assert_eq!(store.list_users().await.unwrap(), vec![ada.clone(), bob.clone()], "{backend}: by email");
            let promoted = store.set_user_operator(&bob.id, true, &[]).await.unwrap();
            assert!(promoted.changed && promoted.record.is_operator, "{backend}");
            assert!(!store.set_user_operator(&bob.id, true, &[]).await.unwrap().changed, "{backend}: already one");
            assert!(matches!(store.set_user_operator("nope", true, &[]).await, Err(StoreError::NotFound(_))));
        }
    }

    #[tokio::test]
    async fn memberships_carry_a_role_per_organization() {
        for (backend, store) in backends().await.stores {
            let store = store.as_ref();
            let beta = partner(store, "Beta").await;
            let alpha = partner(store, "Alpha").await;
            let ada = user(store, "ada@example.com", false).await;
            let bob = user(store, "bob@example.com", false).await;
            assert!(store.put_membership(&ada.id, &beta.id, Role::Owner, &[]).await.unwrap());
            assert!(store.put_membership(&ada.id, &alpha.id, Role::Member, &[]).await.unwrap());
            assert!(
                !store.put_membership(&ada.id, &alpha.id, Role::Member, &[]).await.unwrap(),
                "{backend}: same role"
            );
            assert!(store.put_membership(&ada.id, &alpha.id, Role::Admin, &[]).await.unwrap(), "{backend}: new role");
            store.put_membership(&bob.id, &beta.id, Role::Member, &[]).await.unwrap();

            let mine = store.user_memberships(&ada.id).await.unwrap();
            let summary: Vec<_> = mine.iter().map(|m| (m.org.name.as_str(), m.role)).collect();
            assert_eq!(summary, [("Alpha", Role::Admin), ("Beta", Role::Owner)], "{backend}: sorted by org name");
            let members = store.org_members(&beta.id).await.unwrap();
            let summary: Vec<_> = members.iter().map(|m| (m.user.email.as_str(), m.role)).collect();
            assert_eq!(summary, [("ada@example.com", Role::Owner), ("bob@example.com", Role::Member)]);

            assert!(store.remove_membership(&ada.id, &alpha.id, &[]).await.unwrap());
            assert!(!store.remove_membership(&ada.id, &alpha.id, &[]).await.unwrap());
            assert_eq!(store.user_memberships(&ada.id).await.unwrap().len(), 1);
            let missing = store.put_membership(&ada.id, "nope", Role::Member, &[]).await;
            assert!(matches!(missing, Err(StoreError::NotFound(Entity::Organization(_)))), "{backend}");
            let missing = store.put_membership("nope", &alpha.id, Role::Member, &[]).await;
            assert!(matches!(missing, Err(StoreError::NotFound(Entity::User(_)))), "{backend}");
        }
    }

    #[tokio::test]
    async fn sessions_are_found_by_token_hash_and_end() {
        for (backend, store) in backends().await.stores {
            let store = store.as_ref();
            let org = partner(store, "Org").await;
            let ada = user(store, "ada@example.com", false).await;
            let start = Timestamp::from_millis(1_000_000);
            let session = store.create_session(session_for(&ada, "hash-1", start)).await.unwrap();
            let other = store.create_session(session_for(&ada, "hash-2", start)).await.unwrap();
            assert_ne!(session.id, other.id);

            let (found, found_user) = store.find_session("hash-1").await.unwrap().unwrap();
            assert_eq!(found, session, "{backend}");
            assert_eq!(found_user, ada);
            assert!(store.find_session("hash-3").await.unwrap().is_none());

            store.touch_session(&session.id, start.plus_millis(5_000)).await.unwrap();
            store.touch_session(&session.id, start.plus_millis(1_000)).await.unwrap();
            let (found, _) = store.find_session("hash-1").await.unwrap().unwrap();
            assert_eq!(found.last_seen_at, start.plus_millis(5_000), "{backend}: never moves backwards");
            store.set_session_org(&session.id, Some(&org.id)).await.unwrap();
            assert_eq!(store.find_session("hash-1").await.unwrap().unwrap().0.org_id, Some(org.id.clone()));

            store.delete_session(&session.id).await.unwrap();
            assert!(store.find_session("hash-1").await.unwrap().is_none(), "{backend}: sign-out");
            assert!(store.find_session("hash-2").await.unwrap().is_some(), "{backend}: other sessions live on");
            assert_eq!(store.delete_user_sessions(&ada.id, &[]).await.unwrap(), 1);
            assert!(store.find_session("hash-2").await.unwrap().is_none());

            // Pruning: past the absolute end, or idle for too long.
            store.create_session(session_for(&ada, "expired", start)).await.unwrap();
            let idle = store.create_session(session_for(&ada, "idle", start.plus_millis(30_000))).await.unwrap();
            let live = store.create_session(session_for(&ada, "live", start.plus_millis(30_000))).await.unwrap();
            store.touch_session(&live.id, start.plus_millis(61_000)).await.unwrap();
            let pruned = store.prune_sessions(start.plus_millis(61_000), start.plus_millis(40_000)).await.unwrap();
            assert_eq!(pruned, 2, "{backend}");
            assert!(store.find_session("idle").await.unwrap().is_none(), "{}", idle.id);
            assert!(store.find_session("live").await.unwrap().is_some());
        }
    }

    fn flash(id: &str, session: &Session, created_at: Timestamp) -> NewFlash {
        NewFlash {
            id: id.into(),
            session_id: session.id.clone(),
            kind: "api_key.created".into(),
            detail: r#"{"key":"k1"}"#.into(),
            sealed: format!("sealed-{id}"),
            created_at,
            expires_at: created_at.plus_millis(600_000),
        }
    }

    #[tokio::test]
    async fn a_flash_gives_its_secret_once_to_its_session_until_it_expires() {
        for (backend, store) in backends().await.stores {
            let store = store.as_ref();
            let ada = user(store, "ada@example.com", false).await;
            let start = Timestamp::from_millis(1_000_000);
            let mine = store.create_session(session_for(&ada, "hash-1", start)).await.unwrap();
            let theirs = store.create_session(session_for(&ada, "hash-2", start)).await.unwrap();
            store.create_flash(flash("f1", &mine, start)).await.unwrap();

            assert!(store.take_flash("f1", &theirs.id, start).await.unwrap().is_none(), "{backend}: another session's");
            let taken = store.take_flash("f1", &mine.id, start.plus_millis(1)).await.unwrap().unwrap();
            assert_eq!(taken.sealed.as_deref(), Some("sealed-f1"), "{backend}");
            assert_eq!((taken.kind.as_str(), taken.detail.as_str()), ("api_key.created", r#"{"key":"k1"}"#));
            assert!(!format!("{taken:?}").contains("sealed-f1"), "Debug redacts the sealed part");
            let again = store.take_flash("f1", &mine.id, start.plus_millis(2)).await.unwrap().unwrap();
            assert_eq!(again.sealed, None, "{backend}: shown once; the rest of the message stays");
            assert_eq!(again.detail, taken.detail);

            // Expired: gone for the reader, and deleted by the next write.
            store.create_flash(flash("f2", &mine, start)).await.unwrap();
            assert!(store.take_flash("f2", &mine.id, start.plus_millis(600_000)).await.unwrap().is_none(), "{backend}");
            store.create_flash(flash("f3", &mine, start.plus_millis(600_000))).await.unwrap();
            let db_rows = store.take_flash("f2", &mine.id, start).await.unwrap();
            assert!(db_rows.is_none(), "{backend}: an expired flash is deleted, not just hidden");

            // A flash ends with its session.
            store.delete_session(&mine.id).await.unwrap();
            assert!(store.take_flash("f3", &mine.id, start.plus_millis(600_001)).await.unwrap().is_none(), "{backend}");
        }
    }

    const POLICY: ThrottlePolicy = ThrottlePolicy {
        free_failures: 2,
        first_delay_millis: 1_000,
        max_delay_millis: 4_000,
        forget_after_millis: 60_000,
    };

    fn scope(key: &str) -> ThrottleScope<'_> {
        ThrottleScope { key, policy: POLICY }
    }

    async fn admitted(store: &dyn Store, scopes: &[ThrottleScope<'_>], at: Timestamp) -> bool {
        match store.admit_sign_in(scopes, at).await.unwrap() {
            SignInAdmission::Admitted => true,
            SignInAdmission::Throttled { retry_at } => {
                assert!(retry_at > at, "a refusal names a later time");
                false
            }
        }
    }

    #[tokio::test]
    async fn sign_in_attempts_wait_twice_as_long_after_each_failure() {
        for (backend, store) in backends().await.stores {
            let store = store.as_ref();
            let at = |millis: i64| Timestamp::from_millis(1_000_000 + millis);
            let account = [scope("account:x")];
            assert!(admitted(store, &account, at(0)).await, "{backend}: free");
            assert!(admitted(store, &account, at(0)).await, "{backend}: free");
            // Two failures: the next attempt waits 1 s, then 2 s, then 4 s (the cap), and stays there.
            let refused = store.admit_sign_in(&account, at(0)).await.unwrap();
            assert_eq!(refused, SignInAdmission::Throttled { retry_at: at(1_000) }, "{backend}");
            assert!(!admitted(store, &account, at(999)).await);
            assert!(admitted(store, &account, at(1_000)).await, "{backend}: the wait is over");
            assert!(!admitted(store, &account, at(2_999)).await);
            assert!(admitted(store, &account, at(3_000)).await);
            assert_eq!(
                store.admit_sign_in(&account, at(3_000)).await.unwrap(),
                SignInAdmission::Throttled { retry_at: at(7_000) }
            );
            assert!(admitted(store, &account, at(7_000)).await);
            assert!(!admitted(store, &account, at(10_999)).await, "{backend}: capped at 4 s");
            assert!(admitted(store, &account, at(11_000)).await);

            // Both scopes must admit; a refusal by one changes neither.
            let both = [scope("account:x"), scope("address:y")];
            assert!(!admitted(store, &both, at(12_000)).await, "{backend}: the account still waits");
            assert!(admitted(store, &[scope("address:y")], at(12_000)).await, "the address counted nothing");
            assert!(admitted(store, &both, at(15_000)).await);
            // A right password forgets the account's failures and takes back the address's attempt.
            store.sign_in_succeeded("account:x", Some("address:y")).await.unwrap();
            assert!(admitted(store, &account, at(15_001)).await, "{backend}: forgotten");
            assert!(admitted(store, &[scope("address:y")], at(15_001)).await, "{backend}: one failure left");
            assert!(!admitted(store, &[scope("address:y")], at(15_001)).await, "{backend}: now two");

            // A scope left alone for the forget period starts over; pruning removes it.
            assert!(admitted(store, &account, at(15_001 + 60_000)).await);
            assert!(admitted(store, &account, at(15_001 + 60_000)).await, "{backend}: free again");
            assert_eq!(store.prune_sign_in_throttle(at(20_000)).await.unwrap(), 1, "{backend}: address:y was idle");
        }
    }

    #[tokio::test]
    async fn parallel_attempts_are_admitted_one_at_a_time() {
        for (backend, store) in backends().await.stores {
            let store: std::sync::Arc<dyn Store> = std::sync::Arc::from(store);
            let now = Timestamp::now();
            let attempts: Vec<_> = (0..40)
                .map(|_| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        store.admit_sign_in(&[scope("account:race"), scope("address:race")], now).await.unwrap()
                    })
                })
                .collect();
            let mut admitted = 0;
            for attempt in attempts {
                if attempt.await.unwrap() == SignInAdmission::Admitted {
                    admitted += 1;
                }
            }
            assert_eq!(admitted, POLICY.free_failures, "{backend}: only the free attempts, however many run at once");
        }
    }

    #[tokio::test]
    async fn disabled_users_have_no_sessions() {
        for (backend, store) in backends().await.stores {
            let store = store.as_ref();
            let ada = user(store, "ada@example.com", false).await;
            let start = Timestamp::now();
            store.create_session(session_for(&ada, "hash-1", start)).await.unwrap();
            let disabled = store.set_user_disabled(&ada.id, Some(start), &[event("user.disabled")]).await.unwrap();
            assert!(disabled.changed && disabled.record.is_disabled(), "{backend}");
            assert_eq!(disabled.record.disabled_at, Some(start));
            assert!(store.find_session("hash-1").await.unwrap().is_none(), "{backend}: deleted with the disable");
            let again = store.set_user_disabled(&ada.id, Some(start), &[event("user.disabled")]).await.unwrap();
            assert!(!again.changed);
            assert_eq!(actions(store).await, ["user.disabled"], "{backend}: one event for one change");
            // A session written after the disable (a sign-in that raced it) is never found.
            store.create_session(session_for(&ada, "hash-2", start)).await.unwrap();
            assert!(store.find_session("hash-2").await.unwrap().is_none(), "{backend}");
            let credentials = store.find_user_credentials("ada@example.com").await.unwrap().unwrap();
            assert!(credentials.user.is_disabled(), "sign-in sees the flag");

            let enabled = store.set_user_disabled(&ada.id, None, &[event("user.enabled")]).await.unwrap();
            assert!(enabled.changed && !enabled.record.is_disabled(), "{backend}");
            assert!(matches!(store.set_user_disabled("nope", None, &[]).await, Err(StoreError::NotFound(_))));
            store.create_session(session_for(&ada, "hash-3", start)).await.unwrap();
            assert_eq!(store.delete_user_sessions(&ada.id, &[event("user.sessions_revoked")]).await.unwrap(), 2);
            assert_eq!(store.delete_user_sessions(&ada.id, &[event("user.sessions_revoked")]).await.unwrap(), 0);
            let expected = ["user.sessions_revoked", "user.sessions_revoked", "user.enabled", "user.disabled"];
            assert_eq!(actions(store).await, expected, "{backend}: revoking is recorded even with nothing to end");
        }
    }

    #[tokio::test]
    async fn password_reset_links_are_used_once_before_they_expire() {
        for (backend, store) in backends().await.stores {
            let store = store.as_ref();
            let ada = user(store, "ada@example.com", false).await;
            let start = Timestamp::from_millis(1_000_000);
            let link = |hash: &str| NewPasswordReset {
                token_hash: hash.into(),
                user_id: ada.id.clone(),
                created_at: start,
                expires_at: start.plus_millis(1_000),
            };
            store.create_password_reset(link("first"), &[event("user.password_reset_issued")]).await.unwrap();
            assert_eq!(store.find_password_reset("first", start).await.unwrap().map(|u| u.id), Some(ada.id.clone()));
            store.create_password_reset(link("second"), &[]).await.unwrap();
            assert!(store.find_password_reset("first", start).await.unwrap().is_none(), "{backend}: replaced");
            assert!(store.find_password_reset("second", start.plus_millis(1_000)).await.unwrap().is_none(), "expired");
            let missing = NewPasswordReset { user_id: "nope".into(), ..link("x") };
            assert!(
                matches!(store.create_password_reset(missing, &[]).await, Err(StoreError::NotFound(_))),
                "{backend}"
            );

            store.create_session(session_for(&ada, "signed-in", start)).await.unwrap();
            let used = |user_id: String| async move {
                let audit = [event("user.password_reset")];
                store.use_password_reset("second", &user_id, start.plus_millis(10), "$argon2id$new", &audit).await
            };
            assert_eq!(used("someone-else".into()).await.unwrap(), None, "{backend}: another user's link");
            assert_eq!(used(ada.id.clone()).await.unwrap().map(|u| u.id), Some(ada.id.clone()), "{backend}");
            assert_eq!(used(ada.id.clone()).await.unwrap(), None, "{backend}: used once");
            let credentials = store.find_user_credentials("ada@example.com").await.unwrap().unwrap();
            assert_eq!(credentials.password_hash, "$argon2id$new");
            assert!(store.find_session("signed-in").await.unwrap().is_none(), "{backend}: signed out everywhere");
            assert_eq!(actions(store).await, ["user.password_reset", "user.password_reset_issued"], "{backend}");
        }
    }

    fn event(action: &str) -> AuditEvent {
        AuditEvent {
            occurred_at: Timestamp::now(),
            org_id: None,
            actor: "operator".into(),
            action: action.into(),
            target: None,
            client_addr: None,
            detail: None,
        }
    }

    async fn actions(store: &dyn Store) -> Vec<String> {
        store.list_audit(None, 100).await.unwrap().into_iter().map(|event| event.action).collect()
    }
}

mod coordination {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn shared_buckets_follow_the_token_arithmetic() {
        for (backend, store) in backends().await.stores {
            let store = store.as_ref();
            let at = |millis: i64| Timestamp::from_millis(1_000_000 + millis);
            for expected in (0..3).rev() {
                let take = store.take_rate_token("org:a", 3, at(0)).await.unwrap();
                assert!(take.allowed, "{backend}");
                assert!((take.tokens - f64::from(expected)).abs() < 1e-9, "{backend}: {take:?}");
            }
            assert!(!store.take_rate_token("org:a", 3, at(0)).await.unwrap().allowed, "{backend}: empty");
            // 3 per minute = one token every 20 s.
            assert!(!store.take_rate_token("org:a", 3, at(19_000)).await.unwrap().allowed);
            assert!(store.take_rate_token("org:a", 3, at(20_000)).await.unwrap().allowed, "{backend}: refilled");
            // Raising the limit adds the new capacity at once.
            let raised = store.take_rate_token("org:a", 10, at(20_000)).await.unwrap();
            assert!(raised.allowed && (raised.tokens - 6.0).abs() < 1e-9, "{backend}: {raised:?}");
            assert!(store.take_rate_token("org:b", 3, at(0)).await.unwrap().allowed, "separate buckets");
            assert_eq!(store.prune_rate_buckets(at(10_000)).await.unwrap(), 1, "{backend}: org:b was idle");
        }
    }

    #[tokio::test]
    async fn one_run_per_catalog_at_a_time() {
        for (backend, store) in backends().await.stores {
            let store: std::sync::Arc<dyn Store> = std::sync::Arc::from(store);
            let first = store.lock_catalog("shop").await.unwrap();
            let other = store.lock_catalog("other-shop").await.unwrap();
            let waiting = {
                let store = store.clone();
                tokio::spawn(async move { store.lock_catalog("shop").await.map(|_| ()) })
            };
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert!(!waiting.is_finished(), "{backend}: the second lock waits");
            drop(first);
            tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("released").unwrap().unwrap();
            drop(other);
        }
    }
}

#[path = "suite/oauth.rs"]
mod oauth;
