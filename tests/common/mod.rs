//! Helpers shared by the integration tests: a secret, signed deliveries and bounded waits.
#![allow(dead_code)] // each test crate uses a different subset of these helpers

use std::{future::Future, time::Duration};

#[path = "../../src/test_vectors.rs"]
pub(crate) mod vectors;

use bytes::Bytes;
use printone_webhooks::{sign, Secret};

/// The secret the receivers under test are configured with.
pub(crate) const SECRET: &str = "pO1_webhook_integration_7f3KqV9xLm2R";

/// How long any single wait in a test may take before the test fails instead of hanging.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

/// The configured secret.
pub(crate) fn secret() -> Secret {
    Secret::new(SECRET).expect("the test secret is not empty")
}

/// A Print.one `order_status_update` envelope for the order `id`.
pub(crate) fn order_body(id: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"data":{{"id":"{id}","status":"order_processed","friendlyStatus":"Processed"}},"event":"order_status_update","created_at":"2024-06-03T13:14:46.501Z"}}"#
    ))
}

/// The signature header value Print.one would send for `body` under the configured secret.
pub(crate) fn signature_of(body: &[u8]) -> String {
    sign(&secret(), body)
}

/// Awaits `future`, failing the test when it takes longer than [`PATIENCE`].
pub(crate) async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}
