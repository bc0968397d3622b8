//! A small website on loopback for the knowledge tests: pages that can be changed while it
//! runs, redirects, slow pages, and a count of the connections it accepted (a canary that must
//! stay at zero when the SSRF guard works).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone)]
pub struct Page {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    pub location: Option<String>,
    pub delay: Duration,
}

impl Page {
    pub fn html(body: &str) -> Page {
        Page::typed("text/html; charset=utf-8", body.as_bytes().to_vec())
    }

    pub fn typed(content_type: &str, body: Vec<u8>) -> Page {
        Page { status: 200, content_type: content_type.into(), body, location: None, delay: Duration::ZERO }
    }

    pub fn redirect(to: &str) -> Page {
        Page { status: 302, location: Some(to.into()), ..Page::typed("text/plain", Vec::new()) }
    }
}

pub struct Site {
    pub addr: SocketAddr,
    pages: Arc<Mutex<HashMap<String, Page>>>,
    connections: Arc<AtomicUsize>,
}

impl Site {
    /// Serves on `ip` (e.g. "127.0.0.2") at a free port.
    pub async fn start(ip: &str) -> Site {
        let listener = TcpListener::bind((ip, 0)).await.expect("site binds");
        let addr = listener.local_addr().unwrap();
        let pages: Arc<Mutex<HashMap<String, Page>>> = Arc::default();
        let connections = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (pages.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let pages = served.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&head);
                    let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let page = pages.lock().unwrap().get(&path).cloned();
                    let page = page.unwrap_or(Page { status: 404, ..Page::typed("text/plain", b"not found".to_vec()) });
                    tokio::time::sleep(page.delay).await;
                    let mut response = format!(
                        "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
                        page.status,
                        page.content_type,
                        page.body.len()
                    );
                    if let Some(location) = &page.location {
                        response.push_str(&format!("Location: {location}\r\n"));
                    }
                    response.push_str("\r\n");
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.write_all(&page.body).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Site { addr, pages, connections }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set(&self, path: &str, page: Page) {
        self.pages.lock().unwrap().insert(path.to_owned(), page);
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// A page with a title, a heading per section and links.
pub fn page(title: &str, sections: &[(&str, &str)], links: &[&str]) -> Page {
    let mut html = format!(
        "<!doctype html><html><head><title>{title}</title><script>var tracking = 1;</script></head><body>\
         <nav><a href=\"/\">Home</a> Menu items everywhere</nav><main><h1>{title}</h1>"
    );
    for (heading, text) in sections {
        html.push_str(&format!("<h2>{heading}</h2><p>{text}</p>"));
    }
    for link in links {
        html.push_str(&format!("<p><a href=\"{link}\">more</a></p>"));
    }
    html.push_str("</main><footer>Copyright footer text</footer></body></html>");
    Page::html(&html)
}
