//! Whether the writer may adopt a metrics file that already exists: owned by us, writable by nobody else, one link, a regular file.
//!
//! The metrics directory may be group- or world-writable (sticky or not).
//! File names are predictable (`gauge_liveall_w1.db`, `counter_<pid>.db`),
//! so another user can create one before the worker that will use it. A
//! worker that mapped such a file could be killed (`SIGBUS`) by that user
//! truncating it, or have its values set by them. So an existing file is
//! adopted only if its owner is our effective uid, no one but the owner (and
//! whom the configured file mode allows) may write it, it has exactly one
//! link (a hard link elsewhere could be another user's handle on it), and it
//! is a regular file. Checked with `fstat` on the descriptor we opened (with
//! `O_NOFOLLOW`), so the file checked is the file used.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

pub(crate) use crate::error::Distrust;
use crate::error::{Error, Result};

/// Checks the `fstat` of an opened file against the rules above; `mode` is
/// the configured file mode (the group and other write bits it allows).
pub(crate) fn check(meta: &std::fs::Metadata, mode: u32) -> std::result::Result<(), Distrust> {
    if !meta.file_type().is_file() {
        return Err(Distrust::NotRegular);
    }
    let ours = nix::unistd::geteuid().as_raw();
    if meta.uid() != ours {
        return Err(Distrust::Owner {
            uid: meta.uid(),
            ours,
        });
    }
    let foreign_write = meta.mode() & 0o022 & !mode;
    if foreign_write != 0 {
        return Err(Distrust::Writable {
            mode: meta.mode() & 0o7777,
            allowed: mode & 0o777,
        });
    }
    if meta.nlink() != 1 {
        return Err(Distrust::Links(meta.nlink()));
    }
    Ok(())
}

/// Renames the untrusted file at `path` to `<name>.untrusted-<secs>-<pid>`
/// (which no collector reads), so that a fresh file can take its name. In a
/// sticky directory only the file's owner may rename it: then the error
/// names the path and the reason, and the file is not used.
pub(crate) fn set_aside(path: &Path, why: Distrust) -> Result<()> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let aside = path.with_extension(format!("db.untrusted-{secs}-{}", std::process::id()));
    match std::fs::rename(path, &aside) {
        Ok(()) => {
            crate::warn::warn(format_args!(
                "{}: not adopted ({why}); moved aside to {} and starting a new file",
                path.display(),
                aside.display()
            ));
            Ok(())
        }
        // Gone already: whoever removed it, the name is free.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::untrusted_file(path, why, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn rules() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f.db");
        std::fs::write(&p, b"x").unwrap();
        let set =
            |m: u32| std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m)).unwrap();
        let meta = || std::fs::metadata(&p).unwrap();
        set(0o600);
        assert_eq!(check(&meta(), 0o600), Ok(()));
        set(0o666);
        assert_eq!(
            check(&meta(), 0o600),
            Err(Distrust::Writable {
                mode: 0o666,
                allowed: 0o600
            })
        );
        assert_eq!(check(&meta(), 0o666), Ok(()));
        set(0o660);
        assert_eq!(check(&meta(), 0o660), Ok(()));
        assert!(check(&meta(), 0o640).is_err());
        set(0o600);
        std::fs::hard_link(&p, tmp.path().join("other")).unwrap();
        assert_eq!(check(&meta(), 0o600), Err(Distrust::Links(2)));
        assert_eq!(
            check(&std::fs::metadata(tmp.path()).unwrap(), 0o600),
            Err(Distrust::NotRegular)
        );
    }
}
