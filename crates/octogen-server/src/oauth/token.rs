//! `POST /oauth2/token`: an authorization code (with its PKCE verifier) or a
//! refresh token, for a new access token and a new refresh token.
//!
//! - A code is redeemed before anything else is checked, atomically: a failed
//!   exchange burns it, and a second exchange of a used code revokes the grant
//!   (and every token already issued from it).
//! - Refresh tokens rotate: each is good for one refresh. Presenting a spent
//!   one means two parties hold it, so the whole family (the grant) is revoked.
//! - Refreshing counts as activity of the sign-in session the grant belongs
//!   to; it fails once that session has ended (sign-out, 30 minutes without
//!   activity, or its 12-hour limit).
//! - Every refused request (a wrong secret, code or refresh token) draws from
//!   the client address's failure budget, shared with `/v1` and `/mcp`: 429
//!   once it is spent.
//! - The tokens issued for a code, and a grant revoked for a replay, are
//!   audited (refreshes are not: an agent refreshes every five minutes).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use octogen_core::api_key::random_token;
use octogen_core::Timestamp;
use octogen_store::{AuditEvent, CodeRedemption, NewOAuthToken, OAuthClient, OAuthGrant, RefreshRotation, TokenKind};
use secrecy::ExposeSecret;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::clients::authenticate_client;
use super::{hash, no_store, oauth_error, ACCESS_DOMAIN, ACCESS_TOKEN_SECONDS, CODE_DOMAIN, REFRESH_DOMAIN};
use crate::net::ClientAddr;
use crate::service::sessions::{SESSION_IDLE_MILLIS, SESSION_LIFETIME_MILLIS};
use crate::state::AppState;

/// `POST /oauth2/token`.
pub async fn token(
    State(state): State<AppState>,
    client_addr: ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = answer(&state, &client_addr, &headers, &body).await;
    if matches!(response.status(), StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED) {
        return super::failed_attempt(&state, &client_addr, "oauth_token_request", response).await;
    }
    response
}

async fn answer(state: &AppState, client_addr: &ClientAddr, headers: &HeaderMap, body: &Bytes) -> Response {
    let mut form = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(body) {
        if form.insert(name.to_string(), value.into_owned()).is_some() {
            return invalid_request(&format!("the parameter {name} was sent more than once"));
        }
    }
    let get = |name: &str| form.get(name).map(String::as_str).filter(|value| !value.is_empty());
    let client = match authenticate_client(state, headers, get("client_id"), get("client_secret")).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    let request = TokenRequest { state, client: &client, client_addr };
    let outcome = match get("grant_type") {
        Some("authorization_code") => exchange_code(&request, &get).await,
        Some("refresh_token") => refresh(&request, &get).await,
        Some(_) => Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
        )),
        None => Err(invalid_request("grant_type is required")),
    };
    outcome.unwrap_or_else(|response| response)
}

type Outcome = Result<Response, Response>;

/// An authenticated client's request at the token endpoint.
struct TokenRequest<'a> {
    state: &'a AppState,
    client: &'a OAuthClient,
    client_addr: &'a ClientAddr,
}

async fn exchange_code<'a>(request: &TokenRequest<'_>, get: &impl Fn(&str) -> Option<&'a str>) -> Outcome {
    let TokenRequest { state, client, .. } = *request;
    let code = get("code").ok_or_else(|| invalid_request("code is required"))?;
    let now = state.oauth.clock.now();
    let redeemed = match state.store.redeem_authorization_code(&hash(state, CODE_DOMAIN, code), now).await {
        Ok(CodeRedemption::Redeemed(redeemed)) => redeemed,
        Ok(CodeRedemption::Replayed { grant_id }) => {
            revoke(request, &grant_id, "authorization_code_replay").await;
            return Err(invalid_grant("the code was already used; every token issued from it is revoked"));
        }
        Ok(CodeRedemption::Unknown) => return Err(invalid_grant("the code is not valid")),
        Err(error) => return Err(unavailable(error.into())),
    };
    // The code is spent whatever happens next: a failed exchange burns it.
    if redeemed.expires_at <= now {
        return Err(invalid_grant("the code has expired"));
    }
    if redeemed.grant.client_id != client.id {
        return Err(invalid_grant("the code was issued to another client"));
    }
    if get("redirect_uri") != Some(redeemed.redirect_uri.as_str()) {
        return Err(invalid_grant("redirect_uri differs from the authorization request's"));
    }
    let Some(verifier) = get("code_verifier") else {
        return Err(invalid_grant("code_verifier is required (PKCE)"));
    };
    if !pkce_matches(verifier, &redeemed.code_challenge) {
        return Err(invalid_grant("code_verifier does not match the code challenge"));
    }
    check_resource(get("resource"), &redeemed.grant)?;
    issue(request, &redeemed.grant, None, now).await
}

async fn refresh<'a>(request: &TokenRequest<'_>, get: &impl Fn(&str) -> Option<&'a str>) -> Outcome {
    let TokenRequest { state, client, .. } = *request;
    let presented = get("refresh_token").ok_or_else(|| invalid_request("refresh_token is required"))?;
    let token_hash = hash(state, REFRESH_DOMAIN, presented);
    let found = match state.store.find_oauth_token(&token_hash, TokenKind::Refresh).await {
        Ok(Some(found)) => found,
        Ok(None) => return Err(invalid_grant("the refresh token is not valid")),
        Err(error) => return Err(unavailable(error.into())),
    };
    if found.grant.client_id != client.id {
        return Err(invalid_grant("the refresh token was issued to another client"));
    }
    let now = state.oauth.clock.now();
    if found.used_at.is_some() {
        revoke(request, &found.grant.id, "refresh_token_reuse").await;
        return Err(invalid_grant("the refresh token was already used; every token of its grant is revoked"));
    }
    if found.expires_at <= now
        || found.session_expires_at <= now
        || found.session_last_seen_at.plus_millis(SESSION_IDLE_MILLIS) <= now
    {
        return Err(invalid_grant("the sign-in session behind this grant has ended; authorize again"));
    }
    check_resource(get("resource"), &found.grant)?;
    issue(request, &found.grant, Some(&token_hash), now).await
}

