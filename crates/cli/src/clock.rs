//! Server time for the budget of `run` and `api` against a server that is
//! not the sandbox's: Keepa's wall time, or the fast clock of a fake server.
//!
//! The scale comes from `--server-time-scale` if given (an override), else
//! from the server's own announcement in its first `/token` answer
//! ([`keepa::TIME_SCALE_HEADER`], which only a fake server sends), else it
//! is 1: the wall clock.

use anyhow::Context as _;
use keepa::clock::ScaledClock;
use keepa::request::Request;
use keepa::Client;

use crate::exit::usage;

/// Where a clock's scale came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScaleSource {
    /// `--server-time-scale`.
    Flag,
    /// The server's `/token` answer ([`keepa::TIME_SCALE_HEADER`]).
    Server,
}

impl ScaleSource {
    fn describe(self) -> &'static str {
        match self {
            ScaleSource::Flag => "from --server-time-scale",
            ScaleSource::Server => "announced by the server",
        }
    }
}

/// The scale to run the clock at: the flag overrides the server's
/// announcement; with neither, `None` (the wall clock).
pub(crate) fn choose_scale(
    flag: Option<f64>,
    announced: Option<f64>,
) -> Option<(f64, ScaleSource)> {
    match (flag, announced) {
        (Some(scale), _) => Some((scale, ScaleSource::Flag)),
        (None, Some(scale)) => Some((scale, ScaleSource::Server)),
        (None, None) => None,
    }
}

/// The budget's clock for a server reached with `client`, after one free
/// `/token` call (see the module docs).
///
/// With `flag`, the call must succeed and carry a `timestamp`. Without it,
/// a failed call means the wall clock: the harvest's own first `/token`
/// then reports (or retries) the failure as before.
pub(crate) async fn server_clock(
    client: &Client,
    flag: Option<f64>,
) -> anyhow::Result<ScaledClock> {
    if let Some(scale) = flag {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(usage(format!(
                "--server-time-scale {scale}: must be a positive number"
            )));
        }
    }
    let answer = client.send(&Request::token()).await;
    let announced = answer.as_ref().ok().and_then(|r| r.server_time_scale);
    let Some((scale, source)) = choose_scale(flag, announced) else {
        if let Err(e) = &answer {
            tracing::debug!(error = %e, "/token for the server's clock failed; using the wall clock");
        }
        return Ok(ScaledClock::wall());
    };
    let resp = answer.context("reading the server's clock (GET /token)")?;
    let now = resp
        .envelope
        .timestamp
        .ok_or_else(|| anyhow::anyhow!("the server's /token answer has no timestamp"))?;
    tracing::info!(scale, "server clock: time x{scale}, {}", source.describe());
    Ok(ScaledClock::new(now, scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_overrides_the_server_and_neither_means_wall_time() {
        assert_eq!(
            choose_scale(Some(120.0), Some(600.0)),
            Some((120.0, ScaleSource::Flag))
        );
        assert_eq!(
            choose_scale(Some(120.0), None),
            Some((120.0, ScaleSource::Flag))
        );
        assert_eq!(
            choose_scale(None, Some(600.0)),
            Some((600.0, ScaleSource::Server))
        );
        assert_eq!(choose_scale(None, None), None);
    }
}
