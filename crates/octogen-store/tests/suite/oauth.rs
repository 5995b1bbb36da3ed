//! OAuth 2.1 state (migrations 0005 and 0010): clients, answered requests,
//! grants, codes, tokens, their audit events, pruning, and the organization
//! lookup of OAuth callers.

use octogen_core::Timestamp;
use octogen_store::*;

use super::{backends, catalog, partner};

struct Member {
    user: User,
    org: Org,
    session: Session,
}

async fn member(store: &dyn Store, email: &str) -> Member {
    let org = partner(store, &format!("Org of {email}")).await;
    let user = store.create_user(NewUser::new(email, "x", false), &[]).await.unwrap();
    store.put_membership(&user.id, &org.id, Role::Member, &[]).await.unwrap();
    let now = Timestamp::now();
    let session = store
        .create_session(NewSession {
            token_hash: format!("session-of-{email}"),
            user_id: user.id.clone(),
            org_id: Some(org.id.clone()),
            created_at: now,
            expires_at: now.plus_millis(3_600_000),
            client_addr: None,
        })
        .await
        .unwrap();
    Member { user, org, session }
}

fn client(id: &str, now: Timestamp) -> NewOAuthClient {
    NewOAuthClient {
        id: id.into(),
        kind: ClientKind::Registered,
        name: Some("Agent".into()),
        redirect_uris: vec!["http://127.0.0.1/callback".into()],
        auth_method: ClientAuthMethod::ClientSecretPost,
        secret_hash: Some("secret-hash".into()),
        metadata: serde_json::json!({"grant_types": ["authorization_code"]}),
        now,
    }
}

/// An audit event of `action` (on `org`, when given).
fn event(action: &str, org: Option<&Org>) -> AuditEvent {
    AuditEvent {
        occurred_at: Timestamp::now(),
        org_id: org.map(|org| org.id.clone()),
        actor: "system".into(),
        action: action.into(),
        target: None,
        client_addr: None,
        detail: None,
    }
}

/// The actions of the audit log, oldest first.
async fn actions(store: &dyn Store) -> Vec<String> {
    store.list_audit(None, 100).await.unwrap().into_iter().rev().map(|event| event.action).collect()
}

async fn approve(store: &dyn Store, who: &Member, client_id: &str, code_hash: &str) -> OAuthGrant {
    approve_at(store, who, client_id, code_hash, Timestamp::now()).await
}

async fn approve_at(store: &dyn Store, who: &Member, client_id: &str, code_hash: &str, now: Timestamp) -> OAuthGrant {
    store
        .create_oauth_grant(
            NewOAuthGrant {
                id: uuid::Uuid::new_v4().to_string(),
                client_id: client_id.into(),
                user_id: who.user.id.clone(),
                org_id: who.org.id.clone(),
                session_id: who.session.id.clone(),
                issuer: "http://octo.test".into(),
                resource: "http://octo.test/mcp".into(),
                scope: "catalog".into(),
                created_at: now,
            },
            NewAuthorizationCode {
                code_hash: code_hash.into(),
                redirect_uri: "http://127.0.0.1:5000/callback".into(),
                code_challenge: "challenge".into(),
                created_at: now,
                expires_at: now.plus_millis(300_000),
            },
            event("oauth.authorized", Some(&who.org)),
        )
        .await
        .unwrap()
}

async fn issue(store: &dyn Store, grant: &OAuthGrant, tokens: Vec<NewOAuthToken>) {
    store.issue_oauth_tokens(&grant.id, tokens, event("oauth.tokens_issued", None)).await.unwrap();
}

fn token(hash: &str, kind: TokenKind, lifetime_millis: i64) -> NewOAuthToken {
    token_at(hash, kind, Timestamp::now(), lifetime_millis)
}

fn token_at(hash: &str, kind: TokenKind, at: Timestamp, lifetime_millis: i64) -> NewOAuthToken {
    NewOAuthToken { token_hash: hash.into(), kind, created_at: at, expires_at: at.plus_millis(lifetime_millis) }
}

