//! The ingest pipeline behind the receivers: normalise, then make durable.
//!
//! Receivers decode a request into a [`Batch`] and call
//! [`BatchSink::submit`]; the pipeline maps legacy attribute names onto current
//! semantic conventions, redacts secrets (so nothing after this point, the
//! WAL included, sees them in clear) and appends the batch to the store,
//! whose future resolves only after the WAL is fsynced. Until the WAL replay has finished
//! the pipeline answers "unavailable", so senders retry instead of racing
//! the replay.

use std::sync::{Arc, OnceLock};

use futures::FutureExt;
use futures::future::BoxFuture;
use tracewarden_ingest::{BatchSink, SinkError};
use tracewarden_model::{Batch, credential, normalise};
use tracewarden_redact::Redactor;
use tracewarden_store::{Store, StoreError};

use crate::alerting::AlertService;
use crate::detection::Detector;

/// The pipeline. Cheap to share: clone the `Arc`.
#[derive(Default)]
pub struct Pipeline {
    store: OnceLock<Arc<Store>>,
    detector: OnceLock<Arc<Detector>>,
    alerts: OnceLock<Arc<AlertService>>,
    redactor: OnceLock<Arc<Redactor>>,
    payloads: OnceLock<Arc<crate::payloads::Payloads>>,
}

impl Pipeline {
    pub fn new() -> Pipeline {
        Pipeline::default()
    }

    /// Makes the pipeline ready: called once the WAL replay is done.
    pub fn set_store(&self, store: Arc<Store>) {
        // A second call would mean two stores; the first one stays.
        let _ = self.store.set(store);
    }

    /// The store, once replay has finished.
    pub fn store(&self) -> Option<&Arc<Store>> {
        self.store.get()
    }

    /// Runs detection on every batch acknowledged from now on.
    pub fn set_detector(&self, detector: Arc<Detector>) {
        let _ = self.detector.set(detector);
    }

    /// The detector, when detection is on.
    pub fn detector(&self) -> Option<&Arc<Detector>> {
        self.detector.get()
    }

    /// Redacts every batch submitted from now on, before the WAL.
    pub fn set_redactor(&self, redactor: Arc<Redactor>) {
        let _ = self.redactor.set(redactor);
    }

    /// The redactor, when redaction is on.
    pub fn redactor(&self) -> Option<&Arc<Redactor>> {
        self.redactor.get()
    }

    /// Keeps the alerting service for the API.
    pub fn set_alerts(&self, alerts: Arc<AlertService>) {
        let _ = self.alerts.set(alerts);
    }

    /// The alerting service, once the server is bound.
    pub fn alerts(&self) -> Option<&Arc<AlertService>> {
        self.alerts.get()
    }

    /// Keeps the payload store for the API.
    pub fn set_payloads(&self, payloads: Arc<crate::payloads::Payloads>) {
        let _ = self.payloads.set(payloads);
    }

    /// The payload store, once the server is bound.
    pub fn payloads(&self) -> Option<&Arc<crate::payloads::Payloads>> {
        self.payloads.get()
    }

    pub fn is_ready(&self) -> bool {
        self.store.get().is_some()
    }
}

impl BatchSink for Pipeline {
    fn submit(&self, mut batch: Batch) -> BoxFuture<'static, Result<(), SinkError>> {
        let Some(store) = self.store.get().cloned() else {
            return futures::future::ready(Err(SinkError::Unavailable(
                "the write-ahead log is being replayed".to_string(),
            )))
            .boxed();
        };
        let detector = self.detector.get().cloned();
        let redactor = self.redactor.get().cloned();
        async move {
            normalise::batch(&mut batch);
            // Before redaction masks `Authorization`: the credential's
            // fingerprint is what token rules, blocks and timelines match.
            credential::stamp_batch(&mut batch);
            // After normalisation, so rules see current names; before the
            // WAL, so no secret reaches the disk.
            if let Some(redactor) = redactor {
                redactor.batch(&mut batch);
            }
            // Detection sees only what is acknowledged, once the WAL holds
            // the batch: the records the hot tier keeps, shared, not copied.
            // In a task of its own: the append completes even when the
            // request is cancelled (the client went away), and so must the
            // offer, or a stored batch would never be detected on.
            let appended = tokio::spawn(async move {
                let (lsn, records) = store.append_sharing(batch).await?;
                if let Some(detector) = detector {
                    detector.offer(lsn, records);
                }
                Ok::<(), StoreError>(())
            });
            match appended.await {
                Ok(result) => result.map_err(sink_error),
                Err(error) => {
                    tracing::error!(%error, "the task appending a batch failed");
                    Err(SinkError::Internal(
                        "the batch could not be written to the write-ahead log".to_string(),
                    ))
                }
            }
        }
        .boxed()
    }
}

fn sink_error(error: StoreError) -> SinkError {
    match error {
        StoreError::Overloaded { retry_after } => SinkError::Overloaded { retry_after },
        StoreError::Closed => SinkError::Unavailable("the server is shutting down".to_string()),
        other => {
            tracing::error!(error = %other, "failed to append a batch to the write-ahead log");
            SinkError::Internal("the batch could not be written to the write-ahead log".to_string())
        }
    }
}
