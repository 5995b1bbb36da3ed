//! The operator commands, run as the real binary against a running server:
//! human output by default, `--json` for scripts, non-zero exit with a
//! one-line reason on failure.

use serde_json::Value;

use crate::helpers::{stderr, stdout, TestApp};

fn json(output: &std::process::Output) -> Value {
    assert!(output.status.success(), "exit {:?}: {}", output.status.code(), stderr(output));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| panic!("not JSON ({error}): {}", stdout(output)))
}

#[tokio::test]
async fn organizations_catalogs_and_grants() {
    let app = TestApp::spawn().await;
    let org = json(
        &app.cli(&["admin", "org", "create", "--name", "Acme Partner", "--type", "catalog_partner", "--json"]).await,
    );
    let org_id = org["id"].as_str().expect("org create --json prints an object with id");
    assert_eq!(org["type"], "catalog_partner");

    let human = app.cli(&["admin", "org", "create", "--name", "Shopkeeper", "--type", "merchant"]).await;
    assert!(human.status.success());
    assert!(stdout(&human).starts_with("Created organization Shopkeeper (merchant) with id "));

    let listed = stdout(&app.cli(&["admin", "org", "list"]).await);
    assert!(listed.lines().next().unwrap().starts_with("ID"), "a table with headers: {listed}");
    assert!(listed.contains("Acme Partner") && listed.contains("Shopkeeper"));
    assert_eq!(json(&app.cli(&["admin", "org", "list", "--json"]).await).as_array().unwrap().len(), 2);

    let suspended = json(&app.cli(&["admin", "org", "suspend", org_id, "--json"]).await);
    assert_eq!(suspended["suspended"], true);
    let active = json(&app.cli(&["admin", "org", "unsuspend", org_id, "--json"]).await);
    assert_eq!(active["suspended"], false);

    let catalog = json(
        &app.cli(&[
            "admin",
            "catalog",
            "create",
            "--key",
            "northwind",
            "--name",
            "Northwind",
            "--source-url",
            "https://northwind.example/",
            "--json",
        ])
        .await,
    );
    assert_eq!(catalog["sourceBaseUrl"], "https://northwind.example");
    assert!(stdout(&app.cli(&["admin", "catalog", "list"]).await).contains("northwind"));

    let granted = json(&app.cli(&["admin", "grant", "--org", org_id, "--catalog", "northwind", "--json"]).await);
    assert_eq!(granted["granted"], true);
    let key = json(&app.cli(&["keys", "create", "--org", org_id, "--name", "ci", "--json"]).await);
    let catalogs: Value = app.catalogs(key["key"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(catalogs[0]["catalog"], "northwind");
    let ungranted = app.cli(&["admin", "ungrant", "--org", org_id, "--catalog", "northwind"]).await;
    assert!(stdout(&ungranted).contains("Removed catalog northwind"));
    let catalogs: Value = app.catalogs(key["key"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(catalogs, serde_json::json!([]), "ungrant is effective on the next request");
}

#[tokio::test]
async fn keys_create_list_rotate_revoke() {
    let app = TestApp::spawn().await;
    let org = app.partner("Keyholder").await;

    let created = app.cli(&["keys", "create", "--org", &org, "--name", "production"]).await;
    let text = stdout(&created);
    assert!(text.contains("shown only once"), "{text}");
    let full_key = text
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("octo_live_"))
        .expect("the key is printed")
        .to_string();
    assert_eq!(app.catalogs(&full_key).await.status(), 200);
    assert_last_used_is_recorded(&app, &org, &full_key).await;

    let key = json(&app.cli(&["keys", "create", "--org", &org, "--name", "staging", "--json"]).await);
    let (key_id, secret) = (key["id"].as_str().unwrap(), key["key"].as_str().unwrap());
    assert_eq!(key["status"], "active");

    for args in [vec!["keys", "list", "--org", org.as_str()], vec!["keys", "list", "--org", org.as_str(), "--json"]] {
        let listed = stdout(&app.cli(&args).await);
        assert!(listed.contains(key_id) && listed.contains("staging"));
        assert!(
            !listed.contains(&secret[secret.len() - 43..]) && !listed.contains(&full_key[full_key.len() - 43..]),
            "never a secret"
        );
    }

    let rotated = json(&app.cli(&["keys", "rotate", key_id, "--json"]).await);
    let replacement = rotated["key"].as_str().unwrap();
    assert_eq!(rotated["previous"]["status"], "active", "the old key stays active");
    assert_eq!(app.catalogs(replacement).await.status(), 200);
    assert_eq!(app.catalogs(secret).await.status(), 200);
    let human_rotate = stdout(&app.cli(&["keys", "rotate", rotated["id"].as_str().unwrap()]).await);
    assert!(human_rotate.contains("stays active"), "{human_rotate}");

    let revoked = app.cli(&["keys", "revoke", key_id]).await;
    assert!(stdout(&revoked).contains("next request with it gets 401"));
    assert_eq!(app.catalogs(secret).await.status(), 401);

    let rotated_and_revoked =
        json(&app.cli(&["keys", "rotate", rotated["id"].as_str().unwrap(), "--revoke-old", "--json"]).await);
    assert_eq!(rotated_and_revoked["previous"]["status"], "revoked");
    assert_eq!(app.catalogs(replacement).await.status(), 401);
    assert_eq!(app.catalogs(rotated_and_revoked["key"].as_str().unwrap()).await.status(), 200);
}

#[tokio::test]
async fn failures_exit_non_zero_with_a_one_line_reason() {
    let app = TestApp::spawn().await;
    let org = app.partner("Errors").await;
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec!["admin", "org", "suspend", "no-such-org"], 5, "organization no-such-org not found"),
        (vec!["keys", "create", "--org", "no-such-org", "--name", "x"], 5, "organization no-such-org not found"),
        (vec!["keys", "revoke", "0123"], 5, "API key 0123 not found"),
        (vec!["admin", "grant", "--org", &org, "--catalog", "missing"], 5, "catalog missing not found"),
        (vec!["admin", "catalog", "create", "--key", "Bad Key!", "--name", "x"], 6, "invalid key"),
        (vec!["admin", "org", "create", "--name", "  ", "--type", "merchant"], 6, "invalid name"),
        (vec!["admin", "org", "create", "--name", "Errors", "--type", "merchant"], 6, "already exists"),
        (vec!["keys", "create", "--org", &org, "--name", ""], 6, "invalid name"),
    ];
    for (args, code, message) in cases {
        let output = app.cli(&args).await;
        assert_eq!(output.status.code(), Some(code), "{args:?}: {}", stderr(&output));
        let err = stderr(&output);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.starts_with("error: ") && err.contains(message), "{args:?}: {err}");
    }

    let bad_type = app.cli(&["admin", "org", "create", "--name", "X", "--type", "reseller"]).await;
    assert_eq!(bad_type.status.code(), Some(2), "usage errors exit 2");
    assert!(stderr(&bad_type).contains("reseller"));

    let wrong_token = tokio::process::Command::new(env!("CARGO_BIN_EXE_octogen"))
        .args(["admin", "org", "list"])
        .env("OCTOGEN_SERVER", &app.base)
        .env("OCTOGEN_ADMIN_TOKEN", "octo_admin_wrongwrongwrongwrongwrong")
        .output()
        .await
        .unwrap();
    assert_eq!(wrong_token.status.code(), Some(4), "{}", stderr(&wrong_token));
    assert!(stderr(&wrong_token).contains("OCTOGEN_ADMIN_TOKEN"));

    let unreachable = tokio::process::Command::new(env!("CARGO_BIN_EXE_octogen"))
        .args(["admin", "org", "list"])
        .env("OCTOGEN_SERVER", "http://127.0.0.1:9")
        .env("OCTOGEN_ADMIN_TOKEN", "octo_admin_whateverwhateverwhatever")
        .output()
        .await
        .unwrap();
    assert_eq!(unreachable.status.code(), Some(3));
    assert!(stderr(&unreachable).contains("cannot reach the octogen server at http://127.0.0.1:9"));
}

