//! The first start explains itself: the real binary, started the ways a newcomer gets wrong
//! (a busy port, PostgreSQL down, a database that does not exist, a typo in the config file, a
//! data folder it cannot create), answers with one line that says what is wrong, never a
//! panic, and a failed start never swallows the demo workspace's credentials. `frontdesk
//! check` reports each service; logs carry no colour codes when they go to a file.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::helpers::{pg_admin_url, Backend, TestDb};
use crate::on_both_backends;

on_both_backends!(a_busy_port_is_one_line_and_the_next_start_shows_the_demo_credentials);

fn frontdesk(args: &[&str], envs: &[(&str, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(args)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .env("RUST_LOG", "info")
        .env_remove("FRONTDESK_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("frontdesk runs")
}

/// The start failed with exactly one line on stderr that contains `expected`, and no panic.
fn failed_with_one_line(out: &Output, expected: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "the start should fail: {stderr}");
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    assert!(!stderr.contains("multiconnection"), "no diesel internals: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|line| line.starts_with("frontdesk: ")).collect();
    assert_eq!(errors.len(), 1, "one line says what is wrong: {stderr}");
    assert!(errors[0].contains(expected), "`{expected}` in {stderr}");
    assert!(stderr.lines().count() <= 3, "nothing else drowns it: {stderr}");
    errors[0].to_owned()
}

async fn a_busy_port_is_one_line_and_the_next_start_shows_the_demo_credentials(backend: Backend) {
    let db = TestDb::new(backend);
    let mut envs = db.binary_env();
    envs.push(("FRONTDESK_DEMO", "true".into()));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let mut busy = envs.clone();
    busy.push(("FRONTDESK_BIND", address.clone()));
    let out = frontdesk(&["serve"], &busy);
    let line = failed_with_one_line(&out, "the port is in use");
    assert!(line.contains(&address), "{line}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("demo workspace"), "nothing was created");

    let bad = [envs.clone(), vec![("FRONTDESK_BIND", "not-an-address".into())]].concat();
    failed_with_one_line(&frontdesk(&["serve"], &bad), "not an address like 127.0.0.1:8080");

    // The next start, on a free port, creates the demo workspace and shows its credentials.
    let mut server = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .arg("serve")
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .env("FRONTDESK_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = server.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
        seen.push(line);
        if seen.iter().any(|l| l.contains("\"api_key\"")) {
            break;
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    let text = seen.join("\n");
    assert!(text.contains("frontdesk listening on http://127.0.0.1:"), "{text}");
    assert!(text.contains("Created the demo workspace") && text.contains("\"api_key\": \"fdk_"), "{text}");
}

#[test]
fn postgres_down_or_missing_is_one_line_naming_the_host_and_never_the_password() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().display().to_string();
    // Nothing listens on port 1.
    let envs = vec![
        ("DATABASE_URL", "postgres://frontdesk:hunter2-secret@127.0.0.1:1/frontdesk".to_owned()),
        ("FRONTDESK_DATA_DIR", dir.clone()),
    ];
    let out = frontdesk(&["serve"], &envs);
    let line = failed_with_one_line(&out, "refused the connection");
    assert!(line.contains("127.0.0.1:1"), "{line}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("hunter2-secret"));

    let mut missing = reqwest::Url::parse(&pg_admin_url()).unwrap();
    missing.set_path(&format!("frontdesk_missing_{}", uuid::Uuid::new_v4().simple()));
    let envs = vec![("DATABASE_URL", missing.to_string()), ("FRONTDESK_DATA_DIR", dir.clone())];
    let line = failed_with_one_line(&frontdesk(&["serve"], &envs), "has no database `frontdesk_missing_");
    assert!(line.contains("createdb"), "{line}");

    let mut wrong_user = reqwest::Url::parse(&pg_admin_url()).unwrap();
    wrong_user.set_username("frontdesk_no_such_role").unwrap();
    let _ = wrong_user.set_password(Some("wrong-password-123"));
    let envs = vec![("DATABASE_URL", wrong_user.to_string()), ("FRONTDESK_DATA_DIR", dir)];
    let out = frontdesk(&["serve"], &envs);
    failed_with_one_line(&out, "refused user `frontdesk_no_such_role`");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("wrong-password-123"));
}

#[test]
fn a_typo_in_the_config_file_and_an_unusable_data_folder_are_named() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("frontdesk.toml");
    std::fs::write(&config, "bnid = \"127.0.0.1:9999\"\n").unwrap();
    let envs =
        [("FRONTDESK_CONFIG", config.display().to_string()), ("FRONTDESK_DATA_DIR", data.path().display().to_string())];
    let out = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .arg("serve")
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    failed_with_one_line(&out, "unknown setting `bnid` (did you mean `bind`?)");

    // A data folder below a file cannot be created.
    let file = data.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let under = file.join("data");
    let envs = vec![("FRONTDESK_DATA_DIR", under.display().to_string())];
    let line = failed_with_one_line(&frontdesk(&["serve"], &envs), "cannot use the data folder");
    assert!(line.contains(&under.display().to_string()), "{line}");
}

#[test]
fn check_reports_each_service_and_fails_when_one_is_unreachable() {
    let db = TestDb::new(Backend::Sqlite);
    let envs = db.binary_env();
    let out = frontdesk(&["check"], &envs);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for expected in ["database", "sqlite, reachable", "redis", "none: one node", "model", "built-in brain"] {
        assert!(stdout.contains(expected), "`{expected}` in {stdout}");
    }
    assert!(!db.dir.path().join("frontdesk.db").exists() || stdout.contains("migrations"), "{stdout}");

    let envs = [db.binary_env(), vec![("REDIS_URL", "redis://127.0.0.1:1".to_owned())]].concat();
    let out = frontdesk(&["check"], &envs);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("FAIL") && l.contains("redis://127.0.0.1:1")), "{stdout}");
}

#[test]
fn logs_written_to_a_file_carry_no_colour_codes() {
    let db = TestDb::new(Backend::Sqlite);
    let mut server = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .arg("serve")
        .envs(db.binary_env().iter().map(|(k, v)| (*k, v.as_str())))
        .env("FRONTDESK_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = server.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let listening = lines.next().unwrap().unwrap();
    assert!(listening.starts_with("frontdesk listening on"), "{listening}");
    let _ = server.kill();
    let out = server.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("INFO") || stderr.contains("DEBUG"), "the log was written: {stderr}");
    assert!(!stderr.contains('\u{1b}'), "no ANSI escape codes in {stderr}");
}
