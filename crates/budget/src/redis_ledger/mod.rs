//! One key's ledger shared by several processes and hosts through Redis
//! (feature `redis`).
//!
//! [`RedisLedger`] implements [`LedgerStore`] with the in-process
//! [`Ledger`](crate::Ledger)'s semantics, every mutation an atomic Lua
//! script (no read-modify-write from a client):
//!
//! - **Newest snapshot wins**: a snapshot is adopted only if newer by
//!   (`timestamp`, next refill, lower balance); an older one arriving late
//!   changes nothing, reservations included (no `SET tokensLeft`).
//! - **Reservations are leases**: each has an id, an owner (this process), an
//!   amount and an expiry in Redis `TIME` (one clock for every host; local
//!   clocks are never compared). A live process renews its leases in the
//!   background every third of the lease; a process that dies leaves nothing
//!   beyond its lease.
//! - **Settlement** as in the in-process ledger: a charge whose envelope is
//!   newer than the held snapshot is adopted with it (and counted as ours in
//!   the foreign estimate); one whose envelope is older is already contained
//!   in the held snapshot, so only the reservation leaves; a timeout counts as
//!   charged until a snapshot newer than it.
//! - **Conditional reservation**: a reservation carries the version the
//!   decision was taken on and fails if a snapshot was adopted or another
//!   reservation made since; the gate then decides again.
//! - **Shared decisions**: every process publishes its waiting demands and
//!   periodic jobs (leased); each decision sees the others' (their periodic
//!   jobs count for the reserve, their bulk jobs for the fair share, whose
//!   positions are stored with the reservations). The policy and its
//!   parameters ([`PolicySpec`]) are stored with the ledger.
//! - **Nothing a crash leaves blocks**: every key has a TTL (state and
//!   policy: `state_ttl`, renewed while a process lives; reservations and
//!   demands: their lease). No script deletes anything but its own entries
//!   and expired leases.
//!
//! # Data layout
//!
//! For a ledger named `N` (never the API key: see [`LedgerName`]), with
//! `P = keepa-harvest:ledger:{N}` (one hash slot):
//!
//! | key | type | content | TTL |
//! |---|---|---|---|
//! | `P:state` | hash | `ts left rin rate` (newest snapshot), `ver`, `nid`, `sync`, `ftot fobs fgap` (foreign estimate) | `state_ttl`, reset by every write and heartbeat |
//! | `P:res` | hash | reservation id → `{o, j, a, e, t?}` (owner, job, amount, lease end in Redis ms, timed-out-at) | ≥ the longest lease in it |
//! | `P:jobs` | hash | `owner\|job` → `{o, j, e, w?, p?, v?}` (waiting need, periodic registration, fair-queue position) | ≥ the longest lease in it |
//! | `P:policy` | string | [`PolicySpec`] as JSON | `state_ttl`, renewed by heartbeats |
//! | `P:changed` | channel | owner id of the process that changed something | – |

mod scripts;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keepa::tokens::BucketCap;
use keepa::{ApiKey, TokenSnapshot};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::demand::{JobId, Millis, Need, Periodic};
use crate::ledger::{view_of, ForeignEstimate, Outcome, ReservationId, View};
use crate::policy::{ControlledDeficit, PolicyKind, SeedRules, WaitForMax};
use crate::store::{LedgerError, LedgerStore, Loaded, Published, RemoteJob, StoreFuture};
use scripts::SCRIPTS;

/// The name of a shared ledger in Redis. Never the API key: either a name
/// you choose, or [`LedgerName::for_key`], a salted SHA-256 of the key that
/// cannot be turned back into it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LedgerName(String);

/// The project's fixed salt for [`LedgerName::for_key`]: every process of
/// every host derives the same name from the same key.
const KEY_SALT: &[u8] = b"keepa-harvest/ledger-name/v1\0";

