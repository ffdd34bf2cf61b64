//! `keepa-harvest api …`: one Keepa call each. The response body (JSON) goes
//! to stdout; one line on stderr gives predicted cost, charged cost, tokens
//! left, refill rate and time to the next refill (a JSON object with `--json`).
//!
//! With `--ledger redis://…` (or `ledger` in the config file) the call
//! first takes a permit from the key's shared budget (as an interactive
//! one-off: ahead of bulk work, for at most `--max-wait`) and settles it
//! with what Keepa answered, so it never spends tokens the harvest
//! processes on the key are counting on.

use std::path::{Path, PathBuf};
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use keepa::cost::{CostModel, CostPrediction};
use keepa::request::{DealSelection, Endpoint, ProductRequest, Request};
use keepa::{Domain, Envelope};
use serde_json::json;

use crate::context::{CommandFlags, Context, Plan};
use crate::exit::usage;

/// `api` and its flags.
#[derive(Debug, Args)]
pub(crate) struct ApiArgs {
    /// With --ledger redis://…: wait at most this long for the shared
    /// budget's permit, then give up (exit 4).
    #[arg(long, global = true, value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "60s")]
    max_wait: Duration,
    /// Also write the answer into DIR as a numbered JSON file (status,
    /// headers, body; never the key).
    #[arg(long, global = true, value_name = "DIR")]
    record: Option<PathBuf>,
    #[command(subcommand)]
    call: ApiCommand,
}

/// Single Keepa calls.
#[derive(Debug, Subcommand)]
pub(crate) enum ApiCommand {
    /// One /token call: prints the token status (costs nothing).
    Token,
    /// One /product call.
    Product(ProductArgs),
    /// One /deal call (a page of the deal feed).
    Deals(DealsArgs),
}

/// Flags of `api product`.
#[derive(Debug, Args)]
pub(crate) struct ProductArgs {
    /// ASINs, comma-separated (at most 100).
    #[arg(long, value_delimiter = ',', value_name = "ASIN[,ASIN…]")]
    asin: Vec<String>,
    /// Product codes (EAN, UPC, ISBN-13), comma-separated, instead of ASINs.
    #[arg(long, value_delimiter = ',', value_name = "CODE[,CODE…]")]
    code: Vec<String>,
    /// Marketplace: id (1 = com, 3 = de, …) or suffix (`co.uk`).
    #[arg(long, default_value = "1", value_parser = parse_domain)]
    domain: Domain,
    /// Live offers, 20-100 (6 tokens per page of 10 offers found, per product).
    #[arg(long)]
    offers: Option<u32>,
    /// Statistics over the last D days (free).
    #[arg(long, value_name = "D")]
    stats: Option<u32>,
    /// Include csv histories: 0 or 1.
    #[arg(long, value_name = "0|1", value_parser = clap::value_parser!(u8).range(0..=1))]
    history: Option<u8>,
    /// Limit histories to the last N days.
    #[arg(long, value_name = "N")]
    days: Option<u32>,
    /// -1 never refresh, 0 force a refresh (+1 token), H refresh if older than H hours.
    #[arg(long, value_name = "H", allow_negative_numbers = true)]
    update: Option<i64>,
    /// Rating and review-count history (up to +1 per product).
    #[arg(long)]
    rating: bool,
    /// Buy-box history (+2 per product; ignored with offers).
    #[arg(long)]
    buybox: bool,
    /// Stock of the offers (+2 per product; needs --offers).
    #[arg(long)]
    stock: bool,
    /// Only live offers (needs --offers).
    #[arg(long)]
    only_live_offers: bool,
}

/// Flags of `api deals`.
#[derive(Debug, Args)]
pub(crate) struct DealsArgs {
    /// The selection: a JSON object, or a file holding one.
    #[arg(long, value_name = "FILE-or-JSON")]
    selection: String,
    /// Page (overrides the selection's `page`).
    #[arg(long)]
    page: Option<u32>,
    /// Send the selection as a GET parameter instead of a POST body.
    #[arg(long)]
    get: bool,
}

fn parse_domain(text: &str) -> Result<Domain, String> {
    Domain::parse(text).map_err(|_| {
        format!("invalid domain {text:?}: expected 1-6 or 8-12, or a suffix such as com, co.uk, de")
    })
}

impl ApiArgs {
    pub(crate) async fn run(&self, ctx: &Context) -> anyhow::Result<()> {
        let request = match &self.call {
            ApiCommand::Token => Request::token(),
            ApiCommand::Product(args) => args.request()?,
            ApiCommand::Deals(args) => args.request()?,
        };
        let plan = ctx.plan(CommandFlags {
            needs_key: true,
            record: self.record.clone(),
            ..CommandFlags::default()
        })?;
        let client = plan.keepa_client()?;
        let prediction = CostModel::new().predict(&request);
        let what = request.describe();
        let shared = plan.ledger.trim() != "memory" && request.endpoint() != Endpoint::Token;
        let permit = match shared {
            true => Some(self.shared_permit(&plan, &client, prediction).await?),
            false => None,
        };
        tracing::debug!(request = %what, expected = prediction.expected, "calling Keepa");
        let result = client.send(&request).await;
        if let Some((shared, p)) = permit {
            let now = keepa::clock::Clock::now_ms(shared.gate().clock());
            let outcome = budget::Outcome::of_call(&result, i64::from(prediction.expected), now);
            p.settle_confirmed(outcome)
                .await
                .context("settling the shared budget's permit")?;
        }
        match result {
            Ok(response) => {
                let body: serde_json::Value = response
                    .json()
                    .with_context(|| format!("{what}: reading the response"))?;
                let text = if ctx.json {
                    serde_json::to_string(&body)?
                } else {
                    serde_json::to_string_pretty(&body)?
                };
                print_stdout(&text)?;
                eprintln!(
                    "{}",
                    cost_line(
                        ctx.json,
                        prediction,
                        &response.envelope,
                        response.received_at_ms
                    )
                );
                Ok(())
            }
            Err(err) => {
                if let Some(env) = err.envelope() {
                    let at = err.received_at_ms().unwrap_or_else(now_ms);
                    eprintln!("{}", cost_line(ctx.json, prediction, env, at));
                }
                Err(anyhow::Error::new(err).context(what))
            }
        }
    }
}