#[tokio::test]
async fn the_org_principal_follows_every_grant_change() {
    for (backend, store) in backends().await.stores {
        let store = store.as_ref();
        let org = partner(store, "Agents Inc").await;
        catalog(store, "alpha").await;
        catalog(store, "beta").await;
        assert!(store.org_principal("nope").await.unwrap().is_none(), "{backend}");
        let keys = |principal: OrgPrincipal| principal.catalogs.iter().map(|c| c.key.clone()).collect::<Vec<_>>();
        assert!(keys(store.org_principal(&org.id).await.unwrap().unwrap()).is_empty());
        store.grant(&org.id, "beta", &[]).await.unwrap();
        store.grant(&org.id, "alpha", &[]).await.unwrap();
        assert_eq!(keys(store.org_principal(&org.id).await.unwrap().unwrap()), ["alpha", "beta"], "{backend}");
        store.ungrant(&org.id, "alpha", &[]).await.unwrap();
        store.set_catalog_active("beta", false, &[]).await.unwrap();
        assert!(keys(store.org_principal(&org.id).await.unwrap().unwrap()).is_empty(), "{backend}");
        store.set_catalog_active("beta", true, &[]).await.unwrap();
        store.set_org_suspended(&org.id, true, &[]).await.unwrap();
        let principal = store.org_principal(&org.id).await.unwrap().unwrap();
        assert!(principal.org.suspended, "{backend}");
        assert_eq!(principal.org.org_type, OrgType::CatalogPartner);
        assert_eq!(keys(principal), ["beta"]);
    }
}

#[tokio::test]
async fn clients_are_registered_once_and_metadata_documents_refreshed() {
    for (backend, store) in backends().await.stores {
        let store = store.as_ref();
        let now = Timestamp::now();
        let created =
            store.create_oauth_client(client("c1", now), event("oauth.client_registered", None)).await.unwrap();
        assert_eq!(created.auth_method, ClientAuthMethod::ClientSecretPost, "{backend}");
        assert_eq!(created.redirect_uris, ["http://127.0.0.1/callback"]);
        assert_eq!(created.last_used_at, None, "{backend}: nobody approved it yet");
        assert!(!format!("{created:?}").contains("secret-hash"), "the secret hash is redacted");
        let taken = store.create_oauth_client(client("c1", now), event("oauth.client_registered", None)).await;
        assert!(matches!(taken, Err(StoreError::Conflict(_))));
        assert_eq!(
            actions(store).await,
            ["oauth.client_registered"],
            "{backend}: a refused registration is not logged"
        );
        assert_eq!(store.get_oauth_client("c1").await.unwrap(), Some(created), "{backend}");
        assert!(store.get_oauth_client("c2").await.unwrap().is_none());

        let url = "https://agent.example/client.json";
        let mut document = client(url, now);
        document.kind = ClientKind::MetadataDocument;
        document.auth_method = ClientAuthMethod::None;
        document.secret_hash = None;
        store.put_oauth_client(document).await.unwrap();
        let mut changed = client(url, now.plus_millis(1000));
        changed.kind = ClientKind::MetadataDocument;
        changed.auth_method = ClientAuthMethod::None;
        changed.secret_hash = None;
        changed.redirect_uris = vec!["https://agent.example/cb".into()];
        let refreshed = store.put_oauth_client(changed).await.unwrap();
        assert_eq!(refreshed.redirect_uris, ["https://agent.example/cb"], "{backend}");
        assert_eq!((refreshed.created_at, refreshed.updated_at), (now, now.plus_millis(1000)));
    }
}

#[tokio::test]
async fn requests_are_answered_once() {
    for (backend, store) in backends().await.stores {
        let store = store.as_ref();
        let expires_at = Timestamp::now().plus_millis(600_000);
        let answers =
            futures_util::future::join_all((0..8).map(|_| store.answer_oauth_request("r1", expires_at))).await;
        let winners = answers.into_iter().map(Result::unwrap).filter(|won| *won).count();
        assert_eq!(winners, 1, "{backend}: of concurrent answers exactly one counts");
        assert!(!store.answer_oauth_request("r1", expires_at).await.unwrap());
        assert!(store.answer_oauth_request("r2", expires_at).await.unwrap());
    }
}