impl LedgerName {
    /// A name you choose: 1–64 characters from `A–Z a–z 0–9 . _ -`.
    pub fn new(name: &str) -> Result<Self, LedgerError> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(LedgerName(name.to_string()))
        } else {
            Err(LedgerError::InvalidName(
                "use 1-64 characters from A-Z a-z 0-9 . _ -".to_string(),
            ))
        }
    }

    /// The ledger of an API key: `k-` and 32 hex digits of
    /// SHA-256(salt ‖ key). The same on every host; reveals nothing of the key.
    pub fn for_key(key: &ApiKey) -> Self {
        let mut h = Sha256::new();
        h.update(KEY_SALT);
        h.update(key.expose().as_bytes());
        let d = h.finalize();
        let hex: String = d[..16].iter().map(|b| format!("{b:02x}")).collect();
        LedgerName(format!("k-{hex}"))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LedgerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for LedgerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LedgerName({})", self.0)
    }
}

/// The policy and its parameters, stored with a shared ledger so that every
/// process decides alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicySpec {
    /// `flow`, `controlled-deficit` or `wait-for-max`.
    pub name: String,
    /// The seed policies' parameters.
    pub rules: SeedRules,
    /// [`Flow::finish_line`](crate::flow::Flow::finish_line).
    pub finish_line: bool,
    /// [`Flow::deficit_floor`](crate::flow::Flow::deficit_floor).
    pub deficit_floor: Option<i64>,
    /// The bucket cap projections use (Keepa: 60 minutes of refill).
    pub cap: BucketCap,
}

impl Default for PolicySpec {
    fn default() -> Self {
        PolicySpec::of(&PolicyKind::Flow(Default::default()), BucketCap::default())
    }
}

impl PolicySpec {
    /// The spec of `policy` with bucket cap `cap`.
    pub fn of(policy: &PolicyKind, cap: BucketCap) -> Self {
        let (name, rules, flow) = match policy {
            PolicyKind::Flow(f) => ("flow", SeedRules::default(), *f),
            PolicyKind::ControlledDeficit(c) => ("controlled-deficit", c.rules, Default::default()),
            PolicyKind::WaitForMax(w) => ("wait-for-max", w.rules, Default::default()),
        };
        PolicySpec {
            name: name.to_string(),
            rules,
            finish_line: flow.finish_line,
            deficit_floor: flow.deficit_floor,
            cap,
        }
    }

    /// The policy this spec names.
    pub fn policy(&self) -> Result<PolicyKind, LedgerError> {
        match PolicyKind::by_name(&self.name, self.rules) {
            Ok(PolicyKind::Flow(mut f)) => {
                f.finish_line = self.finish_line;
                f.deficit_floor = self.deficit_floor;
                Ok(PolicyKind::Flow(f))
            }
            Ok(PolicyKind::ControlledDeficit(_)) => {
                Ok(PolicyKind::ControlledDeficit(ControlledDeficit {
                    rules: self.rules,
                }))
            }
            Ok(PolicyKind::WaitForMax(_)) => {
                Ok(PolicyKind::WaitForMax(WaitForMax { rules: self.rules }))
            }
            Err(e) => Err(LedgerError::Protocol(e.to_string())),
        }
    }
}

/// How [`RedisLedger::agree_policy`] treats a policy already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyMode {
    /// Use the stored one; store ours only if none is.
    Adopt,
    /// Store ours if none is; fail with [`LedgerError::PolicyConflict`] if a
    /// different one is stored.
    Require,
    /// Store ours over whatever is stored (processes already running keep
    /// theirs until they reconnect).
    Replace,
}

/// Options of a [`RedisLedger`].
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// How long a reservation or a published demand outlives its process.
    /// Default 15 s.
    pub lease: Duration,
    /// How often a live process renews its leases (`None`: never; only for
    /// tests that simulate a process that vanished). Default: a third of
    /// the lease.
    pub renew_every: Option<Duration>,
    /// How long the snapshot and the policy outlive the last process that
    /// wrote them. Default 24 h.
    pub state_ttl: Duration,
    /// Each Redis command's timeout (a failure is then an error value, not a
    /// hang). Default 2 s.
    pub command_timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            lease: Duration::from_secs(15),
            renew_every: Some(Duration::from_secs(5)),
            state_ttl: Duration::from_secs(24 * 3600),
            command_timeout: Duration::from_secs(2),
        }
    }
}

impl RedisOptions {
    /// Default options with this lease (renewed every third of it).
    pub fn with_lease(lease: Duration) -> Self {
        RedisOptions {
            lease,
            renew_every: Some(lease / 3),
            ..RedisOptions::default()
        }
    }
}