/// Key usage is written off the request path, so the list shows it shortly after the request.
async fn assert_last_used_is_recorded(app: &TestApp, org: &str, full_key: &str) {
    let key_id = &full_key["octo_live_".len().."octo_live_".len() + 32];
    for _ in 0..50 {
        let listed = json(&app.cli(&["keys", "list", "--org", org, "--json"]).await);
        let key = listed.as_array().unwrap().iter().find(|key| key["id"] == key_id).expect("listed").clone();
        if !key["lastUsedAt"].is_null() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("lastUsedAt was never recorded for {key_id}");
}

/// A running `octogen demo` and what it printed up to "Press Ctrl-C".
pub struct Demo {
    pub printed: String,
    pub dir: tempfile::TempDir,
    _process: tokio::process::Child,
}

impl Demo {
    /// Starts `octogen demo ARGS` in a fresh directory with only PATH, HOME and
    /// `env` in its environment, and waits until it is ready.
    pub async fn start(args: &[&str], env: &[(&str, &str)]) -> Demo {
        use tokio::io::AsyncBufReadExt;
        let dir = tempfile::tempdir().unwrap();
        let mut process = tokio::process::Command::new(env!("CARGO_BIN_EXE_octogen"))
            .arg("demo")
            .args(args)
            .current_dir(dir.path())
            .env_clear()
            .envs(clean_env())
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(process.stdout.take().unwrap()).lines();
        let mut printed = String::new();
        let read_until_ready = async {
            while let Some(line) = lines.next_line().await.unwrap() {
                printed.push_str(&line);
                printed.push('\n');
                if line.starts_with("Press Ctrl-C") {
                    return;
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), read_until_ready).await.expect("the demo starts");
        assert!(printed.contains("Press Ctrl-C"), "the demo stopped early: {printed}");
        Demo { printed, dir, _process: process }
    }

    /// The first word after `marker` in what the demo printed.
    pub fn word_after(&self, marker: &str) -> String {
        let printed = &self.printed;
        let start = printed.find(marker).unwrap_or_else(|| panic!("{marker:?} in {printed}")) + marker.len();
        printed[start..].split_whitespace().next().unwrap().trim_end_matches('/').to_string()
    }

    pub fn key(&self) -> String {
        self.word_after("API key (shown once):")
    }

    pub fn base(&self) -> String {
        self.word_after("Octogen demo is running at")
    }

    /// The commands printed under "Try it", continuation lines joined.
    pub fn commands(&self) -> Vec<String> {
        let block = self.printed.split("Try it").nth(1).expect("a \"Try it\" block");
        let mut commands = Vec::new();
        let mut pending = String::new();
        for line in block.lines().skip(1).skip_while(|line| line.is_empty()).take_while(|line| !line.is_empty()) {
            pending.push_str(line.trim());
            match pending.strip_suffix('\\') {
                Some(continued) => pending = format!("{} ", continued.trim_end()),
                None => commands.push(std::mem::take(&mut pending)),
            }
        }
        commands
    }

    /// Runs `command` as printed with `sh -c` in the demo's directory, in an environment
    /// with only PATH and HOME; `stdin` is its input (a password, for `user create`).
    pub async fn run_verbatim(&self, command: &str, stdin: &str) -> std::process::Output {
        use tokio::io::AsyncWriteExt;
        let mut shell = tokio::process::Command::new("sh")
            .args(["-c", command])
            .current_dir(self.dir.path())
            .env_clear()
            .envs(clean_env())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = shell.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).await.unwrap();
        drop(input);
        shell.wait_with_output().await.unwrap()
    }
}

/// PATH and HOME, and nothing else of this process's environment.
fn clean_env() -> Vec<(String, String)> {
    ["PATH", "HOME"].iter().filter_map(|name| Some((name.to_string(), std::env::var(name).ok()?))).collect()
}

/// Issue 17.3: every command the demo prints works verbatim in a fresh shell — which
/// has no `octogen` on PATH and none of the demo's settings — also on a non-default address.
#[tokio::test]
async fn every_command_the_demo_prints_runs_verbatim_in_a_clean_shell() {
    let demo = Demo::start(&["--listen", "127.0.0.1:0"], &[]).await;
    let (key, base) = (demo.key(), demo.base());
    assert_ne!(base, "http://127.0.0.1:8080");
    let commands = demo.commands();
    assert_eq!(commands.len(), 5, "{commands:?}");
    let expectations = [
        ("/v1/catalogs", "\"northwind\""),
        ("/v1/products/search", "Trail Fleece Hoodie"),
        (" search ", "Trail Fleece Hoodie"),
        ("admin org list", "Demo Partner"),
        ("admin user create", "you@example.com"),
    ];
    for (marker, expected) in expectations {
        let command = commands.iter().find(|command| command.contains(marker)).unwrap_or_else(|| panic!("{marker}"));
        assert!(!command.starts_with("octogen "), "octogen is not on PATH after set-up: {command}");
        let output = demo.run_verbatim(command, "a-demo-operator-password\n").await;
        assert!(output.status.success(), "{command}\nstdout: {}\nstderr: {}", stdout(&output), stderr(&output));
        assert!(stdout(&output).contains(expected), "{command}: {}", stdout(&output));
    }
    for command in commands.iter().filter(|command| command.contains(" admin ")) {
        assert!(command.contains(&format!("OCTOGEN_SERVER={base} ")), "{command}");
    }
    assert!(commands.iter().any(|command| command.contains(&format!("OCTO_BASE_URL={base} OCTO_API_KEY={key} "))));
    assert!(demo.printed.contains(&format!("{base}/login")), "{}", demo.printed);
    assert!(demo.dir.path().join("octogen-data/admin-token").exists());
}

/// Issue 17.4: the demo takes its address and data directory from `OCTOGEN_LISTEN` /
/// `OCTOGEN_DATA_DIR` and from a `--config` file, like `serve`, and its printed operator
/// commands point at them.
#[tokio::test]
async fn the_demo_honours_every_documented_way_to_set_its_address() {
    let from_env = Demo::start(&[], &[("OCTOGEN_LISTEN", "127.0.0.1:0"), ("OCTOGEN_DATA_DIR", "state")]).await;
    let config = tempfile::tempdir().unwrap();
    let file = config.path().join("octogen.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\ndata_dir = \"from-file\"\n").unwrap();
    let from_file = Demo::start(&["--config", file.to_str().unwrap()], &[]).await;
    for (demo, data_dir) in [(&from_env, "state"), (&from_file, "from-file")] {
        let base = demo.base();
        assert_ne!(base, "http://127.0.0.1:8080", "{}", demo.printed);
        assert!(demo.dir.path().join(data_dir).join("admin-token").exists(), "{}", demo.printed);
        let org_list = demo.commands().into_iter().find(|command| command.contains("admin org list")).unwrap();
        assert!(org_list.contains(&format!("OCTOGEN_SERVER={base} OCTOGEN_DATA_DIR={data_dir} ")), "{org_list}");
        let output = demo.run_verbatim(&org_list, "").await;
        assert!(output.status.success(), "{org_list}: {}", stderr(&output));
    }
}

/// Issue 17.4: a busy port's error names the ways to choose another address.
#[tokio::test]
async fn a_busy_port_names_the_ways_to_choose_another_address() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = busy.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    for (args, env) in [
        (vec!["demo", "--listen", address.as_str()], vec![]),
        (vec!["demo"], vec![("OCTOGEN_LISTEN", address.as_str())]),
    ] {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_octogen"))
            .args(&args)
            .current_dir(dir.path())
            .env_clear()
            .envs(clean_env())
            .envs(env)
            .output()
            .await
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let err = stderr(&output);
        let line = err.lines().find(|line| line.starts_with("error: ")).unwrap_or_else(|| panic!("{err}"));
        assert!(line.contains(&address) && line.contains("--listen") && line.contains("OCTOGEN_LISTEN"), "{line}");
    }
}

