//! `/mcp`: the three tools against the REST shapes, tool-level errors, cursors,
//! grant changes on the next call, the shared rate budget (-32029), `Origin`,
//! and who the resource refuses (no token, token in the query string, wrong
//! audience, another issuer, merchant and suspended organizations).

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::oauth::{mcp_raw, member, partner_app, tools_list, Agent, Person, Reply};

const HOODIE: &str = "https://northwind.example/products/trail-hoodie";

async fn call(app: &TestApp, token: &str, tool: &str, arguments: Value) -> Reply {
    let body =
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": tool, "arguments": arguments}});
    mcp_raw(app, Some(&format!("Bearer {token}")), &[], body).await
}

/// The JSON-RPC result of a successful tool call.
async fn result(app: &TestApp, token: &str, tool: &str, arguments: Value) -> Value {
    let reply = call(app, token, tool, arguments).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let body = reply.json();
    assert!(body.get("error").is_none(), "{body}");
    body["result"].clone()
}

/// The structured content of a successful tool call, checked against its text content.
async fn structured(app: &TestApp, token: &str, tool: &str, arguments: Value) -> Value {
    let result = result(app, token, tool, arguments).await;
    assert_eq!(result["isError"], false, "{result}");
    let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    let structured = result["structuredContent"].clone();
    if tool == "list_catalogs" {
        assert_eq!(structured["catalogs"], text, "the text is the REST array");
    } else {
        assert_eq!(structured, text);
    }
    structured
}

/// A tool-level error: a normal result with `isError` and an `error` field.
async fn tool_error(app: &TestApp, token: &str, tool: &str, arguments: Value) -> String {
    let result = result(app, token, tool, arguments).await;
    assert_eq!(result["isError"], true, "{result}");
    result["structuredContent"]["error"].as_str().unwrap().to_string()
}

async fn connected() -> (TestApp, String, Person, String) {
    let (app, org, mut person) = partner_app().await;
    let agent = Agent::register(&app.base).await;
    let tokens = agent.connect(&mut person).await;
    (app, org, person, tokens.access)
}

fn without_request_id(mut value: Value) -> Value {
    if let Some(map) = value.as_object_mut() {
        map.remove("requestId");
    }
    value
}

#[tokio::test]
async fn tools_are_listed_with_descriptions_and_schemas() {
    let (app, _org, _person, token) = connected().await;
    let reply = tools_list(&app, &token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let tools = reply.json()["result"]["tools"].clone();
    let names: Vec<&str> = tools.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["list_catalogs", "search_products", "lookup_product"]);
    for tool in tools.as_array().unwrap() {
        assert!(tool["description"].as_str().unwrap().len() > 80, "{tool}");
        assert_eq!(tool["inputSchema"]["type"], "object");
        assert_eq!(tool["annotations"]["readOnlyHint"], true);
    }
    assert_eq!(tools[1]["inputSchema"]["required"], json!(["catalog"]));
    assert_eq!(tools[1]["inputSchema"]["properties"]["limit"]["maximum"], 100);
    assert_eq!(tools[2]["inputSchema"]["required"], json!(["canonical_url"]));
}

#[tokio::test]
async fn tools_return_the_rest_shapes() {
    let (app, org, _person, token) = connected().await;
    let key = app.mint_key(&org).await.key;
    let rest: Value = app.catalogs(&key).await.json().await.unwrap();
    let catalogs = structured(&app, &token, "list_catalogs", json!({})).await;
    assert_eq!(catalogs["catalogs"], rest);

    let (_, rest) = app.search(&key, json!({"catalog": "northwind", "q": "hoodie", "limit": 5})).await;
    let page =
        structured(&app, &token, "search_products", json!({"catalog": "northwind", "query": "hoodie", "limit": 5}))
            .await;
    assert_eq!(page["items"], rest["items"]);
    assert!(page["requestId"].as_str().is_some_and(|id| !id.is_empty()));

    let (_, rest) = app.lookup(&key, json!({"url": format!("{HOODIE}?utm_source=agent")})).await;
    let found =
        structured(&app, &token, "lookup_product", json!({"canonical_url": format!("{HOODIE}?utm_source=agent")}))
            .await;
    assert_eq!(without_request_id(found.clone()), without_request_id(rest));
    let narrowed =
        structured(&app, &token, "lookup_product", json!({"canonical_url": HOODIE, "catalogs": ["northwind"]})).await;
    assert_eq!(narrowed["product"], found["product"]);
}

