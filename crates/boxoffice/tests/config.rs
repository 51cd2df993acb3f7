//! Settings come from built-in defaults, then an optional TOML file, then the environment, then
//! flags, each overriding the one before; a file with an unknown setting is refused.

use boxoffice_testkit::instance::Instance;
use boxoffice_testkit::{Engine, TestDatabase};
use reqwest::Method;
use std::path::Path;

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_boxoffice"))
}

async fn burst_limit(instance: &Instance) -> String {
    let reply = instance.call(Method::GET, "/events", None, None).await;
    reply.headers["ratelimit-limit"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_file_sets_defaults_and_the_environment_overrides_it() {
    let db = TestDatabase::fresh(Engine::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("boxoffice.toml");
    std::fs::write(
        &file,
        "rate_ip = \"5/m:7\"\nread_cache_ms = 100\nno_demo = true\n",
    )
    .unwrap();
    let from_file = Instance::start(
        binary(),
        &db.url,
        &[("BOXOFFICE_CONFIG", file.display().to_string())],
    )
    .await;
    assert_eq!(burst_limit(&from_file).await, "7", "the file's rate");
    drop(from_file);
    let overridden = Instance::start(
        binary(),
        &db.url,
        &[
            ("BOXOFFICE_CONFIG", file.display().to_string()),
            ("BOXOFFICE_RATE_IP", "5/m:9".to_owned()),
        ],
    )
    .await;
    assert_eq!(
        burst_limit(&overridden).await,
        "9",
        "the environment wins over the file"
    );
}

#[test]
fn a_file_with_an_unknown_setting_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("boxoffice.toml");
    std::fs::write(&file, "rate_everything = \"1/s:1\"\n").unwrap();
    let output = std::process::Command::new(binary())
        .args(["migrate", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown setting \"rate_everything\""),
        "{stderr}"
    );
}
