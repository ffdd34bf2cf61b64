//! The one place where outcomes become exit codes (the table in the README).
//!
//! Commands return `anyhow::Error`s; [`classify`] walks each error's chain
//! for a typed cause: [`keepa::ApiError`], [`keepa::ValidationError`],
//! a database that cannot be used ([`StoreError`]), [`UsageError`],
//! [`Interrupted`]. Anything else is an internal error.

use std::fmt;
use std::process::ExitCode;

use harvest::store::StoreError;
use harvest::HarvestError;
use keepa::ApiError;

/// The exit statuses of `keepa-harvest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// 0: success.
    Ok,
    /// 1: a bug or an unexpected local failure.
    Internal,
    /// 2: bad usage, configuration or input.
    Usage,
    /// 3: Keepa refused the request (400, 402, 404, 405).
    Refused,
    /// 4: out of tokens (429) and the caller asked not to wait.
    OutOfTokens,
    /// 5: network or server failure.
    Network,
    /// 130: interrupted.
    Interrupted,
}

impl Status {
    /// The numeric exit code.
    pub(crate) fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Internal => 1,
            Status::Usage => 2,
            Status::Refused => 3,
            Status::OutOfTokens => 4,
            Status::Network => 5,
            Status::Interrupted => 130,
        }
    }
}

impl From<Status> for ExitCode {
    fn from(s: Status) -> ExitCode {
        ExitCode::from(s.code())
    }
}

/// Bad usage, configuration or input (exit 2). The message says what is wrong.
#[derive(Debug)]
pub(crate) struct UsageError(pub(crate) String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Shorthand for an `anyhow::Error` carrying a [`UsageError`].
pub(crate) fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// The user interrupted the program (exit 130).
#[derive(Debug)]
pub(crate) struct Interrupted;

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// The exit status an error stands for.
pub(crate) fn classify(err: &anyhow::Error) -> Status {
    for cause in err.chain() {
        if let Some(api) = cause.downcast_ref::<ApiError>() {
            return match api {
                ApiError::Rejected(_)
                | ApiError::PaymentRequired(_)
                | ApiError::NotFound(_)
                | ApiError::MethodNotAllowed(_) => Status::Refused,
                ApiError::NotEnoughTokens(_) => Status::OutOfTokens,
                ApiError::Server(_)
                | ApiError::UnexpectedStatus(_)
                | ApiError::Timeout { .. }
                | ApiError::Transport { .. }
                | ApiError::Undecodable { .. } => Status::Network,
            };
        }
        if cause.is::<harvest::alerts::SendError>() {
            return Status::Network;
        }
        if let Some(l) = cause.downcast_ref::<budget::LedgerError>() {
            return ledger_status(l);
        }
        // Two answers said refill 0 and nothing left: Keepa refused the key.
        if let Some(budget::gate::GateError::NoPlan) = cause.downcast_ref() {
            return Status::Refused;
        }
        if let Some(s) = cause.downcast_ref::<budget::shared::SharedError>() {
            return match s {
                budget::shared::SharedError::Late(_) => Status::OutOfTokens,
                budget::shared::SharedError::Ledger(l) => ledger_status(l),
                budget::shared::SharedError::Gate(_) => Status::Usage,
            };
        }
        if let Some(store) = store_error(cause) {
            return match store {
                // The database named is missing, corrupt, read-only, too
                // new, held by another run, cannot be created or cannot be
                // reached: bad input.
                StoreError::Create { .. }
                | StoreError::Missing { .. }
                | StoreError::Corrupt { .. }
                | StoreError::ReadOnly { .. }
                | StoreError::TooNew { .. }
                | StoreError::InUse { .. }
                | StoreError::Connect { .. } => Status::Usage,
                _ => Status::Internal,
            };
        }
        if cause.is::<UsageError>()
            || cause.is::<keepa::ValidationError>()
            || cause.is::<keepa::domain::InvalidDomain>()
            || cause.is::<keepa::error::InvalidApiKey>()
            || cause.is::<keepa::error::BuildError>()
        {
            return Status::Usage;
        }
        if cause.is::<Interrupted>() {
            return Status::Interrupted;
        }
    }
    Status::Internal
}

/// A shared ledger's failure: unreachable is a network failure; a policy
/// or name that does not fit is bad usage.
fn ledger_status(e: &budget::LedgerError) -> Status {
    match e {
        budget::LedgerError::Unavailable(_) => Status::Network,
        budget::LedgerError::PolicyConflict { .. } | budget::LedgerError::InvalidName(_) => {
            Status::Usage
        }
        budget::LedgerError::Protocol(_) => Status::Internal,
    }
}

/// The store error `cause` is or wraps. `HarvestError::Store` is
/// transparent, so the store error is not a link of the chain of its own.
fn store_error<'a>(cause: &'a (dyn std::error::Error + 'static)) -> Option<&'a StoreError> {
    match cause.downcast_ref::<HarvestError>() {
        Some(HarvestError::Store(e)) => Some(e),
        _ => cause.downcast_ref::<StoreError>(),
    }
}

/// Prints the error on stderr and returns its exit status.
pub(crate) fn report(err: &anyhow::Error) -> Status {
    let status = classify(err);
    if status != Status::Interrupted {
        eprintln!("error: {}", message(err));
    }
    status
}

/// The error and its causes joined with `: `, leaving out a cause whose
/// text the message already holds (typed errors often print their source).
fn message(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn typed_causes_map_to_their_codes_through_context() {
        let e = Err::<(), _>(usage("no key"))
            .context("while starting")
            .unwrap_err();
        assert_eq!(classify(&e).code(), 2);
        let e = anyhow::Error::new(HarvestError::Budget {
            job: harvest::pipeline::Job::Backfill,
            source: budget::gate::GateError::NoPlan,
        })
        .context("running");
        assert_eq!(classify(&e).code(), 3);
        let e = anyhow::Error::new(Interrupted);
        assert_eq!(classify(&e).code(), 130);
        let e = anyhow::anyhow!("something odd");
        assert_eq!(classify(&e).code(), 1);
        let timeout = ApiError::Timeout {
            after: std::time::Duration::from_secs(1),
            connecting: false,
            may_have_been_charged: true,
        };
        let e = anyhow::Error::new(timeout).context("GET /token");
        assert_eq!(classify(&e).code(), 5);
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let inner = UsageError("offers=5: must be between 20 and 100".into());
        let outer =
            anyhow::Error::new(inner).context("bad request: offers=5: must be between 20 and 100");
        assert_eq!(
            message(&outer),
            "bad request: offers=5: must be between 20 and 100"
        );
        let e = anyhow::Error::new(UsageError("no key".into())).context("starting");
        assert_eq!(message(&e), "starting: no key");
    }

    #[test]
    fn unusable_databases_are_bad_input_also_inside_a_harvest_error() {
        let read_only = || StoreError::ReadOnly {
            db: "h.db".into(),
            detail: "attempt to write a readonly database".into(),
        };
        let e = anyhow::Error::new(read_only()).context("opening the database h.db");
        assert_eq!(classify(&e).code(), 2);
        let e = anyhow::Error::new(HarvestError::Store(read_only())).context("the harvest stopped");
        assert_eq!(classify(&e).code(), 2);
        let query = StoreError::Query {
            db: "h.db".into(),
            what: "commit",
            detail: "disk I/O error".into(),
        };
        let e = anyhow::Error::new(HarvestError::Store(query)).context("the harvest stopped");
        assert_eq!(classify(&e).code(), 1);
    }
}
