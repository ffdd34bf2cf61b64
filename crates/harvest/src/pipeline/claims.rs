//! Claims: what is being worked on right now, so no two jobs (of this
//! process or of another on the same database) fetch the same thing.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};

use crate::extract::DealItem;
use crate::store::{Locks, StoreError};

/// What is being worked on right now, by any job of this process or of
/// another process on the same database: feed pages, ASINs, singleton jobs.
///
/// A claim is taken in process first (jobs of one process exclude each
/// other), then in the store ([`Locks`]: across processes; released by the
/// server if this process dies). Claims are never waited on: what another
/// job holds is left to it.
#[derive(Debug)]
pub(crate) struct Claims {
    set: Mutex<HashSet<String>>,
    locks: Locks,
}

impl Claims {
    /// Claims over `locks` (the store's).
    pub(crate) fn new(locks: Locks) -> Self {
        Claims {
            set: Mutex::new(HashSet::new()),
            locks,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashSet<String>> {
        self.set.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes what is free of `names`; returns, in order, whether each was taken.
    pub(crate) async fn try_claim(&self, names: &[String]) -> Result<Vec<bool>, StoreError> {
        let local: Vec<bool> = {
            let mut set = self.lock();
            names.iter().map(|n| set.insert(n.clone())).collect()
        };
        let fresh: Vec<String> = names
            .iter()
            .zip(&local)
            .filter(|(_, l)| **l)
            .map(|(n, _)| n.clone())
            .collect();
        let shared = match self.locks.try_claim(&fresh).await {
            Ok(s) => s,
            Err(e) => {
                self.forget(&fresh);
                return Err(e);
            }
        };
        let lost: Vec<String> = fresh
            .iter()
            .zip(&shared)
            .filter(|(_, got)| !**got)
            .map(|(n, _)| n.clone())
            .collect();
        self.forget(&lost);
        let mut shared = shared.into_iter();
        Ok(local
            .into_iter()
            .map(|l| l && shared.next().unwrap_or(false))
            .collect())
    }

    /// Releases claims this process took.
    pub(crate) async fn release(&self, names: &[String]) -> Result<(), StoreError> {
        if names.is_empty() {
            return Ok(());
        }
        let r = self.locks.release(names).await;
        self.forget(names);
        r
    }

    fn forget(&self, names: &[String]) {
        let mut set = self.lock();
        for n in names {
            set.remove(n);
        }
    }

    /// The claim name of an ASIN.
    pub(crate) fn asin(domain: u8, asin: &str) -> String {
        format!("asin:{domain}:{asin}")
    }

    /// Claims the deals of `items` that are free; returns (claimed, held elsewhere).
    pub(super) async fn claim_deals(
        &self,
        domain: u8,
        items: Vec<DealItem>,
    ) -> Result<(Vec<DealItem>, Vec<DealItem>), StoreError> {
        let names: Vec<String> = items.iter().map(|d| Self::asin(domain, &d.asin)).collect();
        let got = self.try_claim(&names).await?;
        let mut mine = Vec::new();
        let mut busy = Vec::new();
        for (d, g) in items.into_iter().zip(got) {
            if g {
                mine.push(d);
            } else {
                busy.push(d);
            }
        }
        Ok((mine, busy))
    }
}
