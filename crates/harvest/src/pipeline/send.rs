//! The one function that calls Keepa ([`Shared::send`]) and the one retry
//! rule every call follows ([`Attempts`]).

use budget::{Outcome, Prediction};
use keepa::clock::Clock;
use keepa::request::{Endpoint, Request};
use keepa::{ApiError, Response};
use tokio::sync::watch;

use super::{HarvestPermit, Job, JobSpec, RetryPolicy, Shared, Stage};
use crate::error::{Halt, HarvestError};
use crate::metrics::Metrics;
use crate::store::{Batch, RequestRow};
use keepa::clock::ScaledClock;

/// The failed attempts of one call, and the rule after each: a refusal
/// ends at once ([`HarvestError::Refused`]); the last attempt the
/// [`RetryPolicy`] allows ends with [`HarvestError::Network`]; any other
/// failure waits out the policy's backoff, in server time, and tries again.
#[derive(Debug)]
pub(crate) struct Attempts {
    policy: RetryPolicy,
    job: Job,
    stage: Stage,
    failures: u32,
}

/// What follows a failure that did not end the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// The backoff is over: try again.
    Again,
    /// The stop signal came during the backoff.
    Stopped,
}

impl Attempts {
    /// No failure yet, for a `job` request of `stage`.
    pub(crate) fn new(policy: RetryPolicy, job: Job, stage: Stage) -> Self {
        Attempts {
            policy,
            job,
            stage,
            failures: 0,
        }
    }

