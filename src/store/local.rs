//! Lake files on a local filesystem (one host: advisory locks do not work over NFS).
//!
//! A rewrite holds the file's lock (`flock` on `<root>/.ticklake/locks/<key>.lock`, opened with `O_NOFOLLOW`)
//! across read → update → publish, so writers of one file take turns and none loses another's rows; readers never
//! take it. Under the lock, temporaries a killed writer of this file left (in `<root>/.ticklake/tmp/`) and the lock
//! and temporaries ticklake 0.1 kept beside the file are removed. The new contents are written with
//! [`parquet_io::write_atomic`] (temporary, fsync, footer check, rename, fsync of both directories). Nothing is
//! ever written through a symbolic link: a lock, target or folder below the root that is one is refused.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{check_key, Change, Published, Store};
use crate::error::{Error, Result};
use crate::parquet_io;

/// The lake's hidden folder at its root: locks, temporaries and import staging, never a data folder (SPEC §1).
pub const HIDDEN: &str = ".ticklake";

/// A local lake rooted at a directory.
#[derive(Clone, Debug)]
pub struct LocalStore {
    root: PathBuf,
    lock_timeout: Duration,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

fn unsafe_path(path: &Path, what: &str) -> Error {
    Error::Io {
        path: path.to_owned(),
        source: std::io::Error::other(format!(
            "{what} is a symbolic link; ticklake never writes through one"
        )),
    }
}

/// Creates `dir` and its missing parents below `root`, refusing any component below the root that is a symbolic
/// link (the root itself may be one: it is the user's choice of where the lake lives).
fn ensure_dir(root: &Path, dir: &Path) -> Result<()> {
    fs::create_dir_all(root).map_err(io(root))?;
    let rel = dir.strip_prefix(root).unwrap_or(dir);
    let mut at = root.to_path_buf();
    for part in rel.components() {
        at.push(part);
        match fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => return Err(unsafe_path(&at, "a folder")),
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(Error::Io {
                    path: at.clone(),
                    source: std::io::Error::other("not a folder"),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match fs::create_dir(&at) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && at.is_dir() => {}
                Err(e) => return Err(io(&at)(e)),
            },
            Err(e) => return Err(io(&at)(e)),
        }
    }
    Ok(())
}

/// An exclusive `flock` on a lock file, released when dropped (closing the descriptor releases it).
struct Held {
    _file: File,
}

impl LocalStore {
    /// A store rooted at `root`; writers of one file wait up to `lock_timeout` for each other.
    #[must_use]
    pub fn new(root: impl Into<PathBuf>, lock_timeout: Duration) -> Self {
        Self {
            root: root.into(),
            lock_timeout,
        }
    }

    /// The file of `key`.
    #[must_use]
    pub fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// The lock of `key`: `<root>/.ticklake/locks/<key>.lock`.
    #[must_use]
    pub fn lock_path(&self, key: &str) -> PathBuf {
        self.root
            .join(HIDDEN)
            .join("locks")
            .join(format!("{key}.lock"))
    }

    /// Where the temporaries of `key` are written: `<root>/.ticklake/tmp/<key's folder>/`, on the lake's
    /// filesystem so the rename is atomic.
    #[must_use]
    pub fn temp_dir(&self, key: &str) -> PathBuf {
        let dir = Path::new(key).parent().unwrap_or_else(|| Path::new(""));
        self.root.join(HIDDEN).join("tmp").join(dir)
    }