impl ApiArgs {
    /// A permit for one call from the key's shared budget (`plan.ledger`),
    /// on the server's clock.
    async fn shared_permit(
        &self,
        plan: &Plan,
        client: &keepa::Client,
        prediction: CostPrediction,
    ) -> anyhow::Result<(budget::shared::SharedBudget, budget::shared::OneOffPermit)> {
        use budget::redis_ledger::LedgerName;
        use budget::shared::{JobClass, SharedBudget, SharedOptions};
        let key = plan.key()?;
        let url = plan.ledger.as_str();
        let clock = crate::clock::server_clock(client, plan.server_time_scale).await?;
        let options = SharedOptions {
            clock: Some(clock),
            ..SharedOptions::default()
        };
        let sync: Box<dyn budget::gate::TokenSync> = Box::new(client.clone());
        let shared =
            SharedBudget::connect_with(url.trim(), LedgerName::for_key(&key), options, Some(sync))
                .await
                .context("connecting to the shared budget (--ledger)")?;
        let cost = budget::Prediction::new(
            i64::from(prediction.expected),
            i64::from(prediction.upper_bound),
        );
        let permit = shared
            .acquire_one(
                JobClass::Interactive {
                    max_delay: self.max_wait,
                },
                cost,
            )
            .await
            .context("waiting for the shared budget's permit")?;
        Ok((shared, permit))
    }
}

impl ProductArgs {
    fn request(&self) -> anyhow::Result<Request> {
        let mut req = ProductRequest::empty(self.domain)
            .add_asins(&self.asin)
            .add_codes(&self.code)
            .rating(self.rating)
            .buybox(self.buybox)
            .stock(self.stock)
            .only_live_offers(self.only_live_offers);
        if let Some(n) = self.offers {
            req = req.offers(n);
        }
        if let Some(d) = self.stats {
            req = req.stats(d);
        }
        if let Some(h) = self.history {
            req = req.history(h == 1);
        }
        if let Some(d) = self.days {
            req = req.days(d);
        }
        if let Some(u) = self.update {
            req = req.update(u);
        }
        Ok(req.build()?)
    }
}

impl DealsArgs {
    fn request(&self) -> anyhow::Result<Request> {
        let trimmed = self.selection.trim_start();
        let (text, source) = if trimmed.starts_with('{') {
            (self.selection.clone(), "--selection".to_string())
        } else {
            let path = Path::new(&self.selection);
            let text = std::fs::read_to_string(path).map_err(|e| {
                usage(format!(
                    "--selection {}: not a JSON object and not a readable file: {e}",
                    path.display()
                ))
            })?;
            (text, path.display().to_string())
        };
        let mut selection: DealSelection = serde_json::from_str(&text)
            .map_err(|e| usage(format!("invalid deal selection in {source}: {e}")))?;
        if let Some(page) = self.page {
            selection.page = page;
        }
        Ok(if self.get {
            selection.build_get()?
        } else {
            selection.build()?
        })
    }
}

/// Writes one document to stdout. A closed pipe (`| head`) is not an error.
fn print_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing to stdout"))
        }
        _ => Ok(()),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn show(v: Option<i64>) -> String {
    v.map_or_else(|| "?".to_string(), |v| v.to_string())
}

/// The stderr line: predicted, charged, tokens left, refill rate, next refill.
fn cost_line(json: bool, predicted: CostPrediction, env: &Envelope, received_at_ms: i64) -> String {
    // refillIn counts from when the answer was made; measure the time since
    // on the local clock only (never mix server and local clocks).
    // Saturating: the envelope holds whatever the server sent.
    let next_refill_ms = env.refill_in.map(|r| {
        r.saturating_sub(now_ms().saturating_sub(received_at_ms).max(0))
            .max(0)
    });
    if json {
        return json!({
            "predictedCost": predicted.expected,
            "predictedMax": predicted.upper_bound,
            "chargedCost": env.tokens_consumed,
            "tokensLeft": env.tokens_left,
            "refillRate": env.refill_rate,
            "nextRefillInMs": next_refill_ms,
        })
        .to_string();
    }
    format!(
        "cost: predicted {} (max {}), charged {}; tokens left {}, refill {}/min, next refill in {}",
        predicted.expected,
        predicted.upper_bound,
        show(env.tokens_consumed),
        show(env.tokens_left),
        show(env.refill_rate),
        next_refill_ms.map_or_else(
            || "?".to_string(),
            |ms| format!("{:.1}s", ms as f64 / 1000.0)
        ),
    )
}