/// Issue 17.5: a refused operator token is not reported as a missing one, and the
/// message says where the CLI took it from.
#[tokio::test]
async fn a_refused_operator_token_names_where_it_came_from() {
    let app = TestApp::spawn().await;
    let run = |env: Vec<(&'static str, String)>, extra: Vec<&'static str>| {
        let base = app.base.clone();
        let dir = app.data_dir.path().to_path_buf();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_octogen"))
                .args(["admin", "org", "list"])
                .args(extra)
                .current_dir(dir)
                .env_clear()
                .envs(clean_env())
                .env("OCTOGEN_SERVER", base)
                .envs(env)
                .output()
                .await
                .unwrap()
        }
    };
    let wrong = "octo_admin_wrongwrongwrongwrongwrong".to_string();
    let missing = run(vec![], vec![]).await;
    assert_eq!(missing.status.code(), Some(4));
    assert!(stderr(&missing).contains("no operator token: set OCTOGEN_ADMIN_TOKEN"), "{}", stderr(&missing));

    std::fs::create_dir_all(app.data_dir.path().join("octogen-data")).unwrap();
    std::fs::write(app.data_dir.path().join("octogen-data/admin-token"), &wrong).unwrap();
    let cases = [
        (run(vec![("OCTOGEN_ADMIN_TOKEN", wrong.clone())], vec![]).await, "(from OCTOGEN_ADMIN_TOKEN)"),
        (run(vec![], vec![]).await, "(from octogen-data/admin-token)"),
        (run(vec![], vec!["--admin-token", "octo_admin_wrongwrongwrongwrongwrong"]).await, "(from --admin-token)"),
    ];
    for (output, source) in cases {
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(4), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!("error: the operator token was not accepted by {} {source}", app.base)),
            "{err}"
        );
        assert!(!err.contains(&wrong), "the token itself is never shown: {err}");
    }
    // The right token, from any of the three places, works.
    std::fs::write(app.data_dir.path().join("octogen-data/admin-token"), &app.admin_token).unwrap();
    assert!(run(vec![], vec![]).await.status.success());
}