#[tokio::test]
async fn codes_redeem_once_and_refresh_tokens_rotate_once() {
    for (backend, store) in backends().await.stores {
        let store = store.as_ref();
        let who = member(store, "agent@acme.test").await;
        store
            .create_oauth_client(client("c1", Timestamp::now()), event("oauth.client_registered", None))
            .await
            .unwrap();
        let grant = approve(store, &who, "c1", "code-1").await;

        let CodeRedemption::Redeemed(redeemed) =
            store.redeem_authorization_code("code-1", Timestamp::now()).await.unwrap()
        else {
            panic!("{backend}: the first exchange redeems the code")
        };
        assert_eq!(redeemed.grant, grant);
        assert_eq!(
            (redeemed.redirect_uri.as_str(), redeemed.code_challenge.as_str()),
            ("http://127.0.0.1:5000/callback", "challenge")
        );
        assert_eq!(
            store.redeem_authorization_code("code-1", Timestamp::now()).await.unwrap(),
            CodeRedemption::Replayed { grant_id: grant.id.clone() },
            "{backend}"
        );
        assert_eq!(store.redeem_authorization_code("code-x", Timestamp::now()).await.unwrap(), CodeRedemption::Unknown);

        issue(
            store,
            &grant,
            vec![token("access-1", TokenKind::Access, 300_000), token("refresh-1", TokenKind::Refresh, 3_600_000)],
        )
        .await;
        let found = store.find_oauth_token("access-1", TokenKind::Access).await.unwrap().unwrap();
        assert_eq!((found.grant.id.as_str(), found.kind, found.used_at), (grant.id.as_str(), TokenKind::Access, None));
        assert_eq!(found.session_expires_at, who.session.expires_at, "{backend}");
        assert!(store.find_oauth_token("access-1", TokenKind::Refresh).await.unwrap().is_none(), "kinds differ");
        assert!(store.find_oauth_token("refresh-1", TokenKind::Access).await.unwrap().is_none());

        let rotated = store
            .rotate_refresh_token(
                "refresh-1",
                Timestamp::now(),
                vec![token("access-2", TokenKind::Access, 300_000), token("refresh-2", TokenKind::Refresh, 3_600_000)],
            )
            .await
            .unwrap();
        assert_eq!(rotated, RefreshRotation::Rotated, "{backend}");
        let spent = store.find_oauth_token("refresh-1", TokenKind::Refresh).await.unwrap().unwrap();
        assert!(spent.used_at.is_some(), "{backend}: a spent refresh token is marked, for reuse detection");
        assert!(store.find_oauth_token("access-2", TokenKind::Access).await.unwrap().is_some());
        let again = store
            .rotate_refresh_token("refresh-1", Timestamp::now(), vec![token("access-3", TokenKind::Access, 300_000)])
            .await
            .unwrap();
        assert_eq!(again, RefreshRotation::Replayed { grant_id: grant.id.clone() }, "{backend}");
        assert!(store.find_oauth_token("access-3", TokenKind::Access).await.unwrap().is_none(), "nothing issued");
        assert_eq!(
            store.rotate_refresh_token("refresh-x", Timestamp::now(), Vec::new()).await.unwrap(),
            RefreshRotation::Unknown
        );

        // Revoking the grant ends the whole family; its event is written by the call that revoked it.
        let revoked = event("oauth.grant_revoked", Some(&who.org));
        assert!(store
            .revoke_oauth_grant(&grant.id, Timestamp::now(), "refresh_token_reuse", revoked.clone())
            .await
            .unwrap());
        assert!(!store.revoke_oauth_grant(&grant.id, Timestamp::now(), "again", revoked).await.unwrap());
        assert_eq!(
            actions(store).await,
            ["oauth.client_registered", "oauth.authorized", "oauth.tokens_issued", "oauth.grant_revoked"],
            "{backend}"
        );
        for (hash, kind) in [("access-2", TokenKind::Access), ("refresh-2", TokenKind::Refresh)] {
            assert!(store.find_oauth_token(hash, kind).await.unwrap().is_none(), "{backend}: {hash}");
        }
        let revoked = store.get_oauth_grant(&grant.id).await.unwrap().unwrap();
        assert_eq!(revoked.revoked_reason.as_deref(), Some("refresh_token_reuse"));
    }
}

#[tokio::test]
async fn tokens_end_with_the_session_and_the_membership() {
    for (backend, store) in backends().await.stores {
        let store = store.as_ref();
        store
            .create_oauth_client(client("c1", Timestamp::now()), event("oauth.client_registered", None))
            .await
            .unwrap();
        let signed_out = member(store, "leaves@acme.test").await;
        let grant = approve(store, &signed_out, "c1", "code-a").await;
        issue(store, &grant, vec![token("a-access", TokenKind::Access, 300_000)]).await;
        assert!(store.find_oauth_token("a-access", TokenKind::Access).await.unwrap().is_some());
        store.delete_session(&signed_out.session.id).await.unwrap();
        assert!(store.find_oauth_token("a-access", TokenKind::Access).await.unwrap().is_none(), "{backend}");
        assert!(
            store.get_oauth_grant(&grant.id).await.unwrap().is_none(),
            "{backend}: the grant went with the session"
        );

        let leaver = member(store, "member@acme.test").await;
        let grant = approve(store, &leaver, "c1", "code-b").await;
        issue(store, &grant, vec![token("b-access", TokenKind::Access, 300_000)]).await;
        store.remove_membership(&leaver.user.id, &leaver.org.id, &[]).await.unwrap();
        assert!(store.find_oauth_token("b-access", TokenKind::Access).await.unwrap().is_none(), "{backend}");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        store.put_membership(&leaver.user.id, &leaver.org.id, Role::Owner, &[]).await.unwrap();
        assert!(
            store.find_oauth_token("b-access", TokenKind::Access).await.unwrap().is_none(),
            "{backend}: re-joining does not revive tokens approved before leaving"
        );
    }
}

