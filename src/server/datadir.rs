//! The service's data directory: private, and held by one server at a time.
//!
//! [`DataDir::open`] creates the directory (or tightens an existing one) to
//! mode 0700, then takes an exclusive lock on the file `lock` inside it
//! (`flock` through [`std::fs::File::try_lock`]) and writes its pid there.
//! The lock is held until the `DataDir` is dropped, and the operating system
//! drops it when the process dies however it dies, so a crashed server never
//! leaves a stale lock. A second server on the same directory is refused
//! with a message naming the directory and the holder's pid.
//!
//! Files made in it ([`DataDir::private_file`]) are mode 0600 whatever the
//! umask; an existing one is tightened. A known file (`lock`, `token`,
//! `tenants.db` and SQLite's companions) that is a symlink, not a regular
//! file, or owned by another user than the directory is refused: it may
//! have been planted while the directory was open to others.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// A data directory held by this process.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: File,
}

/// The name of the lock file in a data directory.
pub const LOCK_FILE: &str = "lock";

impl DataDir {
    /// Creates or tightens `path` to mode 0700 and locks it.
    ///
    /// # Errors
    ///
    /// A message for the operator: the directory cannot be made or made
    /// private (naming the reason), or another process holds it (naming
    /// its pid).
    pub fn open(path: &Path) -> Result<DataDir, String> {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(path)
            .map_err(|e| format!("cannot create the data dir {}: {e}", path.display()))?;
        if !path.is_dir() {
            return Err(format!(
                "the data dir {} is not a directory",
                path.display()
            ));
        }
        set_mode(path, 0o700).map_err(|e| {
            format!(
                "cannot make the data dir {} private (mode 0700): {e}",
                path.display()
            )
        })?;
        check_entries(path)?;
        let lock_path = path.join(LOCK_FILE);
        let mut lock = open_private(&lock_path, false)
            .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = lock.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.is_empty() {
                    "another process".to_owned()
                } else {
                    format!("another process (pid {holder})")
                };
                return Err(format!(
                    "the data dir {} is in use by {who}; stop that server first, or give this one \
                     another --data-dir",
                    path.display()
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", lock_path.display()))
            }
        }
        lock.set_len(0)
            .and_then(|()| lock.rewind())
            .and_then(|()| writeln!(lock, "{}", std::process::id()))
            .and_then(|()| lock.sync_all())
            .map_err(|e| format!("cannot write {}: {e}", lock_path.display()))?;
        Ok(DataDir {
            path: path.to_owned(),
            _lock: lock,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates `name` in the directory with mode 0600 if it does not exist,
    /// or tightens it to 0600 if it does, and returns its path.
    ///
    /// # Errors
    ///
    /// A message naming the file and the reason.
    pub fn private_file(&self, name: &str) -> Result<PathBuf, String> {
        let p = self.path.join(name);
        open_private(&p, false).map_err(|e| format!("cannot create {}: {e}", p.display()))?;
        Ok(p)
    }

    /// Tightens `name` to 0600 if it exists (files that another library
    /// creates, such as SQLite's `-wal` and `-shm`).
    ///
    /// # Errors
    ///
    /// A message naming the file and the reason.
    pub fn tighten(&self, name: &str) -> Result<(), String> {
        let p = self.path.join(name);
        match set_mode(&p, 0o600) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!(
                "cannot make {} private (mode 0600): {e}",
                p.display()
            )),
        }
    }
}

/// The files a server keeps in its data dir.
const KNOWN_FILES: [&str; 5] = [
    LOCK_FILE,
    "token",
    "tenants.db",
    "tenants.db-wal",
    "tenants.db-shm",
];

/// Refuses a data dir whose known files are symlinks, not regular files, or
/// owned by another user than the directory's owner: a file planted there
/// before the dir was made private (a token of someone else's choosing, a
/// `lock` pointing at a file to truncate) is not trusted.
fn check_entries(dir: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let owner = std::fs::metadata(dir)
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .uid();
        for name in KNOWN_FILES {
            let p = dir.join(name);
            let meta = match std::fs::symlink_metadata(&p) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("cannot read {}: {e}", p.display())),
            };
            if !meta.file_type().is_file() {
                return Err(format!(
                    "{} is not a regular file (a symlink or a directory); remove it",
                    p.display()
                ));
            }
            if meta.uid() != owner {
                return Err(format!(
                    "{} belongs to another user (uid {}) than the data dir (uid {owner}); \
                     remove it",
                    p.display(),
                    meta.uid()
                ));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Opens (creating) a file with mode 0600, and tightens it if it existed.
fn open_private(path: &Path, truncate: bool) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true).create(true).truncate(truncate);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let f = o.open(path)?;
    set_mode(path, 0o600)?;
    Ok(f)
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if current != mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn one_holder_at_a_time_and_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::write(dir.join("tenants.db"), b"").unwrap();
            std::fs::set_permissions(
                dir.join("tenants.db"),
                std::fs::Permissions::from_mode(0o644),
            )
            .unwrap();
        }
        let held = DataDir::open(&dir).unwrap();
        #[cfg(unix)]
        {
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&dir.join(LOCK_FILE)), 0o600);
            held.private_file("tenants.db").unwrap();
            assert_eq!(mode(&dir.join("tenants.db")), 0o600);
            held.tighten("absent-wal").unwrap();
        }
        let e = DataDir::open(&dir).unwrap_err();
        assert!(e.contains("in use by another process (pid "), "{e}");
        assert!(e.contains(&std::process::id().to_string()), "{e}");
        assert!(e.contains(&dir.display().to_string()), "{e}");
        drop(held);
        let again = DataDir::open(&dir).unwrap();
        assert_eq!(again.path(), dir);
    }

    #[cfg(unix)]
    #[test]
    fn planted_symlinks_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join(LOCK_FILE)).unwrap();
        let e = DataDir::open(&dir).unwrap_err();
        assert!(e.contains("is not a regular file"), "{e}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        std::fs::remove_file(dir.join(LOCK_FILE)).unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("token")).unwrap();
        let e = DataDir::open(&dir).unwrap_err();
        assert!(e.contains("token is not a regular file"), "{e}");
    }

    #[test]
    fn a_file_in_the_way_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("file");
        std::fs::write(&f, b"x").unwrap();
        let e = DataDir::open(&f).unwrap_err();
        assert!(e.contains("cannot create the data dir"), "{e}");
    }
}
