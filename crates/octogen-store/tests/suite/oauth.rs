//! OAuth 2.1 state (migration 0005): clients, pending requests, grants, codes,
//! tokens, and the organization lookup of OAuth callers.

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
        metadata: serde_json::json!({"client_name": "Agent"}),
        now,
    }
}

async fn approve(store: &dyn Store, who: &Member, client_id: &str, code_hash: &str) -> OAuthGrant {
    let now = Timestamp::now();
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
        )
        .await
        .unwrap()
}

fn token(hash: &str, kind: TokenKind, lifetime_millis: i64) -> NewOAuthToken {
    let now = Timestamp::now();
    NewOAuthToken { token_hash: hash.into(), kind, created_at: now, expires_at: now.plus_millis(lifetime_millis) }
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
        let created = store.create_oauth_client(client("c1", now)).await.unwrap();
        assert_eq!(created.auth_method, ClientAuthMethod::ClientSecretPost, "{backend}");
        assert_eq!(created.redirect_uris, ["http://127.0.0.1/callback"]);
        assert!(!format!("{created:?}").contains("secret-hash"), "the secret hash is redacted");
        assert!(matches!(store.create_oauth_client(client("c1", now)).await, Err(StoreError::Conflict(_))));
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
async fn pending_requests_are_taken_once() {
    for (backend, store) in backends().await.stores {
        let store = store.as_ref();
        let now = Timestamp::now();
        let pending = PendingAuthorization {
            id: "r1".into(),
            request: "{\"client_id\":\"c\"}".into(),
            created_at: now,
            expires_at: now.plus_millis(600_000),
        };
        store.create_oauth_request(pending.clone()).await.unwrap();
        assert_eq!(store.get_oauth_request("r1").await.unwrap(), Some(pending), "{backend}");
        assert!(store.take_oauth_request("r1").await.unwrap());
        assert!(!store.take_oauth_request("r1").await.unwrap(), "{backend}: single use");
        assert!(store.get_oauth_request("r1").await.unwrap().is_none());
    }
}

#[tokio::test]
async fn codes_redeem_once_and_refresh_tokens_rotate_once() {
    for (backend, store) in backends().await.stores {
        let store = store.as_ref();
        let who = member(store, "agent@acme.test").await;
        store.create_oauth_client(client("c1", Timestamp::now())).await.unwrap();
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

        store
            .issue_oauth_tokens(
                &grant.id,
                vec![token("access-1", TokenKind::Access, 300_000), token("refresh-1", TokenKind::Refresh, 3_600_000)],
            )
            .await
            .unwrap();
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

        // Revoking the grant ends the whole family.
        assert!(store.revoke_oauth_grant(&grant.id, Timestamp::now(), "refresh_token_reuse").await.unwrap());
        assert!(!store.revoke_oauth_grant(&grant.id, Timestamp::now(), "again").await.unwrap());
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
        store.create_oauth_client(client("c1", Timestamp::now())).await.unwrap();
        let signed_out = member(store, "leaves@acme.test").await;
        let grant = approve(store, &signed_out, "c1", "code-a").await;
        store.issue_oauth_tokens(&grant.id, vec![token("a-access", TokenKind::Access, 300_000)]).await.unwrap();
        assert!(store.find_oauth_token("a-access", TokenKind::Access).await.unwrap().is_some());
        store.delete_session(&signed_out.session.id).await.unwrap();
        assert!(store.find_oauth_token("a-access", TokenKind::Access).await.unwrap().is_none(), "{backend}");
        assert!(
            store.get_oauth_grant(&grant.id).await.unwrap().is_none(),
            "{backend}: the grant went with the session"
        );

        let leaver = member(store, "member@acme.test").await;
        let grant = approve(store, &leaver, "c1", "code-b").await;
        store.issue_oauth_tokens(&grant.id, vec![token("b-access", TokenKind::Access, 300_000)]).await.unwrap();
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
        store.create_oauth_client(client("c1", Timestamp::now())).await.unwrap();
        let who = member(store, "prune@acme.test").await;
        let grant = approve(store, &who, "c1", "code-p").await;
        store
            .issue_oauth_tokens(
                &grant.id,
                vec![token("p-access", TokenKind::Access, 300_000), token("p-refresh", TokenKind::Refresh, 3_600_000)],
            )
            .await
            .unwrap();
        let now = Timestamp::now();
        store
            .create_oauth_request(PendingAuthorization {
                id: "old".into(),
                request: "{}".into(),
                created_at: now,
                expires_at: now.plus_millis(1000),
            })
            .await
            .unwrap();
        store.prune_oauth(now).await.unwrap();
        assert!(store.find_oauth_token("p-access", TokenKind::Access).await.unwrap().is_some(), "{backend}");
        assert!(store.get_oauth_request("old").await.unwrap().is_some());
        // Ten minutes on: the request, the code and the access token have expired.
        store.prune_oauth(now.plus_millis(600_000)).await.unwrap();
        assert!(store.get_oauth_request("old").await.unwrap().is_none(), "{backend}");
        assert!(store.find_oauth_token("p-access", TokenKind::Access).await.unwrap().is_none());
        assert!(store.find_oauth_token("p-refresh", TokenKind::Refresh).await.unwrap().is_some(), "{backend}");
        // Two hours on: nothing is left of the grant.
        store.prune_oauth(now.plus_millis(7_200_000)).await.unwrap();
        assert!(store.get_oauth_grant(&grant.id).await.unwrap().is_none(), "{backend}");
    }
}

#[tokio::test]
async fn disabling_a_user_ends_their_grants_and_tokens() {
    for (backend, store) in backends().await.stores {
        let store = store.as_ref();
        store.create_oauth_client(client("c1", Timestamp::now())).await.unwrap();
        let agent_user = member(store, "agent-user@example.com").await;
        let grant = approve(store, &agent_user, "c1", "d-code").await;
        store.issue_oauth_tokens(&grant.id, vec![token("d-access", TokenKind::Access, 300_000)]).await.unwrap();
        assert!(store.find_oauth_token("d-access", TokenKind::Access).await.unwrap().is_some());
        store.set_user_disabled(&agent_user.user.id, Some(Timestamp::now()), &[]).await.unwrap();
        assert!(store.find_oauth_token("d-access", TokenKind::Access).await.unwrap().is_none(), "{backend}");
    }
}