    fn lock(&self, key: &str) -> Result<Held> {
        let path = self.lock_path(key);
        let parent = path.parent().unwrap_or(&self.root).to_path_buf();
        ensure_dir(&self.root, &parent)?;
        let mut file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(file) => file,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(unsafe_path(&path, "the lock file"))
            }
            Err(e) => return Err(io(&path)(e)),
        };
        let deadline = Instant::now() + self.lock_timeout;
        loop {
            // SAFETY: a valid open descriptor and plain flags.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                break;
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(io(&path)(err));
            }
            if Instant::now() >= deadline {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(Error::Locked {
                    path: self.path(key),
                    holder: Some(holder.trim().to_owned()).filter(|h| !h.is_empty()),
                    seconds: self.lock_timeout.as_secs_f64(),
                });
            }
            thread::sleep(Duration::from_millis(5));
        }
        // Who holds it, for the message of a writer that waited too long.
        let _ = file.set_len(0);
        let _ = file.seek(SeekFrom::Start(0));
        let _ = write!(file, "{}", std::process::id());
        Ok(Held { _file: file })
    }

    /// Under the lock no live writer of `key` exists, so any temporary of it is a dead writer's; the lock and
    /// temporaries ticklake 0.1 kept beside the file go too.
    fn remove_stale(&self, key: &str, target: &Path) {
        let Some(name) = target.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            return;
        };
        let mut stale = Vec::new();
        for (dir, prefix, suffix) in [
            (self.temp_dir(key), format!("{name}."), ".tmp"),
            (parquet_io::parent_dir(target), format!(".{name}."), ".tmp"),
        ] {
            if let Ok(entries) = fs::read_dir(&dir) {
                for entry in entries.flatten() {
                    let file = entry.file_name().to_string_lossy().into_owned();
                    if file.starts_with(&prefix) && file.ends_with(suffix) {
                        stale.push(entry.path());
                    }
                }
            }
        }
        stale.push(target.with_file_name(format!(".{name}.lock")));
        for path in stale {
            let _ = fs::remove_file(path);
        }
    }

    fn read_stored(target: &Path) -> Result<Option<Bytes>> {
        match fs::symlink_metadata(target) {
            Ok(meta) if meta.file_type().is_symlink() => Err(unsafe_path(target, "the lake file")),
            Ok(_) => Ok(Some(Bytes::from(fs::read(target).map_err(io(target))?))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(target)(e)),
        }
    }
}

impl Store for LocalStore {
    fn locate(&self, key: &str) -> String {
        self.path(key).display().to_string()
    }

    fn rewrite(
        &self,
        key: &str,
        update: &mut dyn FnMut(Option<&Bytes>) -> Result<Change>,
    ) -> Result<Published> {
        check_key(key)?;
        let target = self.path(key);
        ensure_dir(&self.root, &parquet_io::parent_dir(&target))?;
        let _held = self.lock(key)?;
        self.remove_stale(key, &target);
        let stored = Self::read_stored(&target)?;
        match update(stored.as_ref())? {
            Change::Keep { rows } => Ok(Published::Unchanged { rows }),
            Change::Remove if stored.is_some() => {
                parquet_io::remove_atomic(&target)?;
                Ok(Published::Removed)
            }
            Change::Remove => Ok(Published::Unchanged { rows: 0 }),
            Change::Write(batch, options) => {
                let temp_dir = self.temp_dir(key);
                ensure_dir(&self.root, &temp_dir)?;
                let written = parquet_io::write_atomic(&target, &temp_dir, &batch, &options)?;
                Ok(Published::Written(written))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ticklake-store-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_symlinked_lock_or_folder_is_refused_and_nothing_outside_is_touched() {
        let root = scratch("links");
        let outside = root.join("outside.txt");
        fs::write(&outside, b"keep me").unwrap();
        let store = LocalStore::new(root.join("lake"), Duration::from_secs(1));
        let key = "bars/1m/AAPL.2024-01.parquet";
        fs::create_dir_all(store.lock_path(key).parent().unwrap()).unwrap();
        symlink(&outside, store.lock_path(key)).unwrap();
        let err = store
            .rewrite(key, &mut |_| Ok(Change::Keep { rows: 0 }))
            .unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(fs::read(&outside).unwrap(), b"keep me");
        // A dangling link is not followed either: its target is never created.
        fs::remove_file(store.lock_path(key)).unwrap();
        let ghost = root.join("ghost");
        symlink(&ghost, store.lock_path(key)).unwrap();
        assert!(store
            .rewrite(key, &mut |_| Ok(Change::Keep { rows: 0 }))
            .is_err());
        assert!(!ghost.exists());
        // A data folder that is a link elsewhere is refused.
        fs::remove_file(store.lock_path(key)).unwrap();
        fs::create_dir_all(root.join("elsewhere")).unwrap();
        fs::create_dir_all(root.join("lake/quotes")).unwrap();
        fs::remove_dir(root.join("lake/quotes")).unwrap();
        symlink(root.join("elsewhere"), root.join("lake/quotes")).unwrap();
        let err = store
            .rewrite("quotes/AAPL.2024-01.parquet", &mut |_| {
                Ok(Change::Keep { rows: 0 })
            })
            .unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        let _ = fs::remove_dir_all(root);
    }

    #[test]
    fn a_held_lock_times_out_naming_the_holder() {
        let root = scratch("lock");
        let store = LocalStore::new(&root, Duration::from_millis(50));
        let key = "quotes/AAPL.2024-01.parquet";
        let _held = store.lock(key).unwrap();
        let err = store
            .rewrite(key, &mut |_| Ok(Change::Keep { rows: 0 }))
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        let _ = fs::remove_dir_all(root);
    }
}
