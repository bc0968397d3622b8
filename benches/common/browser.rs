//! Headless Chromium for the benchmarks that drive a real browser (included with `#[path]`):
//! chromedriver on a free port, and a fresh browser profile per session.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};

/// The flags every benchmark's browser starts with: headless, quiet (no background traffic,
/// updates or sync), and able to run as root in a container.
const BASE_FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

/// chromedriver on a free port, ended when dropped.
pub struct Chromedriver {
    child: Child,
    port: u16,
    /// Removed when the benchmark ends (a closed browser may still be writing to its own).
    profiles: std::sync::Mutex<Vec<tempfile::TempDir>>,
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Chromedriver {
    pub fn start(binary: &str) -> Result<Chromedriver, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?.local_addr().unwrap().port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{binary}: {e}"))?;
        let driver = Chromedriver { child, port, profiles: Default::default() };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err("chromedriver did not start".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(driver)
    }

    /// A new browser with a fresh profile, started with [`BASE_FLAGS`] and `flags`.
    pub async fn session(&self, chromium: &str, flags: &[&str]) -> Result<Client, String> {
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut args: Vec<String> = BASE_FLAGS.iter().chain(flags).map(|flag| flag.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let capabilities =
            json!({ "browserName": "chrome", "goog:chromeOptions": { "binary": chromium, "args": args } });
        let Value::Object(capabilities) = capabilities else { unreachable!() };
        let mut builder = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(capabilities);
        let client =
            builder.connect(&format!("http://127.0.0.1:{}", self.port)).await.map_err(|e| format!("a browser: {e}"))?;
        self.profiles.lock().unwrap().push(profile);
        Ok(client)
    }
}
