//! `GET /v1/catalogs` (SPEC §4).

use serde_json::{json, Value};

use crate::helpers::TestApp;

#[tokio::test]
async fn lists_only_active_granted_catalogs_in_the_contract_shape() {
    let app = TestApp::spawn().await;
    let org = app.partner("Shape").await;
    app.create_catalog("visible").await;
    app.create_catalog("paused").await;
    app.create_catalog("ungranted").await;
    app.grant(&org, "visible").await;
    app.grant(&org, "paused").await;
    let key = app.mint_key(&org).await;

    let (status, _) = app.admin(reqwest::Method::POST, "/catalogs/paused/deactivate", Some(json!({}))).await;
    assert_eq!(status, 200);
    let response = app.catalogs(&key.key).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!([{
            "catalog": "visible",
            "displayName": "visible store",
            "sourceBaseUrl": "https://visible.example",
            "productCount": 0,
            "lastIndexedAt": null
        }])
    );

    app.admin(reqwest::Method::POST, "/catalogs/paused/activate", Some(json!({}))).await;
    let body: Value = app.catalogs(&key.key).await.json().await.unwrap();
    assert_eq!(body.as_array().unwrap().len(), 2, "reactivated catalogs come back on the next request");
}