#[tokio::test]
async fn search_pages_with_cursors_and_a_malformed_cursor_restarts() {
    let (app, _org, _person, token) = connected().await;
    let mut seen = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let mut arguments = json!({"catalog": "northwind", "limit": 10});
        if !cursor.is_null() {
            arguments["cursor"] = cursor.clone();
        }
        let page = structured(&app, &token, "search_products", arguments).await;
        seen.extend(page["items"].as_array().unwrap().iter().map(|item| item["uuid"].as_str().unwrap().to_string()));
        cursor = page["nextCursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (24, 24), "every product once");
    let first = structured(&app, &token, "search_products", json!({"catalog": "northwind", "limit": 10})).await;
    for bad in ["garbage", "AAAA", "eyJub3QiOiJhIGN1cnNvciJ9"] {
        let restarted =
            structured(&app, &token, "search_products", json!({"catalog": "northwind", "limit": 10, "cursor": bad}))
                .await;
        assert_eq!(restarted["items"], first["items"], "{bad}: page 1 again");
    }
    // A cursor of another search restarts too.
    let other =
        structured(&app, &token, "search_products", json!({"catalog": "northwind", "query": "jacket", "limit": 1}))
            .await;
    let restarted = structured(
        &app,
        &token,
        "search_products",
        json!({"catalog": "northwind", "limit": 10, "cursor": other["nextCursor"]}),
    )
    .await;
    assert_eq!(restarted["items"], first["items"]);
}

#[tokio::test]
async fn problems_are_tool_results_with_an_error_field() {
    let (app, _org, _person, token) = connected().await;
    app.create_catalog("hidden").await;
    for limit in [json!(0), json!(101), json!("ten"), json!(2.5), json!(-1)] {
        let error = tool_error(&app, &token, "search_products", json!({"catalog": "northwind", "limit": limit})).await;
        assert_eq!(error, "invalid_limit", "{limit}: no silent clamping");
    }
    for catalog in ["hidden", "nowhere"] {
        assert_eq!(
            tool_error(&app, &token, "search_products", json!({"catalog": catalog})).await,
            "catalog_not_granted"
        );
        let narrowed = json!({"canonical_url": HOODIE, "catalogs": [catalog]});
        assert_eq!(tool_error(&app, &token, "lookup_product", narrowed).await, "catalog_not_granted");
    }
    let missing = json!({"canonical_url": "https://northwind.example/products/nothing-here"});
    assert_eq!(tool_error(&app, &token, "lookup_product", missing).await, "product_not_found");
    assert_eq!(
        tool_error(&app, &token, "lookup_product", json!({"canonical_url": "not a url"})).await,
        "invalid_product_url"
    );
    assert_eq!(tool_error(&app, &token, "search_products", json!({})).await, "invalid_arguments");
    assert_eq!(tool_error(&app, &token, "lookup_product", json!({})).await, "invalid_arguments");
    // An unknown tool is a protocol error, not a result.
    let unknown = call(&app, &token, "delete_everything", json!({})).await.json();
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
}

#[tokio::test]
async fn grant_changes_apply_to_the_very_next_call() {
    let (app, org, _person, token) = connected().await;
    app.ungrant(&org, "northwind").await;
    assert_eq!(structured(&app, &token, "list_catalogs", json!({})).await["catalogs"], json!([]));
    assert_eq!(
        tool_error(&app, &token, "search_products", json!({"catalog": "northwind"})).await,
        "catalog_not_granted"
    );
    assert_eq!(tool_error(&app, &token, "lookup_product", json!({"canonical_url": HOODIE})).await, "product_not_found");
    app.grant(&org, "northwind").await;
    let page = structured(&app, &token, "search_products", json!({"catalog": "northwind", "limit": 1})).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn only_tool_calls_spend_the_budget_shared_with_rest() {
    let (app, org, _person, token) = connected().await;
    let key = app.mint_key(&org).await.key;
    let (status, _) = app.admin(Method::PUT, &format!("/orgs/{org}/rate-limit"), Some(json!({"perMinute": 3}))).await;
    assert_eq!(status, StatusCode::OK);
    for _ in 0..5 {
        assert_eq!(tools_list(&app, &token).await.status, StatusCode::OK, "listing tools is free");
    }
    assert_eq!(app.catalogs(&key).await.status(), StatusCode::OK, "REST takes one token");
    structured(&app, &token, "list_catalogs", json!({})).await;
    structured(&app, &token, "list_catalogs", json!({})).await;
    let spent = call(&app, &token, "list_catalogs", json!({})).await;
    assert_eq!(spent.status, StatusCode::OK, "a JSON-RPC error, not an HTTP one");
    let error = spent.json()["error"].clone();
    assert_eq!(error["code"], -32029, "{error}");
    assert_eq!(error["message"], "rate_limited");
    assert_eq!(error["data"]["error"], "rate_limited");
    assert!(error["data"]["retry_after"].as_u64().is_some_and(|seconds| seconds >= 1), "{error}");
    assert_eq!(app.catalogs(&key).await.status(), StatusCode::TOO_MANY_REQUESTS, "one budget for both");
}

#[tokio::test]
async fn foreign_origins_are_refused() {
    let (app, _org, _person, token) = connected().await;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let bearer = format!("Bearer {token}");
    for origin in ["https://evil.example", "null", "http://127.0.0.1:1"] {
        let reply = mcp_raw(&app, Some(&bearer), &[("origin", origin)], body.clone()).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{origin}");
    }
    let foreign_without_token = mcp_raw(&app, None, &[("origin", "https://evil.example")], body.clone()).await;
    assert_eq!(foreign_without_token.status, StatusCode::FORBIDDEN, "the origin is checked first");
    let own = mcp_raw(&app, Some(&bearer), &[("origin", &app.base)], body).await;
    assert_eq!(own.status, StatusCode::OK);
}

#[tokio::test]
async fn tokens_are_accepted_only_in_the_authorization_header() {
    let (app, _org, _person, token) = connected().await;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let response = reqwest::Client::new()
        .post(app.url(&format!("/mcp?access_token={token}")))
        .header("accept", "application/json, text/event-stream")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_string();
    assert!(challenge.contains("resource_metadata=") && challenge.contains("invalid_request"), "{challenge}");
    let both = reqwest::Client::new()
        .post(app.url(&format!("/mcp?access_token={token}")))
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn missing_invalid_and_foreign_credentials_get_a_challenge() {
    let (app, org, _person, token) = connected().await;
    let metadata = format!("Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"", app.base);
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let missing = mcp_raw(&app, None, &[], body.clone()).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    // The scope to ask for is in the challenge (MCP authorization, scope selection).
    assert_eq!(missing.header("www-authenticate"), format!("{metadata}, scope=\"catalog\""));
    let key = app.mint_key(&org).await.key;
    for credential in
        [format!("Bearer {key}"), "Bearer octo_at_nope".into(), format!("Basic {token}"), format!("Bearer {token}x")]
    {
        let reply = mcp_raw(&app, Some(&credential), &[], body.clone()).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{credential}");
        assert!(reply.header("www-authenticate").starts_with(&metadata), "{credential}");
    }
}

#[tokio::test]
async fn tokens_are_bound_to_their_audience_and_issuer() {
    let (app, _org, _person, token) = connected().await;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    // The same server reached under another name is another issuer and another resource
    // (without public_url both come from the Host header).
    let port = app.base.rsplit(':').next().unwrap();
    let other_host = format!("localhost:{port}");
    let reply = mcp_raw(&app, Some(&format!("Bearer {token}")), &[("host", &other_host)], body.clone()).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    let challenge = reply.header("www-authenticate");
    assert!(
        challenge.contains("invalid_token") && challenge.contains(&format!("http://{other_host}/.well-known")),
        "{challenge}"
    );
    // A token of another authorization server (another octogen) is refused.
    let (other, _other_org, mut other_person) = partner_app().await;
    let other_agent = Agent::register(&other.base).await;
    let foreign = other_agent.connect(&mut other_person).await;
    let reply = mcp_raw(&app, Some(&format!("Bearer {}", foreign.access)), &[], body).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.header("www-authenticate").contains("invalid_token"));
}

#[tokio::test]
async fn merchant_and_suspended_organizations_are_forbidden() {
    let (app, org, _person, token) = connected().await;
    let merchant = app.create_org("Shop Owner", "merchant").await;
    member(&app, "merchant@shop.test", &merchant).await;
    let mut person = Person::signed_in(&app, "merchant@shop.test").await;
    let agent = Agent::register(&app.base).await;
    let consent = person.get(&agent.authorize_path(&[])).await.location();
    assert!(person.get(&consent).await.body.contains("merchant organization"));
    let merchant_token = agent.connect(&mut person).await;
    let reply = tools_list(&app, &merchant_token.access).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert_eq!(reply.json()["error"], "org_type_forbidden");
    assert!(reply.header("www-authenticate").is_empty(), "not a challenge: a new token would not help");

    assert_eq!(tools_list(&app, &token).await.status, StatusCode::OK);
    app.suspend(&org).await;
    let reply = tools_list(&app, &token).await;
    assert_eq!((reply.status, reply.json()["error"].clone()), (StatusCode::FORBIDDEN, json!("org_suspended")));
}
