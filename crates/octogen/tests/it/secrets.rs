//! Secrets are shown once and stored only as hashes: never in the database,
//! in list output, or in any log line — even at the most verbose log level.

use serde_json::Value;

use crate::helpers::{stdout, ServerProcess, TestApp};

/// The secret half of a key (after `octo_live_<id>_`).
fn secret_of(key: &str) -> &str {
    &key[key.len() - 43..]
}

#[tokio::test]
async fn a_full_database_dump_contains_no_secret() {
    let app = TestApp::spawn().await;
    let org = app.partner("Dumped").await;
    let mut keys = Vec::new();
    for _ in 0..5 {
        keys.push(app.mint_key(&org).await);
    }
    let rotated = app.cli(&["keys", "rotate", &keys[0].id, "--json"]).await;
    let rotated: Value = serde_json::from_slice(&rotated.stdout).unwrap();
    let mut secrets: Vec<String> = keys.iter().map(|k| k.key.clone()).collect();
    secrets.push(rotated["key"].as_str().unwrap().to_string());
    secrets.push(app.admin_token.clone());
    let database = app.data_dir.path().join("octogen.db");
    let _data_dir = app.stop().await;

    // Every row of every table, as text and hex, plus the raw bytes of the files.
    let mut dump = full_dump(&database).await;
    for file in ["octogen.db", "octogen.db-wal"] {
        dump.push_str(&String::from_utf8_lossy(&std::fs::read(database.with_file_name(file)).unwrap_or_default()));
    }
    assert!(dump.contains("test key"), "the dump is readable (sanity check)");
    for secret in &secrets {
        assert!(!dump.contains(secret.as_str()), "a full key is stored in the database");
        if secret.starts_with("octo_live_") {
            assert!(!dump.contains(secret_of(secret)), "a key secret is stored in the database");
        }
    }
}

#[test]
fn no_log_line_carries_a_key_or_token_even_at_trace_level() {
    let mut server = ServerProcess::start(&["--log-level", "trace"]);
    let org = server.cli(&["admin", "org", "create", "--name", "Canary", "--type", "catalog_partner", "--json"]);
    let org: Value = serde_json::from_slice(&org.stdout).expect("org JSON");
    let org_id = org["id"].as_str().unwrap();
    server.cli(&["admin", "catalog", "create", "--key", "canary", "--name", "Canary"]);
    server.cli(&["admin", "grant", "--org", org_id, "--catalog", "canary"]);

    let mut minted = Vec::new();
    for _ in 0..3 {
        let out = server.cli(&["keys", "create", "--org", org_id, "--name", "canary", "--json"]);
        let key: Value = serde_json::from_slice(&out.stdout).expect("key JSON");
        minted.push((key["id"].as_str().unwrap().to_string(), key["key"].as_str().unwrap().to_string()));
    }
    let rotated = server.cli(&["keys", "rotate", &minted[0].0, "--json"]);
    let rotated: Value = serde_json::from_slice(&rotated.stdout).unwrap();
    minted.push((rotated["id"].as_str().unwrap().into(), rotated["key"].as_str().unwrap().into()));

    let http = reqwest::blocking::Client::new();
    for (_, key) in &minted {
        let ok = http.get(format!("{}/v1/catalogs", server.base)).bearer_auth(key).send().unwrap();
        assert_eq!(ok.status(), 200);
        // A wrong secret for a real key id, and a garbled key.
        let wrong = format!("{}x", &key[..key.len() - 1]);
        http.get(format!("{}/v1/catalogs", server.base)).bearer_auth(&wrong).send().unwrap();
        http.get(format!("{}/v1/catalogs", server.base))
            .header("authorization", format!("Bearer {key}extra"))
            .send()
            .unwrap();
    }
    server.cli(&["keys", "revoke", &minted[1].0]);
    http.get(format!("{}/v1/catalogs", server.base)).bearer_auth(&minted[1].1).send().unwrap();
    let listed = stdout(&server.cli(&["keys", "list", "--org", org_id]));
    let status = server.terminate();
    assert!(status.success(), "graceful exit on SIGTERM");

    let logs = server.logs();
    assert!(logs.lines().count() > 50, "trace logging produced output");
    assert!(logs.contains("request_id"), "log lines carry the request id");
    for (id, key) in &minted {
        assert!(!logs.contains(key.as_str()), "a full API key reached the log");
        assert!(!logs.contains(secret_of(key)), "a key secret reached the log");
        assert!(!listed.contains(secret_of(key)), "keys list printed a secret");
        assert!(listed.contains(id.as_str()), "keys list shows key ids");
    }
    assert!(!logs.contains(&server.admin_token), "the operator token reached the log");
}

