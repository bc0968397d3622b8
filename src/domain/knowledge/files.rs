//! Content-addressed storage for uploaded knowledge files, under `<data_dir>/files`.
//!
//! A file is stored once per distinct content at `files/<hh>/<sha256>` (`hh` being the hash's first two hex
//! digits, so no directory grows huge). Uploads stream into a temporary file in `files/tmp/` while being hashed
//! and measured; only a complete upload within its size limit is fsynced and renamed into place, so a stored path
//! always holds the whole content its name promises. Rejected, failed or abandoned uploads delete their
//! temporary file at once, and [`FileStore::open`] clears any a crash left behind.
//!
//! Every method does blocking `std::fs` I/O. Async callers run it on a blocking pool (`web::block` or
//! `tokio::task::spawn_blocking`): a [`PendingFile`] is `Send + 'static`, so an upload handler can move it into
//! the blocking closure for each chunk it receives and get it back, or, for small limits, gather the chunks in
//! memory and call [`FileStore::store_bytes`] once.
//!
//! Hashes reach the filesystem only after [`FileStore::path`] has checked they are 64 lowercase hex digits, so
//! text from a request can never name any other path.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use thiserror::Error;

/// How many leading bytes of a stored file [`StoredFile::head`] keeps: what type sniffing reads.
pub const HEAD_LEN: usize = 8 * 1024;

const TEMP_DIR: &str = "tmp";

/// Why a file could not be stored.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The files of all knowledge sources, addressed by the SHA-256 of their content.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
}

/// A stored file's identity and the start of its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// Lowercase hex SHA-256 of the content; the file's address in the store.
    pub sha256: String,
    pub size: u64,
    /// The first [`HEAD_LEN`] bytes (all of them for smaller files), for type sniffing without rereading.
    pub head: Vec<u8>,
}