#[derive(Debug)]
struct Keys {
    state: String,
    res: String,
    jobs: String,
    policy: String,
    channel: String,
}

impl Keys {
    fn new(name: &LedgerName) -> Self {
        let p = format!("keepa-harvest:ledger:{{{}}}", name.as_str());
        Keys {
            state: format!("{p}:state"),
            res: format!("{p}:res"),
            jobs: format!("{p}:jobs"),
            policy: format!("{p}:policy"),
            channel: format!("{p}:changed"),
        }
    }
}

#[derive(Debug, Default)]
struct Cache {
    view: Option<View>,
}

/// What every operation needs, shared with its `'static` future.
struct Ctx {
    con: redis::aio::ConnectionManager,
    keys: Keys,
    owner: String,
    lease_ms: i64,
    state_ttl_ms: i64,
    cap: Mutex<BucketCap>,
    cache: Mutex<Cache>,
}

impl Ctx {
    fn cap(&self) -> BucketCap {
        *self.cap.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A ledger shared through Redis. See the [module docs](self).
///
/// ```no_run
/// # async fn demo() -> Result<(), budget::LedgerError> {
/// use budget::gate::Gate;
/// use keepa::clock::ScaledClock;
/// use budget::redis_ledger::{LedgerName, PolicyMode, PolicySpec, RedisLedger, RedisOptions};
///
/// let name = LedgerName::new("my-shop")?;
/// let ledger = RedisLedger::connect("redis://127.0.0.1:6379/", &name, RedisOptions::default()).await?;
/// let spec = ledger.agree_policy(&PolicySpec::default(), PolicyMode::Adopt).await?;
/// let gate = Gate::new(spec.policy()?, ledger, ScaledClock::new(0, 1.0), None);
/// # drop(gate); Ok(()) }
/// ```
pub struct RedisLedger {
    ctx: Arc<Ctx>,
    client: redis::Client,
    tasks: Vec<AbortHandle>,
}

impl fmt::Debug for RedisLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No URL: it may carry a password.
        f.debug_struct("RedisLedger")
            .field("keys", &self.ctx.keys.state)
            .field("owner", &self.ctx.owner)
            .field("lease_ms", &self.ctx.lease_ms)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: redis::RedisError) -> LedgerError {
    // A RedisError names the failure (kind, server message), never the URL.
    LedgerError::Unavailable(e.to_string())
}

/// A process-unique owner id: host-independent, random enough that two
/// processes never share one.
fn new_owner() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(d.as_nanos());
    }
    format!("{:016x}", h.finish())
}

