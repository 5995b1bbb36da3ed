//! Issue 17.10: every shell block of README.md marked `sh runnable` runs as
//! written, in order, in one shell session against a fresh `octogen demo`
//! (the substitutions are the ones README's "Runnable examples" documents).

use std::path::{Path, PathBuf};

use crate::cli::Demo;
use crate::helpers::{stderr, stdout};

const RUNNABLE: &str = "```sh runnable";

/// The blocks marked runnable, in order.
fn runnable_blocks(readme: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if line.trim_end() == RUNNABLE {
            let block: Vec<&str> = lines.by_ref().take_while(|line| line.trim_end() != "```").collect();
            blocks.push(block.join("\n"));
        }
    }
    blocks
}

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

#[tokio::test]
async fn every_runnable_readme_block_runs_as_written() {
    if std::process::Command::new("jq").arg("--version").output().is_err() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "jq is required in CI");
        eprintln!("skipping: jq is not installed");
        return;
    }
    let root = repository_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks = runnable_blocks(&readme);
    assert!(blocks.len() >= 7, "README lost its runnable blocks: {}", blocks.len());

    let demo = Demo::start(&["--listen", "127.0.0.1:0"], &[]).await;
    let (base, key) = (demo.base(), demo.key());
    let script =
        format!("set -e\n{}\n", blocks.join("\n")).replace("http://127.0.0.1:8080", &base).replace("octo_live_…", &key);
    let binary_dir = Path::new(env!("CARGO_BIN_EXE_octogen")).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", binary_dir.display(), std::env::var("PATH").unwrap_or_default());
    let data_dir = demo.dir.path().join("octogen-data");
    let mut session = tokio::process::Command::new("sh")
        .args(["-c", &script])
        .current_dir(&root)
        .env_clear()
        .env("PATH", path)
        .envs(std::env::var("HOME").ok().map(|home| ("HOME", home)))
        .env("OCTO_API_KEY", &key)
        .env("OCTO_BASE_URL", &base)
        .env("OCTOGEN_SERVER", &base)
        .env("OCTOGEN_DATA_DIR", &data_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = session.stdin.take().unwrap();
        stdin.write_all(b"the first operator's password\n").await.unwrap();
    }
    let output = session.wait_with_output().await.unwrap();
    let (out, err) = (stdout(&output), stderr(&output));
    assert!(
        output.status.success(),
        "the README's commands failed\n--- script\n{script}\n--- stdout\n{out}\n--- stderr\n{err}"
    );
    for expected in [
        "\"northwind\"",                // curl /v1/catalogs
        "Trail Fleece Hoodie",          // searches and lookups
        "Created catalog acme",         // operator commands
        "Imported catalog outdoor",     // the import
        "Created user you@example.com", // the first operator
        "dev@acme.example",             // partner users
    ] {
        assert!(out.contains(expected), "{expected:?} not in the output:\n{out}\n--- stderr\n{err}");
    }
    assert!(!err.contains("error:"), "{err}");
}

#[test]
fn runnable_blocks_are_found_verbatim() {
    let readme = "text\n```sh runnable\na \\\n  b\nc\n```\n```sh\nnot this\n```\n```sh runnable\nd\n```\n";
    assert_eq!(runnable_blocks(readme), ["a \\\n  b\nc", "d"]);
}
