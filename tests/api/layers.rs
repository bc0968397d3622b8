//! The layers of `src/` keep their direction: storage is a leaf (it imports nothing from the
//! domain, the transports, the brains, the jobs or the cluster), the domain and the brains
//! never reach up into a transport, and the transports ask the domain, not the storage. A `use`
//! that breaks the direction fails here, naming the file and the line.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The top-level modules (`crate::<name>`) a file's code refers to, with their lines; comments
/// and doc links do not count.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut paths = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let name: String = rest[at + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            paths.push((number + 1, name));
            rest = &rest[at + 7..];
        }
    }
    paths
}

/// The references from files under `layer` to modules outside `allowed`.
fn violations(layer: &str, allowed: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(layer);
    let files = sources(&root);
    assert!(!files.is_empty(), "no sources under {}", root.display());
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable source");
        for (line, module) in crate_paths(&text) {
            if !allowed.contains(&module.as_str()) {
                found.push(format!("{}:{line} uses crate::{module}", file.display()));
            }
        }
    }
    found
}

#[test]
fn storage_is_a_leaf() {
    let found = violations("storage", &["storage", "secrets", "ids", "status", "on_backend"]);
    assert!(found.is_empty(), "storage reaches up:\n{}", found.join("\n"));
}

#[test]
fn the_domain_and_the_brains_never_reach_into_a_transport() {
    for layer in ["domain", "brain", "jobs"] {
        let found: Vec<String> =
            violations(layer, &[]).into_iter().filter(|v| v.contains("uses crate::transport")).collect();
        assert!(found.is_empty(), "{layer} reaches into a transport:\n{}", found.join("\n"));
    }
}

/// What a file's code names under `crate::storage::` (the first segment of each path, every
/// item of a `{…}` group), with its lines.
fn storage_items(text: &str) -> Vec<(usize, String)> {
    let mut items = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::storage::") {
            rest = &rest[at + "crate::storage::".len()..];
            let names: Vec<String> = match rest.strip_prefix('{') {
                Some(group) => top_level_items(group),
                None => vec![rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()],
            };
            items.extend(names.into_iter().map(|name| (number + 1, name)));
        }
    }
    items
}

/// The first segment of each item of a `{…}` group (the text after its `{`), nested groups
/// skipped.
fn top_level_items(group: &str) -> Vec<String> {
    let (mut items, mut current, mut depth) = (Vec::new(), String::new(), 0);
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => items.push(std::mem::take(&mut current)),
            _ if depth == 0 => current.push(c),
            _ => {}
        }
    }
    items.push(current);
    items
        .iter()
        .map(|item| item.trim().split("::").next().unwrap_or_default().to_owned())
        .filter(|item| !item.is_empty())
        .collect()
}

/// The transports (HTTP, sockets, the compatible APIs, the web pages) translate shapes and ask
/// the domain; none calls a repository. They may hold the pool's handle and its error type, which
/// they pass to the domain and report, and nothing else of the storage.
#[test]
fn the_transports_ask_the_domain_not_the_storage() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join("transport");
    let mut found = Vec::new();
    for file in sources(&root) {
        let text = std::fs::read_to_string(&file).expect("readable source");
        for (line, item) in storage_items(&text) {
            if !["Db", "DbError"].contains(&item.as_str()) {
                found.push(format!("{}:{line} uses crate::storage::{item}", file.display()));
            }
        }
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if code.contains("|conn|") {
                found.push(format!("{}:{} runs a database closure", file.display(), number + 1));
            }
        }
    }
    assert!(found.is_empty(), "a transport reads or writes storage:\n{}", found.join("\n"));
}

#[test]
fn the_checks_see_a_violation() {
    // The positive control: a line that breaks the rule is found, one in a comment is not.
    let text = "use crate::storage::Db;\nuse crate::domain::chat::Chat; // crate::transport\n/// [`crate::transport`]";
    let modules: Vec<String> = crate_paths(text).into_iter().map(|(_, m)| m).collect();
    assert_eq!(modules, ["storage", "domain"]);
    let text =
        "use crate::storage::{Db, notes::{self, NoteView}};\nlet x = crate::storage::now_ms(); // crate::storage::keys";
    let items: Vec<String> = storage_items(text).into_iter().map(|(_, item)| item).collect();
    assert_eq!(items, ["Db", "notes", "now_ms"]);
}
