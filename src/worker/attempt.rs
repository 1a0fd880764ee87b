//! One attempt at a job, isolated in its own task so a panic is a failure, not a crash.

use crate::{
    core::error::BoxError,
    worker::job::{Job, Permanent},
};

/// Why one attempt failed.
pub(crate) enum Failure {
    Error(BoxError),
    Panicked,
}

impl Failure {
    pub(crate) fn is_permanent(&self) -> bool {
        matches!(self, Self::Error(error) if Permanent::is(error))
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Error(error) => write!(f, "{error}"),
            Self::Panicked => f.write_str("the handler panicked"),
        }
    }
}

/// Runs one attempt in its own task, so a panic is caught and reported as a failure; the task
/// is aborted if this future is dropped (shutdown deadline).
pub(crate) async fn attempt_isolated(job: &mut Job) -> Result<(), Failure> {
    struct AbortOnDrop(tokio::task::AbortHandle);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let task = tokio::spawn(job.attempt());
    let _guard = AbortOnDrop(task.abort_handle());
    match task.await {
        Ok(result) => result.map_err(Failure::Error),
        Err(_) => Err(Failure::Panicked),
    }
}
