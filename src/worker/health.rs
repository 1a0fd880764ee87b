//! [`Health`]: liveness and readiness of a receiver, for a load balancer or Kubernetes.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering::SeqCst},
        Arc,
    },
    time::Duration,
};

use crate::{store::SharedStore, worker::signal::shutdown_signal};

/// How long readiness waits for the store before it calls it unreachable: 2 s.
pub const DEFAULT_READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether a receiver should get traffic.
///
/// Liveness says the process answers (restart it when it does not); readiness says it should
/// get deliveries: not while it drains (a shutdown signal came), and not while its store cannot
/// be reached (it would answer 503 to every delivery). Serve it on an admin listener, never on
/// the webhook route: with the `tower` feature through
/// `tower::HealthService` (`GET …/healthz`, `GET …/readyz`), with `actix-web` through the
/// handlers `actix::healthz` and `actix::readyz`.
///
/// Cloning is cheap: clones share the draining flag.
#[derive(Debug, Clone)]
pub struct Health {
    store: SharedStore,
    draining: Arc<AtomicBool>,
    timeout: Duration,
}

/// What [`Health::readiness`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Deliveries are welcome.
    Ready,
    /// A shutdown began: send deliveries elsewhere.
    Draining,
    /// The store did not answer in time or failed; the reason names the kind of failure.
    StoreUnavailable(String),
}

impl Readiness {
    /// Whether deliveries are welcome.
    #[must_use]
    pub const fn is_ready(&self) -> bool {
        matches!(self, Self::Ready)
    }

    /// A one-line text for the response body: `ready`, `draining` or `store unavailable: …`.
    #[must_use]
    pub fn text(&self) -> String {
        match self {
            Self::Ready => "ready".to_owned(),
            Self::Draining => "draining".to_owned(),
            Self::StoreUnavailable(reason) => format!("store unavailable: {reason}"),
        }
    }
}

impl Health {
    /// The health of a receiver storing in `store`, not draining.
    pub fn new(store: impl Into<SharedStore>) -> Self {
        Self {
            store: store.into(),
            draining: Arc::default(),
            timeout: DEFAULT_READINESS_TIMEOUT,
        }
    }

    /// Sets how long readiness waits for the store.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Marks the receiver as draining: readiness fails from now on.
    pub fn set_draining(&self) {
        self.draining.store(true, SeqCst);
    }

    /// Whether a shutdown began.
    #[must_use]
    pub fn is_draining(&self) -> bool {
        self.draining.load(SeqCst)
    }

    /// [`shutdown_signal`], which also marks the receiver as draining when the signal comes:
    /// give it to the server's graceful shutdown.
    pub async fn shutdown_signal(&self) {
        shutdown_signal().await;
        self.set_draining();
    }

    /// Liveness: the process runs and answers. Always true; it is there so that liveness and
    /// readiness have one home.
    #[must_use]
    pub const fn is_alive(&self) -> bool {
        true
    }

    /// Readiness: not draining, and the store answers within the timeout.
    pub async fn readiness(&self) -> Readiness {
        if self.is_draining() {
            return Readiness::Draining;
        }
        match tokio::time::timeout(self.timeout, self.store.counts()).await {
            Ok(Ok(_)) => Readiness::Ready,
            Ok(Err(error)) => Readiness::StoreUnavailable(error.as_str().to_owned()),
            Err(_) => Readiness::StoreUnavailable("no answer in time".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn ready_until_draining() {
        let health = Health::new(MemoryStore::new());
        assert!(health.readiness().await.is_ready());
        health.clone().set_draining();
        assert_eq!(health.readiness().await, Readiness::Draining);
        assert_eq!(health.readiness().await.text(), "draining");
        assert!(health.is_alive());
    }
}
