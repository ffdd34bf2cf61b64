//! Why a run stopped early.

use crate::pipeline::{Job, Stage};
use crate::store::StoreError;

/// A run-ending failure. Nothing here carries the API key: Keepa errors are
/// redacted by the client, store errors by the store.
#[derive(Debug, thiserror::Error)]
pub enum HarvestError {
    /// Keepa refused a request (400, 402, 404, 405): sending it again will
    /// not help. Carries Keepa's message.
    #[error("Keepa refused a {job} {stage} request: {source}")]
    Refused {
        /// The job.
        job: Job,
        /// The stage.
        stage: Stage,
        /// Keepa's answer.
        #[source]
        source: keepa::ApiError,
    },
    /// A request kept failing (5xx, network, undecodable) after the bounded retries.
    #[error("a {job} {stage} request failed after {attempts} attempts: {source}")]
    Network {
        /// The job.
        job: Job,
        /// The stage.
        stage: Stage,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        #[source]
        source: keepa::ApiError,
    },
    /// The budget can never admit a request (e.g. a batch larger than the bucket).
    #[error("the budget refuses the {job} job: {source}")]
    Budget {
        /// The job.
        job: Job,
        /// Why.
        #[source]
        source: budget::gate::GateError,
    },
    /// A request could not be built (bad selection or pipeline setting).
    #[error("invalid request for {job} {stage}: {source}")]
    Invalid {
        /// The job.
        job: Job,
        /// The stage.
        stage: Stage,
        /// What is wrong.
        #[source]
        source: keepa::ValidationError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The alert worker could not start (its HTTP client could not be
    /// built). The message holds no URL.
    #[error("alerts: {0}")]
    Alerts(String),
    /// A job task panicked or was cancelled (a bug).
    #[error("a job task ended abnormally: {0}")]
    Task(String),
}

/// Internal: a job step ended because the run is stopping, or failed.
#[derive(Debug)]
pub(crate) enum Halt {
    /// The run is stopping; partial work was committed.
    Stopped,
    /// A run-ending failure.
    Failed(HarvestError),
}

impl From<HarvestError> for Halt {
    fn from(e: HarvestError) -> Self {
        Halt::Failed(e)
    }
}

impl From<StoreError> for Halt {
    fn from(e: StoreError) -> Self {
        Halt::Failed(HarvestError::Store(e))
    }
}