/// Stores and returns a new access token and refresh token for `grant`,
/// spending `spent_refresh` (atomically) when this is a refresh.
async fn issue(request: &TokenRequest<'_>, grant: &OAuthGrant, spent_refresh: Option<&str>, now: Timestamp) -> Outcome {
    let state = request.state;
    let access = format!("octo_at_{}", random_token(32).expose_secret());
    let refresh = format!("octo_rt_{}", random_token(32).expose_secret());
    let tokens = vec![
        NewOAuthToken {
            token_hash: hash(state, ACCESS_DOMAIN, &access),
            kind: TokenKind::Access,
            created_at: now,
            expires_at: now.plus_millis(ACCESS_TOKEN_SECONDS * 1000),
        },
        NewOAuthToken {
            token_hash: hash(state, REFRESH_DOMAIN, &refresh),
            kind: TokenKind::Refresh,
            created_at: now,
            // The session ends first in practice (the store checks it on every use).
            expires_at: now.plus_millis(SESSION_LIFETIME_MILLIS),
        },
    ];
    match spent_refresh {
        None => {
            let audit =
                audit_event(request, grant, "oauth.tokens_issued", json!({"grant": grant.id, "user": grant.user_id}));
            state.store.issue_oauth_tokens(&grant.id, tokens, audit).await.map_err(|error| unavailable(error.into()))?
        }
        Some(spent) => match state.store.rotate_refresh_token(spent, now, tokens).await {
            Ok(RefreshRotation::Rotated) => {
                // An agent at work keeps the sign-in session it was approved in alive (to its 12-hour limit).
                if let Err(error) = state.store.touch_session(&grant.session_id, Timestamp::now()).await {
                    tracing::warn!(error = %error, "cannot record session activity");
                }
            }
            Ok(RefreshRotation::Replayed { grant_id }) => {
                revoke(request, &grant_id, "refresh_token_reuse").await;
                return Err(invalid_grant("the refresh token was already used; every token of its grant is revoked"));
            }
            Ok(RefreshRotation::Unknown) => return Err(invalid_grant("the refresh token is not valid")),
            Err(error) => return Err(unavailable(error.into())),
        },
    }
    let mut response = Json(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_SECONDS,
        "refresh_token": refresh,
        "scope": grant.scope,
    }))
    .into_response();
    no_store(response.headers_mut());
    Ok(response)
}

/// RFC 8707: a `resource` sent to the token endpoint must be the grant's.
fn check_resource(requested: Option<&str>, grant: &OAuthGrant) -> Result<(), Response> {
    match requested {
        Some(resource) if resource != grant.resource => {
            Err(oauth_error(StatusCode::BAD_REQUEST, "invalid_target", "the grant is for another resource"))
        }
        _ => Ok(()),
    }
}

/// RFC 7636 S256: BASE64URL(SHA-256(verifier)) equals the challenge; the
/// verifier is 43–128 unreserved characters.
fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    well_formed && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

/// Revokes a grant whose code or refresh token came back (two parties hold it), with its audit event.
async fn revoke(request: &TokenRequest<'_>, grant_id: &str, reason: &str) {
    let state = request.state;
    let grant = match state.store.get_oauth_grant(grant_id).await {
        Ok(Some(grant)) => grant,
        Ok(None) => return,
        Err(error) => return tracing::error!(error = %error, grant = grant_id, "cannot read an OAuth grant"),
    };
    let detail = json!({"grant": grant.id, "user": grant.user_id, "reason": reason});
    let mut audit = audit_event(request, &grant, "oauth.grant_revoked", detail);
    // The server revokes; whoever presented the spent credential may be the thief.
    audit.actor = "system".into();
    match state.store.revoke_oauth_grant(grant_id, state.oauth.clock.now(), reason, audit).await {
        Ok(true) => tracing::warn!(grant = grant_id, reason, "an OAuth grant was revoked"),
        Ok(false) => {}
        Err(error) => tracing::error!(error = %error, grant = grant_id, "cannot revoke an OAuth grant"),
    }
}

/// An audit event about `grant`, by the requesting client, in the grant's organization.
fn audit_event(request: &TokenRequest<'_>, grant: &OAuthGrant, action: &str, detail: serde_json::Value) -> AuditEvent {
    AuditEvent {
        occurred_at: Timestamp::now(),
        org_id: Some(grant.org_id.clone()),
        actor: format!("oauth_client:{}", grant.client_id),
        action: action.into(),
        target: Some(grant.client_id.clone()),
        client_addr: request.client_addr.label(),
        detail: Some(detail),
    }
}

fn invalid_request(message: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", message)
}

fn invalid_grant(message: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", message)
}

fn unavailable(error: anyhow::Error) -> Response {
    tracing::error!(error = format!("{error:#}"), "the token endpoint cannot reach the store");
    oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "try again later")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_the_rfc_example() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cX"));
        assert!(!pkce_matches("short", challenge));
        assert!(!pkce_matches(challenge, challenge), "plain is not accepted");
    }
}