    /// Counts the failure `err` (see the type's docs); a retry is counted
    /// in `metrics`, and its backoff on `clock` is cut short when `stop`
    /// turns true.
    pub(crate) async fn failed(
        &mut self,
        err: ApiError,
        clock: &ScaledClock,
        metrics: &Metrics,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Retry, HarvestError> {
        let (job, stage) = (self.job, self.stage);
        if err.is_refusal() {
            return Err(HarvestError::Refused {
                job,
                stage,
                source: err,
            });
        }
        self.failures += 1;
        if self.failures >= self.policy.max_attempts {
            return Err(HarvestError::Network {
                job,
                stage,
                attempts: self.failures,
                source: err,
            });
        }
        metrics.retry();
        tracing::warn!(job = job.as_str(), stage = stage.as_str(), attempt = self.failures, error = %err, "request failed; retrying");
        Ok(self.backoff(clock, stop).await)
    }

    /// Counts an answer that delivered nothing of what was asked (every
    /// ASIN missing, say) but may be the truth: `None` once the retry
    /// budget is spent (the caller then takes the answer as it is),
    /// otherwise the backoff of [`Attempts::failed`] and `Some`.
    pub(crate) async fn unproductive(
        &mut self,
        why: &str,
        clock: &ScaledClock,
        metrics: &Metrics,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Retry> {
        self.failures += 1;
        if self.failures >= self.policy.max_attempts {
            return None;
        }
        metrics.retry();
        tracing::warn!(
            job = self.job.as_str(),
            stage = self.stage.as_str(),
            attempt = self.failures,
            why,
            "answer without what was asked; retrying"
        );
        Some(self.backoff(clock, stop).await)
    }

    /// Waits out the policy's backoff after the current failure, in server
    /// time, or until `stop` turns true.
    async fn backoff(&self, clock: &ScaledClock, stop: &mut watch::Receiver<bool>) -> Retry {
        let at = clock
            .now_ms()
            .saturating_add(self.policy.backoff_after(self.failures));
        tokio::select! {
            _ = clock.sleep_until(at) => Retry::Again,
            _ = stop.wait_for(|s| *s) => Retry::Stopped,
        }
    }
}

impl Shared {
    /// Sends `req` under `permit` and reads the answer with `read`: settles
    /// the permit, records the request (its row goes into `pending`, to be
    /// committed by the caller), waits for refill after a 429 (the gate
    /// computes when) and retries other failures by the [`Attempts`] rule.
    /// A 2xx answer without its `payload` member (`products`, `deals`), or
    /// with an error in its body, is such a failure (typed by
    /// `keepa::in_body`), and so is an answer `read` cannot make sense of.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn send<T>(
        &self,
        job: &JobSpec,
        stage: Stage,
        mut permit: HarvestPermit,
        req: &Request,
        payload: &str,
        pending: &mut Batch,
        read: impl Fn(&Response) -> Result<T, ApiError>,
    ) -> Result<(Response, T), Halt> {
        let p = self.cost_lock().predict(req);
        let (predicted, upper) = (i64::from(p.expected), i64::from(p.upper_bound));
        let mut attempts = Attempts::new(self.retry, job.name, stage);
        loop {
            let result =
                self.client
                    .send(req)
                    .await
                    .and_then(
                        |resp| match keepa::in_body::missing_payload(&resp, payload) {
                            Some(err) => Err(err),
                            None => Ok(resp),
                        },
                    );
            let result = self.record(job, stage, permit, req, predicted, result, pending);
            let err = match result.and_then(|resp| read(&resp).map(|t| (resp, t))) {
                Ok(done) => return Ok(done),
                Err(err) => err,
            };
            if matches!(err, ApiError::NotEnoughTokens(_)) {
                tracing::debug!(
                    job = job.name.as_str(),
                    stage = stage.as_str(),
                    in_body = err.is_in_body(),
                    "not enough tokens: waiting for refill"
                );
                self.wait_out_a_limit(&err).await?;
            } else {
                let mut stop = self.stop.clone();
                let clock = self.gate.clock();
                if attempts
                    .failed(err, clock, &self.metrics, &mut stop)
                    .await?
                    == Retry::Stopped
                {
                    return Err(Halt::Stopped);
                }
            }
            // Ask again for the same request (exact size).
            let need = Self::bulk(
                job,
                Prediction::new(predicted, upper),
                Prediction::exact(0),
                1,
            );
            permit = self.acquire(job.id, job.name, need).await?;
        }
    }

    /// After "not enough tokens" in the body of an answer whose envelope
    /// still shows a positive balance (a limit, not the bucket), the budget
    /// sees nothing to wait for: wait for the envelope's next refill step
    /// (a minute without one), so such answers come at most once a step.
    async fn wait_out_a_limit(&self, err: &ApiError) -> Result<(), Halt> {
        let positive = err
            .envelope()
            .and_then(|e| e.tokens_left)
            .is_some_and(|t| t > 0);
        if !(err.is_in_body() && positive) {
            return Ok(());
        }
        let now = self.now();
        let step = err
            .envelope()
            .and_then(|e| e.refill_in)
            .filter(|r| (1..=60_000).contains(r))
            .unwrap_or(60_000);
        self.pause_until(now.saturating_add(step)).await
    }

    /// Settles `permit` with the outcome of one call, and records the call
    /// in `pending` and in the metrics.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        job: &JobSpec,
        stage: Stage,
        permit: HarvestPermit,
        req: &Request,
        predicted: i64,
        result: Result<Response, ApiError>,
        pending: &mut Batch,
    ) -> Result<Response, ApiError> {
        let now = self.now();
        let outcome = Outcome::of_call(&result, predicted, now);
        let snap = outcome.snapshot();
        let mut row = RequestRow {
            at_ms: now,
            job: job.name.as_str().to_string(),
            stage: stage.as_str().to_string(),
            endpoint: endpoint_name(req.endpoint()).to_string(),
            items: req.items(),
            predicted,
            charged: outcome.charged(),
            ..RequestRow::default()
        };
        permit.settle(outcome);
        let metric_status = match &result {
            Ok(resp) => {
                row.tokens_left = resp.envelope.tokens_left;
                row.status = "ok".into();
                if resp.envelope.tokens_consumed.is_none() {
                    // Charged at the prediction by the budget: flagged.
                    self.metrics.charge_estimated();
                    tracing::warn!(
                        job = job.name.as_str(),
                        stage = stage.as_str(),
                        estimated = row.charged,
                        "the answer has no tokensConsumed: its charge is estimated"
                    );
                }
                "200".to_string()
            }
            Err(err) => {
                row.tokens_left = err.envelope().and_then(|e| e.tokens_left);
                row.status = status_name(err);
                if err.is_in_body() {
                    self.metrics.in_body_error();
                }
                row.status.clone()
            }
        };
        self.metrics.request(
            job.name.as_str(),
            stage.as_str(),
            &metric_status,
            row.charged.unwrap_or(0),
        );
        if let Some(s) = snap {
            self.metrics.envelope(s);
        }
        pending.requests.push(row);
        result
    }
}

fn endpoint_name(e: Endpoint) -> &'static str {
    match e {
        Endpoint::Deal => "deal",
        Endpoint::Product => "product",
        Endpoint::Token => "token",
        _ => "other",
    }
}

/// The ledger's status for a failure: `429`, `400`, `5xx`, `timeout`,
/// `in-body` (a 2xx with an error in its body or without its payload), …
fn status_name(err: &ApiError) -> String {
    match err {
        _ if err.is_in_body() => "in-body".into(),
        ApiError::Timeout { .. } => "timeout".into(),
        ApiError::Transport { .. } => "transport".into(),
        ApiError::Undecodable { .. } => "undecodable".into(),
        ApiError::Server(_) => "5xx".into(),
        other => other
            .status()
            .map_or_else(|| "error".into(), |s| s.to_string()),
    }
}