impl RedisLedger {
    /// Connects to `url` (`redis://host:port/db`) for ledger `name`. Starts
    /// the lease heartbeat. Never logs or returns the URL.
    pub async fn connect(
        url: &str,
        name: &LedgerName,
        options: RedisOptions,
    ) -> Result<Self, LedgerError> {
        let client = redis::Client::open(url)
            .map_err(|_| LedgerError::Unavailable("invalid redis URL".to_string()))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(options.command_timeout))
            .set_connection_timeout(Some(options.command_timeout))
            .set_number_of_retries(2);
        let con = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(unavailable)?;
        let ctx = Arc::new(Ctx {
            con,
            keys: Keys::new(name),
            owner: new_owner(),
            lease_ms: options.lease.as_millis().max(1) as i64,
            state_ttl_ms: options.state_ttl.as_millis().max(1) as i64,
            cap: Mutex::new(BucketCap::default()),
            cache: Mutex::new(Cache::default()),
        });
        let mut tasks = Vec::new();
        if let Some(every) = options.renew_every {
            let weak = Arc::downgrade(&ctx);
            let every = every.max(Duration::from_millis(10));
            let h = tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Some(ctx) = weak.upgrade() else { return };
                    let mut con = ctx.con.clone();
                    let r: redis::RedisResult<i64> = SCRIPTS
                        .renew
                        .key(&ctx.keys.state)
                        .key(&ctx.keys.res)
                        .key(&ctx.keys.jobs)
                        .key(&ctx.keys.policy)
                        .arg(&ctx.owner)
                        .arg(ctx.lease_ms)
                        .arg(ctx.state_ttl_ms)
                        .invoke_async(&mut con)
                        .await;
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "budget: renewing ledger leases failed");
                    }
                }
            });
            tasks.push(h.abort_handle());
        }
        Ok(RedisLedger { ctx, client, tasks })
    }

    /// Every Redis key this ledger uses (for operators and tests that clean
    /// up after themselves; each has a TTL anyway).
    pub fn keys(&self) -> [&str; 4] {
        let k = &self.ctx.keys;
        [&k.state, &k.res, &k.jobs, &k.policy]
    }

    /// This process's owner id in the ledger (in reservations and demands).
    pub fn owner(&self) -> &str {
        &self.ctx.owner
    }

    /// The lease of this process's reservations and demands.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.ctx.lease_ms as u64)
    }

    /// Agrees on the policy with the other processes (see [`PolicyMode`]);
    /// returns the spec in force, whose cap this ledger then projects with.
    pub async fn agree_policy(
        &self,
        ours: &PolicySpec,
        mode: PolicyMode,
    ) -> Result<PolicySpec, LedgerError> {
        let json = serde_json::to_string(ours).map_err(|e| LedgerError::Protocol(e.to_string()))?;
        let mut con = self.ctx.con.clone();
        let stored: String = SCRIPTS
            .policy
            .key(&self.ctx.keys.policy)
            .arg(&json)
            .arg(self.ctx.state_ttl_ms)
            .arg(if mode == PolicyMode::Replace {
                "replace"
            } else {
                "keep"
            })
            .invoke_async(&mut con)
            .await
            .map_err(unavailable)?;
        let spec: PolicySpec = serde_json::from_str(&stored)
            .map_err(|e| LedgerError::Protocol(format!("stored policy: {e}")))?;
        if mode == PolicyMode::Require && &spec != ours {
            return Err(LedgerError::PolicyConflict {
                stored: stored.clone(),
                ours: json,
            });
        }
        spec.policy()?;
        *self.ctx.cap.lock().unwrap_or_else(|e| e.into_inner()) = spec.cap;
        Ok(spec)
    }

    /// Redis `TIME` in milliseconds: the one clock all hosts share.
    pub async fn redis_time_ms(&self) -> Result<Millis, LedgerError> {
        let mut con = self.ctx.con.clone();
        let (s, us): (i64, i64) = redis::cmd("TIME")
            .query_async(&mut con)
            .await
            .map_err(unavailable)?;
        Ok(s * 1000 + us / 1000)
    }

    /// Reads the shared state without publishing anything (for reports and
    /// tests): the view, the version and the number of other processes'
    /// jobs.
    pub async fn peek(&self) -> Result<Loaded, LedgerError> {
        load(self.ctx.clone(), None).await
    }

    fn settle_op(
        &self,
        kind: &'static str,
        id: u64,
        consumed: i64,
        at: Millis,
        snap: Option<TokenSnapshot>,
    ) -> StoreFuture<bool> {
        let ctx = self.ctx.clone();
        Box::pin(async move {
            let cap = ctx.cap();
            let (ck, cn) = match cap {
                BucketCap::MinutesOfRefill(m) => ("m", m),
                BucketCap::Fixed(n) => ("f", n),
            };
            let s = snap.unwrap_or(TokenSnapshot {
                timestamp_ms: 0,
                tokens_left: 0,
                refill_in_ms: 0,
                refill_rate: 0,
            });
            let mut con = ctx.con.clone();
            let adopted: i64 = SCRIPTS
                .settle
                .key(&ctx.keys.state)
                .key(&ctx.keys.res)
                .arg(&ctx.owner)
                .arg(ctx.lease_ms)
                .arg(&ctx.keys.channel)
                .arg(ctx.state_ttl_ms)
                .arg(kind)
                .arg(id)
                .arg(consumed)
                .arg(at)
                .arg(if snap.is_some() { "1" } else { "0" })
                .arg(s.timestamp_ms)
                .arg(s.tokens_left)
                .arg(s.refill_in_ms)
                .arg(s.refill_rate)
                .arg(ck)
                .arg(cn)
                .invoke_async(&mut con)
                .await
                .map_err(unavailable)?;
            Ok(adopted == 1)
        })
    }
}

