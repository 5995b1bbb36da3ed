//! The data directory holds the database, the search index, uploaded feeds
//! and the generated secrets: nothing in it is for other users of the machine.
//!
//! `octogen serve` and `demo` set the umask to 077, so everything they create
//! is private; on every start the files and directories octogen owns are
//! also set to 0600/0700, which fixes those an older version (or a restore
//! from backup) left readable. The directory itself is the operator's (it may
//! be a mount point shared with a backup agent): it is only reported, with a
//! warning, when other users can enter it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::Config;

/// Files and directories this process creates from now on are its user's
/// alone (umask 077). For `octogen serve` and `demo`, at start: it affects the
/// whole process, so the library never sets it on its own.
pub fn set_private_umask() {
    #[cfg(unix)]
    // SAFETY: umask only replaces the process's file-creation mask; it has no
    // memory effects and cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// Directories octogen keeps in the data directory.
const PRIVATE_DIRS: [&str; 2] = ["index", "uploads"];
/// Secret files generated into the data directory.
pub(crate) const PRIVATE_FILES: [&str; 2] = ["key-pepper", "admin-token"];

/// Makes what octogen owns in the data directory private, and warns when the
/// directory itself is open to other users.
pub fn restrict(config: &Config) -> anyhow::Result<()> {
    let dir = &config.data_dir;
    for path in owned_files(config) {
        set_mode_if_present(&path, 0o600).with_context(|| format!("cannot make {} private", path.display()))?;
    }
    for name in PRIVATE_DIRS {
        let path = dir.join(name);
        set_mode_if_present(&path, 0o700).with_context(|| format!("cannot make {} private", path.display()))?;
    }
    if let Some(mode) = shared_mode(dir)? {
        tracing::warn!(
            data_dir = %dir.display(),
            mode = format!("{mode:o}"),
            "the data directory is accessible to other users; octogen's files in it are private, \
             but consider `chmod 700` on the directory"
        );
    }
    Ok(())
}

/// The SQLite database with its WAL, shared-memory and lock files, and the secret files.
fn owned_files(config: &Config) -> Vec<PathBuf> {
    let database = config.sqlite_path();
    let mut files: Vec<PathBuf> =
        ["", "-wal", "-shm"].iter().map(|suffix| PathBuf::from(format!("{}{suffix}", database.display()))).collect();
    files.push(database.with_extension("lock"));
    files.extend(PRIVATE_FILES.iter().map(|name| config.data_dir.join(name)));
    files
}

#[cfg(unix)]
fn set_mode_if_present(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match fs::set_permissions(path, fs::Permissions::from_mode(mode)) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(not(unix))]
fn set_mode_if_present(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

/// The directory's permission bits when group or others have any access.
#[cfg(unix)]
fn shared_mode(dir: &Path) -> anyhow::Result<Option<u32>> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?.permissions().mode();
    Ok((mode & 0o077 != 0).then_some(mode & 0o777))
}

#[cfg(not(unix))]
fn shared_mode(_dir: &Path) -> anyhow::Result<Option<u32>> {
    Ok(None)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn owned_files_and_directories_become_private_and_others_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { data_dir: dir.path().to_path_buf(), ..Config::default() };
        for name in ["octogen.db", "octogen.db-wal", "octogen.lock", "admin-token", "notes.txt"] {
            fs::write(dir.path().join(name), b"x").unwrap();
            fs::set_permissions(dir.path().join(name), fs::Permissions::from_mode(0o644)).unwrap();
        }
        fs::create_dir(dir.path().join("index")).unwrap();
        fs::set_permissions(dir.path().join("index"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();

        restrict(&config).unwrap();
        for name in ["octogen.db", "octogen.db-wal", "octogen.lock", "admin-token"] {
            assert_eq!(mode(&dir.path().join(name)), 0o600, "{name}");
        }
        assert_eq!(mode(&dir.path().join("index")), 0o700);
        assert_eq!(mode(&dir.path().join("notes.txt")), 0o644, "not octogen's");
        assert_eq!(mode(dir.path()), 0o755, "the directory is the operator's: reported, not changed");
        assert_eq!(shared_mode(dir.path()).unwrap(), Some(0o755));
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(shared_mode(dir.path()).unwrap(), None);
    }
}