/// Issue 17.8: `admin catalog list` shows each catalog's status, product count and last run.
#[tokio::test]
async fn catalog_list_shows_status_products_and_last_run() {
    let app = TestApp::spawn().await;
    app.partner_with_northwind("northwind").await;
    app.create_catalog("empty").await;
    app.create_catalog("retired").await;
    let failed = app.import("retired", "shopify", br#"{"products": []}"#, serde_json::json!({"currency": "USD"})).await;
    assert_eq!(failed["status"], "failed");
    assert!(app.cli(&["admin", "catalog", "deactivate", "retired"]).await.status.success());

    let listed = stdout(&app.cli(&["admin", "catalog", "list"]).await);
    let lines: Vec<&str> = listed.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["KEY", "NAME", "STATUS", "PRODUCTS", "LAST", "RUN", "SOURCE"], "{listed}");
    let row = |key: &str| {
        lines
            .iter()
            .find(|line| line.starts_with(&format!("{key} ")))
            .unwrap_or_else(|| panic!("{key} in {listed}"))
            .to_string()
    };
    let northwind = row("northwind");
    assert!(
        northwind.contains(" active ") && northwind.contains(" 24 ") && northwind.contains(" succeeded 20"),
        "{northwind}"
    );
    assert!(row("empty").contains(" active ") && row("empty").contains(" never "), "{listed}");
    assert!(row("retired").contains(" inactive ") && row("retired").contains(" failed 20"), "{listed}");

    let catalogs = json(&app.cli(&["admin", "catalog", "list", "--json"]).await);
    let retired = catalogs.as_array().unwrap().iter().find(|catalog| catalog["key"] == "retired").unwrap();
    assert_eq!(retired["isActive"], false);
    assert_eq!(retired["lastRun"]["status"], "failed");
    assert!(retired["lastRun"]["error"].as_str().unwrap().contains("no valid product"), "{retired}");
}