impl Drop for RedisLedger {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        // Withdraw our demands so nobody waits for their lease (best effort;
        // the lease ends them anyway).
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let ctx = self.ctx.clone();
            rt.spawn(async move {
                let mut con = ctx.con.clone();
                let r: redis::RedisResult<i64> = SCRIPTS
                    .release
                    .key(&ctx.keys.jobs)
                    .arg(&ctx.owner)
                    .arg(&ctx.keys.channel)
                    .invoke_async(&mut con)
                    .await;
                if let Err(e) = r {
                    tracing::debug!(error = %e, "budget: withdrawing ledger demands failed");
                }
            });
        }
    }
}

/// One published job as the scripts store it.
#[derive(Debug, Serialize, Deserialize)]
struct JobRec {
    #[serde(default)]
    o: String,
    j: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    e: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    v: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    w: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Raw {
    has: bool,
    ts: i64,
    left: i64,
    rin: i64,
    rate: i64,
    ver: u64,
    sync: Option<i64>,
    ftot: i64,
    fobs: i64,
    fgap: i64,
    reserved: i64,
    recheck: Option<i64>,
    others: Vec<JobRec>,
    own: Vec<JobRec>,
}

fn json_err(e: serde_json::Error) -> LedgerError {
    LedgerError::Protocol(e.to_string())
}

fn encode_mine(mine: &Published) -> Result<String, LedgerError> {
    let mut recs: std::collections::BTreeMap<u32, JobRec> = std::collections::BTreeMap::new();
    for d in &mine.waiting {
        let r = recs.entry(d.job.0).or_insert_with(|| JobRec {
            o: String::new(),
            j: d.job.0,
            e: None,
            v: None,
            w: None,
            p: None,
        });
        r.w = Some(serde_json::to_string(&d.need).map_err(json_err)?);
    }
    for (job, p) in &mine.periodic {
        let r = recs.entry(job.0).or_insert_with(|| JobRec {
            o: String::new(),
            j: job.0,
            e: None,
            v: None,
            w: None,
            p: None,
        });
        r.p = Some(serde_json::to_string(p).map_err(json_err)?);
    }
    #[derive(Serialize)]
    struct Mine<'a> {
        j: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        w: &'a Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        p: &'a Option<String>,
    }
    let list: Vec<Mine<'_>> = recs
        .values()
        .map(|r| Mine {
            j: r.j,
            w: &r.w,
            p: &r.p,
        })
        .collect();
    serde_json::to_string(&list).map_err(json_err)
}

/// Runs the load script (publishing `mine` if given; `None` reads only, as
/// a process with nothing published) and updates the cache.
async fn load(ctx: Arc<Ctx>, mine: Option<String>) -> Result<Loaded, LedgerError> {
    let mut con = ctx.con.clone();
    // A reader publishing nothing uses an owner id no process has.
    let owner = if mine.is_some() {
        ctx.owner.clone()
    } else {
        format!("{}-peek", ctx.owner)
    };
    let raw: String = SCRIPTS
        .load
        .key(&ctx.keys.state)
        .key(&ctx.keys.res)
        .key(&ctx.keys.jobs)
        .arg(&owner)
        .arg(ctx.lease_ms)
        .arg(&ctx.keys.channel)
        .arg(ctx.state_ttl_ms)
        .arg(mine.as_deref().unwrap_or("[]"))
        .invoke_async(&mut con)
        .await
        .map_err(unavailable)?;
    let raw: Raw = serde_json::from_str(&raw).map_err(json_err)?;
    let view = raw.has.then(|| {
        view_of(
            TokenSnapshot {
                timestamp_ms: raw.ts,
                tokens_left: raw.left,
                refill_in_ms: raw.rin,
                refill_rate: raw.rate,
            },
            ctx.cap(),
            raw.reserved,
            ForeignEstimate {
                total: raw.ftot,
                observed_ms: raw.fobs,
                largest_gap: raw.fgap,
            },
            raw.sync,
        )
    });
    let mut others = Vec::with_capacity(raw.others.len());
    for r in &raw.others {
        let waiting: Option<Need> = match &r.w {
            Some(w) => Some(serde_json::from_str(w).map_err(json_err)?),
            None => None,
        };
        let periodic: Option<Periodic> = match &r.p {
            Some(p) => Some(serde_json::from_str(p).map_err(json_err)?),
            None => None,
        };
        others.push(RemoteJob {
            waiting,
            periodic,
            vtime: r.v.as_deref().and_then(|v| v.parse().ok()),
        });
    }
    let own_vtimes = raw
        .own
        .iter()
        .filter_map(|r| Some((JobId(r.j), r.v.as_deref()?.parse().ok()?)))
        .collect();
    ctx.cache.lock().unwrap_or_else(|e| e.into_inner()).view = view.clone();
    Ok(Loaded {
        view,
        version: raw.ver,
        others,
        own_vtimes,
        recheck_in_ms: raw.recheck,
    })
}