impl FileStore {
    /// Opens (creating if needed) the store in `<data_dir>/files`, deleting temporary files left by uploads that
    /// were cut short by a crash.
    ///
    /// Open one store per data folder, before uploads start: the cleanup would delete the temporary file of an
    /// upload in progress through another store on the same folder.
    pub fn open(data_dir: impl AsRef<Path>) -> io::Result<Self> {
        let root = data_dir.as_ref().join("files");
        let temp_dir = root.join(TEMP_DIR);
        fs::create_dir_all(&temp_dir)?;
        let mut removed = 0usize;
        for entry in fs::read_dir(&temp_dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                fs::remove_dir_all(entry.path())?;
            } else {
                fs::remove_file(entry.path())?;
            }
            removed += 1;
        }
        if removed > 0 {
            tracing::info!(count = removed, dir = %temp_dir.display(), "removed leftover temporary upload files");
        }
        Ok(Self { root })
    }

    /// Starts storing an upload of at most `max_bytes` bytes, in a new temporary file.
    pub fn begin(&self, max_bytes: u64) -> io::Result<PendingFile> {
        // Process id plus a counter is unique among live uploads; `create_new` still guards against a name
        // reused from an earlier process, whose leftovers are only cleared at open.
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let temp_dir = self.root.join(TEMP_DIR);
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let temp = temp_dir.join(format!("upload-{}-{n}", std::process::id()));
            match OpenOptions::new().write(true).create_new(true).open(&temp) {
                Ok(file) => {
                    return Ok(PendingFile {
                        root: self.root.clone(),
                        temp: Some(temp),
                        file: Some(file),
                        hasher: Sha256::new(),
                        size: 0,
                        max_bytes,
                        head: Vec::new(),
                        too_large: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Stores `bytes` in one go; the same as [`begin`](Self::begin), one [`PendingFile::write`] and
    /// [`PendingFile::finish`].
    pub fn store_bytes(&self, bytes: &[u8], max_bytes: u64) -> Result<StoredFile, StoreError> {
        let mut pending = self.begin(max_bytes)?;
        pending.write(bytes)?;
        pending.finish()
    }

    /// Where the file with this SHA-256 lives, stored or not; `None` unless `sha256` is 64 lowercase hex digits.
    pub fn path(&self, sha256: &str) -> Option<PathBuf> {
        is_sha256_hex(sha256).then(|| self.root.join(&sha256[..2]).join(sha256))
    }

    /// The content stored under `sha256`; `InvalidInput` for a malformed hash, `NotFound` for an unknown one.
    pub fn read(&self, sha256: &str) -> io::Result<Vec<u8>> {
        let path = self
            .path(sha256)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a lowercase hex SHA-256 digest"))?;
        fs::read(path)
    }
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// An upload being written; [`finish`](Self::finish) stores it, dropping it instead deletes what was written.
#[derive(Debug)]
pub struct PendingFile {
    root: PathBuf,
    /// `None` once the temporary file has been renamed into the store or deleted.
    temp: Option<PathBuf>,
    /// `None` once the upload is over: rejected, failed, or being finished.
    file: Option<File>,
    hasher: Sha256,
    size: u64,
    max_bytes: u64,
    head: Vec<u8>,
    too_large: bool,
}

impl PendingFile {
    /// Appends `chunk`. Going over the size limit returns [`StoreError::TooLarge`] and deletes the temporary
    /// file right away; after that, or after a write error, every call fails the same way.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        let Some(file) = self.file.as_mut() else {
            return Err(self.abandoned_error());
        };
        let size = self.size.saturating_add(chunk.len() as u64);
        if size > self.max_bytes {
            self.too_large = true;
            self.discard();
            return Err(StoreError::TooLarge { limit: self.max_bytes });
        }
        if let Err(e) = file.write_all(chunk) {
            self.discard();
            return Err(e.into());
        }
        self.hasher.update(chunk);
        let head_room = HEAD_LEN.saturating_sub(self.head.len());
        self.head.extend_from_slice(&chunk[..chunk.len().min(head_room)]);
        self.size = size;
        Ok(())
    }

    /// Bytes accepted so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Makes the content durable and moves it to its address. Content already stored is kept as it is and
    /// this copy deleted.
    pub fn finish(mut self) -> Result<StoredFile, StoreError> {
        let Some(file) = self.file.take() else {
            return Err(self.abandoned_error());
        };
        // Data must be on disk before the rename publishes it, or a crash could leave a stored name with
        // missing content.
        file.sync_all()?;
        drop(file);

        let sha256 = hex::encode(std::mem::take(&mut self.hasher).finalize());
        let dir = self.root.join(&sha256[..2]);
        fs::create_dir_all(&dir)?;
        let dest = dir.join(&sha256);
        // Drop deletes the temporary file in every case except a successful rename.
        if !dest.exists() {
            let temp = self.temp.as_ref().expect("the temporary file exists until finish or discard");
            fs::rename(temp, &dest)?;
            self.temp = None;
            sync_dir(&dir);
        }
        Ok(StoredFile { sha256, size: self.size, head: std::mem::take(&mut self.head) })
    }

    fn abandoned_error(&self) -> StoreError {
        if self.too_large {
            StoreError::TooLarge { limit: self.max_bytes }
        } else {
            io::Error::other("the upload was abandoned after an earlier error").into()
        }
    }

    /// Closes and deletes the temporary file.
    fn discard(&mut self) {
        // Closed first: some platforms refuse to delete an open file.
        self.file = None;
        if let Some(temp) = self.temp.take() {
            if let Err(e) = fs::remove_file(&temp) {
                tracing::warn!(path = %temp.display(), error = %e, "could not delete a temporary upload file");
            }
        }
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        self.discard();
    }
}

/// Persists a rename in `dir`. Best effort: not every platform can open a directory to sync it, and the
/// content itself is already durable.
fn sync_dir(dir: &Path) {
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO_SHA256: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn temp_files(store: &FileStore) -> Vec<PathBuf> {
        fs::read_dir(store.root.join(TEMP_DIR)).unwrap().map(|e| e.unwrap().path()).collect()
    }

    /// Every stored file, as paths relative to the store root.
    fn stored_files(store: &FileStore) -> Vec<String> {
        let mut out = Vec::new();
        for dir in fs::read_dir(&store.root).unwrap() {
            let dir = dir.unwrap();
            if dir.file_name() == TEMP_DIR {
                continue;
            }
            for file in fs::read_dir(dir.path()).unwrap() {
                let file = file.unwrap().path();
                out.push(file.strip_prefix(&store.root).unwrap().to_string_lossy().into_owned());
            }
        }
        out.sort();
        out
    }

    #[test]
    fn same_content_is_stored_once_at_its_hash() {
        let data = tempfile::tempdir().unwrap();
        let store = FileStore::open(data.path()).unwrap();
        let first = store.store_bytes(b"hello", 100).unwrap();
        assert_eq!(first, StoredFile { sha256: HELLO_SHA256.into(), size: 5, head: b"hello".to_vec() });

        let mut pending = store.begin(100).unwrap();
        pending.write(b"he").unwrap();
        pending.write(b"").unwrap();
        pending.write(b"llo").unwrap();
        assert_eq!(pending.size(), 5);
        assert_eq!(pending.finish().unwrap(), first);

        let path = store.path(HELLO_SHA256).unwrap();
        assert_eq!(path, data.path().join("files").join("2c").join(HELLO_SHA256));
        assert_eq!(stored_files(&store), [format!("2c/{HELLO_SHA256}")]);
        assert_eq!(store.read(HELLO_SHA256).unwrap(), b"hello");
        assert!(temp_files(&store).is_empty());
    }

    #[test]
    fn head_keeps_only_the_first_bytes_and_size_counts_all() {
        let data = tempfile::tempdir().unwrap();
        let store = FileStore::open(data.path()).unwrap();
        let content: Vec<u8> = (0..3 * HEAD_LEN + 17).map(|i| (i % 251) as u8).collect();
        let mut pending = store.begin(content.len() as u64).unwrap();
        for chunk in content.chunks(1000) {
            pending.write(chunk).unwrap();
        }
        let stored = pending.finish().unwrap();
        assert_eq!(stored.size, content.len() as u64);
        assert_eq!(stored.head, content[..HEAD_LEN]);
        assert_eq!(stored.sha256, hex::encode(Sha256::digest(&content)));
        assert_eq!(store.read(&stored.sha256).unwrap(), content);
    }

    #[test]
    fn empty_files_are_stored_too() {
        let data = tempfile::tempdir().unwrap();
        let store = FileStore::open(data.path()).unwrap();
        let stored = store.store_bytes(b"", 0).unwrap();
        assert_eq!(stored.sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!((stored.size, stored.head.len()), (0, 0));
    }

    #[test]
    fn exceeding_the_limit_deletes_the_temporary_file_at_once() {
        let data = tempfile::tempdir().unwrap();
        let store = FileStore::open(data.path()).unwrap();
        let mut pending = store.begin(10).unwrap();
        pending.write(b"123456").unwrap();
        pending.write(b"7890").unwrap();
        assert_eq!(temp_files(&store).len(), 1);
        assert!(matches!(pending.write(b"x"), Err(StoreError::TooLarge { limit: 10 })));
        assert!(temp_files(&store).is_empty(), "deleted before the pending file is dropped");
        assert!(matches!(pending.write(b""), Err(StoreError::TooLarge { limit: 10 })));
        assert!(matches!(pending.finish(), Err(StoreError::TooLarge { limit: 10 })));
        assert!(matches!(store.store_bytes(b"hello", 4), Err(StoreError::TooLarge { limit: 4 })));
        assert!(temp_files(&store).is_empty());
        assert!(stored_files(&store).is_empty());
        assert_eq!(store.store_bytes(b"hello", 5).unwrap().size, 5, "the limit itself is allowed");
    }

    #[test]
    fn dropping_an_unfinished_upload_leaves_nothing() {
        let data = tempfile::tempdir().unwrap();
        let store = FileStore::open(data.path()).unwrap();
        let mut first = store.begin(100).unwrap();
        let mut second = store.begin(100).unwrap();
        first.write(b"partial").unwrap();
        second.write(b"other").unwrap();
        assert_eq!(temp_files(&store).len(), 2, "concurrent uploads get distinct temporary files");
        drop(first);
        drop(second);
        assert!(temp_files(&store).is_empty());
        assert!(stored_files(&store).is_empty());
    }

    #[test]
    fn leftovers_from_a_crash_are_removed_on_open() {
        let data = tempfile::tempdir().unwrap();
        let store = FileStore::open(data.path()).unwrap();
        let stored = store.store_bytes(b"keep me", 100).unwrap();
        let mut pending = store.begin(100).unwrap();
        pending.write(b"interrupted").unwrap();
        // A crash skips destructors.
        std::mem::forget(pending);
        fs::create_dir(store.root.join(TEMP_DIR).join("stray-dir")).unwrap();
        fs::write(store.root.join(TEMP_DIR).join("stray-dir").join("f"), b"x").unwrap();
        assert_eq!(temp_files(&store).len(), 2);

        let reopened = FileStore::open(data.path()).unwrap();
        assert!(temp_files(&reopened).is_empty());
        assert_eq!(reopened.read(&stored.sha256).unwrap(), b"keep me");
    }

    #[test]
    fn only_hex_digests_become_paths() {
        let data = tempfile::tempdir().unwrap();
        let store = FileStore::open(data.path()).unwrap();
        let traversal = format!("../../../etc/passwd{}", "0".repeat(45));
        for bad in [
            "",
            "../etc/passwd",
            traversal.as_str(),
            &HELLO_SHA256.to_uppercase(),
            &HELLO_SHA256[..63],
            &format!("{HELLO_SHA256}0"),
            &format!("{}/{}", &HELLO_SHA256[..31], &HELLO_SHA256[32..]),
            &format!("{}g", &HELLO_SHA256[..63]),
        ] {
            assert_eq!(store.path(bad), None, "{bad:?}");
            assert_eq!(store.read(bad).unwrap_err().kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
        assert_eq!(store.read(HELLO_SHA256).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn pending_files_can_move_to_a_blocking_pool() {
        fn assert_send_static<T: Send + 'static>() {}
        assert_send_static::<PendingFile>();
        assert_send_static::<FileStore>();
    }
}