#[tokio::test]
async fn keys_rotate_can_keep_the_old_key_working_for_a_while() {
    let app = TestApp::spawn().await;
    let org = app.partner("Keyholder").await;
    let key = json(&app.cli(&["keys", "create", "--org", &org, "--name", "production", "--json"]).await);
    let (old_id, old_key) = (key["id"].as_str().unwrap(), key["key"].as_str().unwrap());

    let rotated = json(&app.cli(&["keys", "rotate", old_id, "--expire-old-in", "24h", "--json"]).await);
    let expires_at = rotated["previous"]["expiresAt"].as_str().expect("an expiry").to_string();
    let expires = octogen_core::Timestamp::parse_rfc3339(&expires_at).unwrap();
    let in_a_day = octogen_core::Timestamp::now().millis() + 86_400_000;
    assert!((expires.millis() - in_a_day).abs() < 60_000, "{rotated}");
    assert_eq!(rotated["previous"]["status"], "active");
    assert_eq!(app.catalogs(old_key).await.status(), 200, "the old key keeps working meanwhile");

    let human = stdout(&app.cli(&["keys", "list", "--org", &org]).await);
    assert!(human.lines().next().unwrap().contains("EXPIRES"), "{human}");
    let old_row = human.lines().find(|line| line.contains(old_id)).unwrap_or_else(|| panic!("{human}"));
    assert!(old_row.contains(&expires_at), "{human}");
    let listed = json(&app.cli(&["keys", "list", "--org", &org, "--json"]).await);
    let old = listed.as_array().unwrap().iter().find(|k| k["id"] == old_id).unwrap();
    assert_eq!(old["expiresAt"], expires_at.as_str());

    let replacement = rotated["id"].as_str().unwrap();
    let said = stdout(&app.cli(&["keys", "rotate", replacement, "--expire-old-in", "30m"]).await);
    assert!(said.contains(&format!("The old key {replacement} keeps working until")), "{said}");
    for (args, code, message) in [
        (vec!["--expire-old-in", "31d"], 6, "--expire-old-in \"31d\" is out of range"),
        (vec!["--expire-old-in", "2w"], 6, "invalid --expire-old-in \"2w\""),
        (vec!["--expire-old-in", "0s"], 6, "out of range"),
        (vec!["--expire-old-in", "1h", "--revoke-old"], 2, "cannot be used with"),
    ] {
        let output = app.cli(&[&["keys", "rotate", replacement][..], &args].concat()).await;
        assert_eq!(output.status.code(), Some(code), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(message), "{args:?}: {}", stderr(&output));
    }
}