impl LedgerStore for RedisLedger {
    fn load(&mut self, mine: &Published) -> StoreFuture<Loaded> {
        let ctx = self.ctx.clone();
        let mine = encode_mine(mine);
        Box::pin(async move { load(ctx, Some(mine?)).await })
    }

    fn view(&self) -> Option<View> {
        self.ctx
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .view
            .clone()
    }

    fn newest(&self) -> Option<TokenSnapshot> {
        self.view().map(|v| v.snapshot)
    }

    fn observe(&mut self, snapshot: TokenSnapshot) -> StoreFuture<bool> {
        self.settle_op("observe", 0, 0, 0, Some(snapshot))
    }

    fn note_sync(&mut self, at: Millis) -> StoreFuture<()> {
        let f = self.settle_op("sync", 0, 0, at, None);
        Box::pin(async move { f.await.map(|_| ()) })
    }

    fn reserve(
        &mut self,
        job: JobId,
        amount: i64,
        expected_version: Option<u64>,
        vtime: Option<f64>,
    ) -> StoreFuture<Option<ReservationId>> {
        let ctx = self.ctx.clone();
        Box::pin(async move {
            let mut con = ctx.con.clone();
            let id: i64 = SCRIPTS
                .reserve
                .key(&ctx.keys.state)
                .key(&ctx.keys.res)
                .key(&ctx.keys.jobs)
                .arg(&ctx.owner)
                .arg(ctx.lease_ms)
                .arg(&ctx.keys.channel)
                .arg(ctx.state_ttl_ms)
                .arg(expected_version.map_or(-1, |v| v as i64))
                .arg(job.0)
                .arg(amount)
                .arg(vtime.map(|v| v.to_string()).unwrap_or_default())
                .invoke_async(&mut con)
                .await
                .map_err(unavailable)?;
            Ok((id > 0).then_some(ReservationId(id as u64)))
        })
    }

    fn settle(&mut self, id: ReservationId, outcome: Outcome) -> StoreFuture<()> {
        let f = match outcome {
            Outcome::Charged { consumed, snapshot } => self.settle_op(
                "charged",
                id.0,
                crate::ledger::plausible_charge(consumed),
                0,
                snapshot,
            ),
            Outcome::Refused { snapshot } => self.settle_op("refused", id.0, 0, 0, snapshot),
            Outcome::TimedOut { at } => self.settle_op("timedout", id.0, 0, at, None),
            Outcome::Unsent => self.settle_op("unsent", id.0, 0, 0, None),
        };
        Box::pin(async move { f.await.map(|_| ()) })
    }

    fn publish(&mut self, mine: &Published) -> StoreFuture<()> {
        let f = self.load(mine);
        Box::pin(async move { f.await.map(|_| ()) })
    }

    fn watch(&mut self, changed: Arc<Notify>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("budget: no tokio runtime; other processes' changes will be seen at lease checks only");
            return;
        };
        let client = self.client.clone();
        let channel = self.ctx.keys.channel.clone();
        let owner = self.ctx.owner.clone();
        let h = rt.spawn(async move {
            use futures_util::StreamExt;
            let mut pubsub = match client.get_async_pubsub().await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "budget: ledger change subscription failed");
                    return;
                }
            };
            if let Err(e) = pubsub.subscribe(&channel).await {
                tracing::warn!(error = %e, "budget: ledger change subscription failed");
                return;
            }
            let mut stream = pubsub.into_on_message();
            while let Some(msg) = stream.next().await {
                let from: String = msg.get_payload().unwrap_or_default();
                if from != owner {
                    changed.notify_waiters();
                }
            }
            tracing::warn!("budget: ledger change subscription ended");
        });
        self.tasks.push(h.abort_handle());
    }
}
