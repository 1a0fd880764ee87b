//! The checkpointer: a thread of its own that copies what the WAL holds into the database
//! file, so that the writer never stops its commits to do it.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its threshold: that
//! commit, and every caller waiting on it, waits while a thousand pages are copied and the
//! database file is flushed. Here the writer's connection never checkpoints on its own
//! (`wal_autocheckpoint = 0`); this thread runs a `PASSIVE` checkpoint (it waits for nobody)
//! a few times a second while commits arrive. Under a load that never pauses, the WAL cannot
//! start over while the checkpoint trails the newest commit, so once it holds more than
//! [`RESTART_FRAMES`] frames the writer restarts it between two batches
//! ([`restart_if_long`]), with little left to copy.
//!
//! A checkpoint that fails (a full disk) is logged and tried again; the deliveries it did not
//! copy stay in the WAL, which is part of the database for SQLite, so nothing is lost.

use std::{
    sync::{
        atomic::{AtomicI64, Ordering::Relaxed},
        mpsc, Arc,
    },
    thread::JoinHandle,
    time::Duration,
};

use rusqlite::Connection;

use crate::store::sqlite::writer::Stats;

/// How often the checkpointer looks for new commits.
const EVERY: Duration = Duration::from_millis(100);

/// WAL frames (pages) past which the writer starts the WAL over: 16 384, 64 MiB of 4 KiB
/// pages.
pub(crate) const RESTART_FRAMES: i64 = 16_384;

/// What the checkpointer last saw of the WAL.
#[derive(Debug, Default)]
pub(crate) struct Wal {
    /// Frames in the WAL.
    pub(crate) frames: AtomicI64,
}

/// The running checkpointer: stopped and joined when dropped.
pub(crate) struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing on `connection` (a read-write connection of its own) whenever the
    /// writer committed since the last look.
    pub(crate) fn spawn(
        connection: Connection,
        stats: Arc<Stats>,
        wal: Arc<Wal>,
    ) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&connection, &stats, &wal, &stopped))?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(connection: &Connection, stats: &Stats, wal: &Wal, stopped: &mpsc::Receiver<()>) {
    let mut seen = stats.commits.load(Relaxed);
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
        let commits = stats.commits.load(Relaxed);
        if commits == seen {
            continue;
        }
        seen = commits;
        match checkpoint(connection, "PASSIVE") {
            Ok((_, frames)) => wal.frames.store(frames, Relaxed),
            Err(error) => tracing::warn!(
                error = %error,
                "the SQLite checkpoint failed; the WAL keeps the deliveries and it is tried again"
            ),
        }
    }
}

/// Runs a checkpoint of `mode`: whether it was kept from finishing, and the frames the WAL
/// holds.
fn checkpoint(connection: &Connection, mode: &str) -> rusqlite::Result<(bool, i64)> {
    connection.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        Ok((row.get::<_, i64>(0)? != 0, row.get(1)?))
    })
}

/// Starts the WAL over when it grew past [`RESTART_FRAMES`]: run by the writer between two
/// batches, it copies what the checkpointer has not, and makes the next commit write the WAL
/// from its start.
pub(crate) fn restart_if_long(connection: &Connection, wal: &Wal) {
    if wal.frames.load(Relaxed) <= RESTART_FRAMES {
        return;
    }
    match checkpoint(connection, "RESTART") {
        // The next commit writes the WAL from its start.
        Ok((false, _)) => wal.frames.store(0, Relaxed),
        Ok((true, frames)) => wal.frames.store(frames, Relaxed),
        Err(error) => tracing::warn!(
            error = %error,
            "the SQLite WAL could not start over; it is tried again"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{
        conformance::delivery,
        sqlite::{tests::TempDir, SqliteOptions},
        Store as _,
    };

    #[tokio::test]
    async fn the_checkpointer_copies_the_commits_into_the_database_file_soon_after() {
        let dir = TempDir::new();
        let store = SqliteOptions::new(dir.file()).open().expect("opens");
        for n in 0..2_000 {
            store.insert(&delivery(n, "a")).await.expect("stored");
        }
        // 2 000 bodies of about 100 bytes and their indexes: the file holds them only once a
        // checkpoint copied the WAL into it (no commit checkpoints).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let size = std::fs::metadata(dir.file()).expect("the file").len();
            if size > 400_000 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the database file still holds {size} bytes"
            );
            tokio::time::sleep(EVERY).await;
        }
    }

    #[test]
    fn a_long_wal_is_started_over_by_the_next_commit() {
        let dir = TempDir::new();
        let connection = Connection::open(dir.file()).expect("opens");
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
                 CREATE TABLE t (x BLOB);",
            )
            .expect("a table");
        for _ in 0..50 {
            connection
                .execute("INSERT INTO t VALUES (zeroblob(8000))", [])
                .expect("a row");
        }
        let wal = Wal::default();
        wal.frames.store(RESTART_FRAMES, Relaxed);
        restart_if_long(&connection, &wal);
        assert_eq!(
            wal.frames.load(Relaxed),
            RESTART_FRAMES,
            "short enough: left alone"
        );
        let (_, before) = checkpoint(&connection, "PASSIVE").expect("reads the WAL");
        assert!(before > 100, "{before} frames");
        wal.frames.store(RESTART_FRAMES + 1, Relaxed);
        restart_if_long(&connection, &wal);
        assert_eq!(wal.frames.load(Relaxed), 0);
        connection
            .execute("INSERT INTO t VALUES (1)", [])
            .expect("a row");
        let (_, after) = checkpoint(&connection, "PASSIVE").expect("reads the WAL");
        assert!(
            after < 10,
            "the commit wrote the WAL from its start: {after} frames"
        );
    }
}