/// The id of the user with `email`.
async fn user_id(app: &TestApp, email: &str) -> String {
    let users = json(&app.cli(&["admin", "user", "list", "--json"]).await);
    users.as_array().unwrap().iter().find(|user| user["email"] == email).unwrap()["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn admin_user_commands_contain_a_compromised_account() {
    use crate::oauth::{partner_app, tools_list, Agent, Person, PASSWORD};
    use crate::portal::Browser;

    let (app, _org, mut person) = partner_app().await;
    let email = "agent-owner@acme.test";
    let id = user_id(&app, email).await;
    let agent = Agent::register(&app.base).await;
    let tokens = agent.connect(&mut person).await;
    assert_eq!(tools_list(&app, &tokens.access).await.status, 200);

    // Disable: signed out at once, the agent's tokens stop, and sign-in answers like a wrong password.
    let disabled = app.cli(&["admin", "user", "disable", &id]).await;
    assert!(stdout(&disabled).contains(&format!("Disabled user {email}")), "{}", stderr(&disabled));
    assert_eq!(person.get("/keys").await.status, 303, "the browser session ended");
    assert_eq!(tools_list(&app, &tokens.access).await.status, 401, "the agent's access token ended");
    assert_eq!(agent.refresh(&tokens.refresh).await.status, 400, "and its refresh token");
    let refused = Browser::at(&app.base).sign_in(email, PASSWORD).await;
    assert_eq!(refused.status, 401);
    assert!(refused.body.contains("Incorrect email or password."));
    let enabled = json(&app.cli(&["admin", "user", "enable", &id, "--json"]).await);
    assert_eq!(enabled["disabledAt"], Value::Null);
    let mut person = Person::signed_in(&app, email).await;

    // The operator flag, on and off, effective on the next page.
    assert!(stdout(&app.cli(&["admin", "user", "set-operator", &id, "--on"]).await).contains("is an operator"));
    assert_eq!(person.get("/operator/orgs").await.status, 200);
    let off = json(&app.cli(&["admin", "user", "set-operator", &id, "--off", "--json"]).await);
    assert_eq!(off["operator"], false);
    assert_eq!(person.get("/operator/orgs").await.status, 403);
    assert_eq!(app.cli(&["admin", "user", "set-operator", &id]).await.status.code(), Some(2), "--on or --off");

    // Signing out everywhere.
    let mut second = Person::signed_in(&app, email).await;
    let revoked = json(&app.cli(&["admin", "user", "sessions", "revoke", &id, "--json"]).await);
    assert_eq!(revoked["sessionsEnded"], 2);
    assert_eq!((person.get("/keys").await.status.as_u16(), second.get("/keys").await.status.as_u16()), (303, 303));

    // A one-time reset link, on the address the command used.
    let reset = app.cli(&["admin", "user", "reset-password", &id]).await;
    let text = stdout(&reset);
    let link = text.lines().map(str::trim).find(|line| line.starts_with("http")).unwrap_or_else(|| panic!("{text}"));
    assert!(link.starts_with(&format!("{}/reset-password?token=", app.base)), "{text}");
    assert!(text.contains("works once"), "{text}");
    let form = Browser::at(&app.base).get(link.strip_prefix(&app.base).unwrap()).await;
    assert_eq!(form.status, 200);

    let missing = app.cli(&["admin", "user", "disable", "no-such-user"]).await;
    assert_eq!(missing.status.code(), Some(5), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("user no-such-user not found"), "{}", stderr(&missing));
}
