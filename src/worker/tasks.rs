//! The tasks of a [`Worker`](crate::Worker): attempts running now, retries waiting out their
//! backoff, and dead letters on their way to the hook.

use std::{collections::HashMap, time::Duration};

use tokio::{
    task::{AbortHandle, Id, JoinError, JoinSet},
    time::sleep,
};
use tracing::Instrument as _;

use crate::{
    core::delivery::Delivery,
    worker::attempt::{attempt_isolated, Failure},
    worker::dead_letter::{DeadLetter, DeadLetterHook},
    worker::job::Job,
};

/// What a finished task asks the worker to do next.
pub(crate) enum Step {
    /// An attempt ended.
    Attempted {
        job: Job,
        attempt: u32,
        result: Result<(), Failure>,
    },
    /// A retry's backoff is over: attempt number `attempt` may start.
    Due { job: Job, attempt: u32 },
    /// A dead letter was delivered to the hook.
    Lettered,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Attempt,
    Wait,
    Letter,
}

/// A task of the worker, kept so the shutdown deadline can stop and dead-letter it.
pub(crate) struct Meta {
    pub(crate) delivery: Delivery,
    pub(crate) attempt: u32,
    kind: Kind,
    abort: AbortHandle,
}

/// Attempts running now, retries waiting out their backoff, dead letters on their way. Only
/// running attempts count against the concurrency: a retry waiting does not hold a slot.
#[derive(Default)]
pub(crate) struct Tasks {
    pub(crate) set: JoinSet<Step>,
    pub(crate) meta: HashMap<Id, Meta>,
    pub(crate) attempts_running: usize,
}

impl Tasks {
    pub(crate) fn attempt(&mut self, mut job: Job, attempt: u32) {
        let delivery = job.delivery().clone();
        let span = tracing::info_span!(
            "webhook_job",
            event = delivery.event_header(),
            id = delivery.id(),
            attempt
        );
        let task = async move {
            let result = attempt_isolated(&mut job).await;
            Step::Attempted {
                job,
                attempt,
                result,
            }
        };
        let abort = self.set.spawn(task.instrument(span));
        self.attempts_running += 1;
        self.track(abort, delivery, attempt, Kind::Attempt);
    }

    pub(crate) fn wait(&mut self, job: Job, attempt: u32, backoff: Duration) {
        let delivery = job.delivery().clone();
        let abort = self.set.spawn(async move {
            sleep(backoff).await;
            Step::Due { job, attempt }
        });
        self.track(abort, delivery, attempt, Kind::Wait);
    }

    pub(crate) fn letter(&mut self, hook: DeadLetterHook, letter: DeadLetter) {
        let delivery = letter.delivery().clone();
        let attempt = letter.attempts();
        let abort = self.set.spawn(async move {
            hook.send(letter).await;
            Step::Lettered
        });
        self.track(abort, delivery, attempt, Kind::Letter);
    }

    fn track(&mut self, abort: AbortHandle, delivery: Delivery, attempt: u32, kind: Kind) {
        let meta = Meta {
            delivery,
            attempt,
            kind,
            abort,
        };
        self.meta.insert(meta.abort.id(), meta);
    }

    /// Forgets a finished task; a cancelled one stays known, to be dead-lettered.
    pub(crate) fn finished(&mut self, joined: Result<(Id, Step), JoinError>) -> Option<Step> {
        match joined {
            Ok((id, step)) => {
                self.forget(id);
                Some(step)
            }
            Err(error) if error.is_cancelled() => None,
            Err(error) => {
                tracing::error!(error = %error, "dead-letter hook panicked");
                self.forget(error.id());
                None
            }
        }
    }

    fn forget(&mut self, id: Id) {
        if let Some(meta) = self.meta.remove(&id) {
            if meta.kind == Kind::Attempt {
                self.attempts_running -= 1;
            }
        }
    }

    pub(crate) fn abort_unfinished(&mut self) {
        for meta in self.meta.values().filter(|meta| meta.kind != Kind::Letter) {
            meta.abort.abort();
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}