/// `SELECT *` of every table, each value as text and (for blobs) hex.
async fn full_dump(path: &std::path::Path) -> String {
    use sqlx::{Column, Row, ValueRef};
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'").fetch_all(&pool).await.unwrap();
    let mut dump = String::new();
    for table in tables {
        for row in sqlx::query(&format!("SELECT * FROM \"{table}\"")).fetch_all(&pool).await.unwrap() {
            for column in row.columns() {
                let raw = row.try_get_raw(column.ordinal()).unwrap();
                if raw.is_null() {
                    continue;
                }
                if let Ok(text) = row.try_get::<String, _>(column.ordinal()) {
                    dump.push_str(&text);
                } else if let Ok(bytes) = row.try_get::<Vec<u8>, _>(column.ordinal()) {
                    dump.push_str(&String::from_utf8_lossy(&bytes));
                    dump.push_str(&bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
                } else if let Ok(number) = row.try_get::<i64, _>(column.ordinal()) {
                    dump.push_str(&number.to_string());
                }
                dump.push('\t');
            }
            dump.push('\n');
        }
    }
    pool.close().await;
    dump
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_log_line_carries_a_password_session_or_csrf_token_at_trace_level() {
    let mut server = ServerProcess::start(&["--log-level", "trace"]);
    let password = format!("canary password {}", uuid::Uuid::new_v4().simple());
    let org = serde_json::from_slice::<Value>(
        &server
            .cli(&["admin", "org", "create", "--name", "Canary Portal", "--type", "catalog_partner", "--json"])
            .stdout,
    )
    .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let created = server.cli(&[
        "admin",
        "user",
        "create",
        "--email",
        "canary@partner.test",
        "--org",
        &org,
        "--role",
        "owner",
        "--password",
        &password,
    ]);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));

    let mut browser = crate::portal::Browser::at(&server.base);
    let wrong = browser.sign_in("canary@partner.test", "a wrong password, long enough").await;
    assert_eq!(wrong.status.as_u16(), 401, "a failed sign-in re-renders the form");
    let signed_in = browser.sign_in("canary@partner.test", &password).await;
    assert_eq!(signed_in.status.as_u16(), 303);
    let session = browser.session_cookie();
    let keys_page = browser.get("/keys").await;
    let csrf = keys_page.csrf();
    let created = browser.create_key("canary").await;
    let shown = created.body.clone();
    let key = shown
        .split("octo_live_")
        .nth(1)
        .map(|rest| format!("octo_live_{}", &rest[..76]))
        .expect("the new key is shown");
    browser.submit("/keys", "/logout", &[]).await;
    // A password reset link: printed by the CLI, followed, spent.
    let users: Value = serde_json::from_slice(&server.cli(&["admin", "user", "list", "--json"]).stdout).unwrap();
    let user_id = users[0]["id"].as_str().unwrap().to_string();
    let reset = stdout(&server.cli(&["admin", "user", "reset-password", &user_id]));
    let link = reset.lines().map(str::trim).find(|line| line.starts_with("http")).expect("a reset link").to_string();
    let reset_token = link.split("token=").nth(1).expect("a token").to_string();
    let path = link.strip_prefix(&server.base).expect("a link to this server").to_string();
    let new_password = format!("canary new password {}", uuid::Uuid::new_v4().simple());
    let mut stranger = crate::portal::Browser::at(&server.base);
    let fields = [("token", reset_token.as_str()), ("password", &new_password), ("confirm", &new_password)];
    assert_eq!(stranger.submit(&path, "/reset-password", &fields).await.status.as_u16(), 200);
    assert!(server.terminate().success());

    let logs = server.logs();
    assert!(logs.contains("/login") && logs.contains("request_id"), "the flow was logged");
    for (what, secret) in
        [("password", password.as_str()), ("session id", &session), ("CSRF token", &csrf), ("API key", &key)]
            .into_iter()
            .chain([("reset token", reset_token.as_str()), ("new password", &new_password)])
    {
        assert!(!logs.contains(secret), "the {what} reached the log");
    }
}
