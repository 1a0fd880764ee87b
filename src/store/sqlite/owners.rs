//! Which processes hold leases: each store that claims holds an exclusive lock on a file of
//! its own beside the database, which the kernel releases when the process dies, however it
//! dies. A lease whose owner's lock can be taken belongs to a dead process.

use std::{
    collections::hash_map::RandomState,
    fs::{self, File, TryLockError},
    hash::{BuildHasher, Hasher},
    io,
    path::{Path, PathBuf},
};

/// This process's owner id and lock, and where the others' are.
#[derive(Debug)]
pub(crate) struct Owners {
    folder: PathBuf,
    me: i64,
    /// Held while this store lives; the lock goes with the process.
    _lock: File,
}

impl Owners {
    /// Takes a fresh owner id and its lock in `<database>-owners/`.
    pub(crate) fn register(database: &Path) -> io::Result<Self> {
        let mut folder = database.as_os_str().to_owned();
        folder.push("-owners");
        let folder = PathBuf::from(folder);
        fs::create_dir_all(&folder)?;
        sweep(&folder);
        let me = fresh_id();
        let lock = File::create(folder.join(format!("{me}.lock")))?;
        lock.try_lock().map_err(|error| match error {
            TryLockError::Error(error) => error,
            TryLockError::WouldBlock => io::Error::other("a fresh owner lock is taken"),
        })?;
        Ok(Self {
            folder,
            me,
            _lock: lock,
        })
    }

    pub(crate) const fn me(&self) -> i64 {
        self.me
    }

    fn file(&self, owner: i64) -> PathBuf {
        self.folder.join(format!("{owner}.lock"))
    }

    /// Whether `owner`'s process is gone: its lock file is missing or its lock can be taken.
    pub(crate) fn is_dead(&self, owner: i64) -> bool {
        match File::open(self.file(owner)) {
            Err(error) => error.kind() == io::ErrorKind::NotFound,
            Ok(file) => match file.try_lock_shared() {
                Ok(()) => true,
                Err(TryLockError::WouldBlock | TryLockError::Error(_)) => false,
            },
        }
    }

    /// Removes a dead owner's lock file.
    pub(crate) fn forget(&self, owner: i64) {
        let _ = fs::remove_file(self.file(owner));
    }
}

impl Drop for Owners {
    fn drop(&mut self) {
        let _ = fs::remove_file(self.file(self.me));
    }
}

/// Removes the lock files of processes that are gone (their leases, if any, are recovered by
/// the lease query, which treats a missing file as a dead owner).
fn sweep(folder: &Path) {
    let Ok(entries) = fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(file) = File::open(&path) else {
            continue;
        };
        if file.try_lock().is_ok() {
            let _ = fs::remove_file(&path);
        }
    }
}

/// A random positive id.
fn fresh_id() -> i64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    hasher.write_u128(nanos);
    i64::try_from(hasher.finish() >> 1).unwrap_or(1)
}

/// Takes the lock `name` of the store at `database`: a file in `<database>-locks/`, locked
/// exclusively, which the kernel releases when the [`Exclusive`](crate::store::Exclusive) is dropped or the process dies.
/// `None` when another holder has it (in this process or another).
pub(crate) fn try_exclusive(
    database: &Path,
    name: &str,
) -> Result<Option<crate::store::Exclusive>, crate::store::StoreError> {
    let mut folder = database.as_os_str().to_owned();
    folder.push("-locks");
    let folder = PathBuf::from(folder);
    let file_name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let failed = |error: io::Error| {
        crate::store::StoreError::unavailable(format!(
            "{}: cannot take the lock {name}: {error}",
            folder.display()
        ))
    };
    fs::create_dir_all(&folder).map_err(failed)?;
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(folder.join(format!("{file_name}.lock")))
        .map_err(failed)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(crate::store::Exclusive::new(file))),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(error)) => Err(failed(error)),
    }
}