#[tokio::test]
async fn pruning_forgets_expired_state() {
    for (backend, store) in backends().await.stores {
        let store = store.as_ref();
        let now = Timestamp::now();
        let long_ago = now.plus_millis(-1);
        store.create_oauth_client(client("c1", now), event("oauth.client_registered", None)).await.unwrap();
        let who = member(store, "prune@acme.test").await;
        let grant = approve(store, &who, "c1", "code-p").await;
        issue(
            store,
            &grant,
            vec![token("p-access", TokenKind::Access, 300_000), token("p-refresh", TokenKind::Refresh, 3_600_000)],
        )
        .await;
        store.answer_oauth_request("old", now.plus_millis(1000)).await.unwrap();
        store.prune_oauth(now, long_ago).await.unwrap();
        assert!(store.find_oauth_token("p-access", TokenKind::Access).await.unwrap().is_some(), "{backend}");
        assert!(!store.answer_oauth_request("old", now.plus_millis(1000)).await.unwrap(), "still answered");
        // Ten minutes on: the answer, the code and the access token have expired.
        store.prune_oauth(now.plus_millis(600_000), long_ago).await.unwrap();
        assert!(store.answer_oauth_request("old", now.plus_millis(1000)).await.unwrap(), "{backend}: forgotten");
        assert!(store.find_oauth_token("p-access", TokenKind::Access).await.unwrap().is_none());
        assert!(store.find_oauth_token("p-refresh", TokenKind::Refresh).await.unwrap().is_some(), "{backend}");
        // Two hours on: nothing is left of the grant.
        store.prune_oauth(now.plus_millis(7_200_000), long_ago).await.unwrap();
        assert!(store.get_oauth_grant(&grant.id).await.unwrap().is_none(), "{backend}");
        assert!(store.get_oauth_client("c1").await.unwrap().is_some(), "{backend}: the client stays");
    }
}

#[tokio::test]
async fn clients_unused_for_a_while_are_pruned_with_everything_of_theirs() {
    for (backend, store) in backends().await.stores {
        let store = store.as_ref();
        let day = 24 * 3600 * 1000;
        let start = Timestamp::now().plus_millis(-40 * day);
        for id in ["never-used", "approved", "refreshed"] {
            store.create_oauth_client(client(id, start), event("oauth.client_registered", None)).await.unwrap();
        }
        let who = member(store, "clients@acme.test").await;
        // Approved 20 days in: that counts as use.
        let approved = approve_at(store, &who, "approved", "code-approved", start.plus_millis(20 * day)).await;
        let used = store.get_oauth_client("approved").await.unwrap().unwrap().last_used_at;
        assert_eq!(used, Some(start.plus_millis(20 * day)), "{backend}");
        // Approved at the start, refreshed 25 days in: refreshes count too.
        let refreshed = approve_at(store, &who, "refreshed", "code-refreshed", start).await;
        issue(store, &refreshed, vec![token_at("r-refresh", TokenKind::Refresh, start, 60 * day)]).await;
        let at = start.plus_millis(25 * day);
        let rotated = store
            .rotate_refresh_token("r-refresh", at, vec![token_at("r2", TokenKind::Refresh, at, day)])
            .await
            .unwrap();
        assert_eq!(rotated, RefreshRotation::Rotated);
        let used = store.get_oauth_client("refreshed").await.unwrap().unwrap().last_used_at;
        assert_eq!(used, Some(start.plus_millis(25 * day)), "{backend}");
        // 40 days after the start, prune what was unused for 18 days (since day 22).
        store.prune_oauth(Timestamp::now(), start.plus_millis(22 * day)).await.unwrap();
        assert!(store.get_oauth_client("never-used").await.unwrap().is_none(), "{backend}");
        assert!(store.get_oauth_client("approved").await.unwrap().is_none(), "{backend}");
        assert!(store.get_oauth_grant(&approved.id).await.unwrap().is_none(), "{backend}: its grant went with it");
        assert!(store.get_oauth_client("refreshed").await.unwrap().is_some(), "{backend}");
    }
}

#[tokio::test]
async fn disabling_a_user_ends_their_grants_and_tokens() {
    for (backend, store) in backends().await.stores {
        let store = store.as_ref();
        store
            .create_oauth_client(client("c1", Timestamp::now()), event("oauth.client_registered", None))
            .await
            .unwrap();
        let agent_user = member(store, "agent-user@example.com").await;
        let grant = approve(store, &agent_user, "c1", "d-code").await;
        issue(store, &grant, vec![token("d-access", TokenKind::Access, 300_000)]).await;
        assert!(store.find_oauth_token("d-access", TokenKind::Access).await.unwrap().is_some());
        store.set_user_disabled(&agent_user.user.id, Some(Timestamp::now()), &[]).await.unwrap();
        assert!(store.find_oauth_token("d-access", TokenKind::Access).await.unwrap().is_none(), "{backend}");
    }
}
