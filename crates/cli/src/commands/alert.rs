//! `keepa-harvest alert test`: sends a sample alert to each `[[alert]]`
//! of the config and reports each result.

use std::fmt::Write as _;

use harvest::alerts::{send_test, HttpTransport};

use crate::context::{CommandFlags, Context};
use crate::exit::usage;

/// Flags of `alert`.
#[derive(Debug, clap::Args)]
pub(crate) struct AlertArgs {
    #[command(subcommand)]
    command: AlertCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AlertCommand {
    /// POST a sample alert (kind "test") to each `[[alert]]` of `--config`;
    /// exits 5 if one of them failed.
    Test,
}

impl AlertArgs {
    pub(crate) async fn run(&self, ctx: &Context) -> anyhow::Result<()> {
        let AlertCommand::Test = self.command;
        let plan = ctx.plan(CommandFlags::default())?;
        let alerts = &plan.run.alerts;
        if alerts.is_empty() {
            return Err(usage(
                "no [[alert]] in the configuration: pass --config FILE with at least one [[alert]] table (README \"Alerts\")",
            ));
        }
        let transport = HttpTransport::new()?;
        let results = send_test(alerts, &transport).await;
        let mut failed = 0;
        let mut text = String::new();
        let mut json = Vec::new();
        for ((name, result), a) in results.iter().zip(alerts) {
            let target = a.url.to_string();
            let format = a.format.as_str();
            match result {
                Ok(()) => {
                    let _ = writeln!(text, "{name} ({format}, {target}): delivered");
                }
                Err(e) => {
                    failed += 1;
                    let _ = writeln!(text, "{name} ({format}, {target}): FAILED: {e}");
                }
            }
            json.push(serde_json::json!({
                "alert": name,
                "format": format,
                "target": target,
                "ok": result.is_ok(),
                "error": result.as_ref().err().map(|e| e.to_string()),
            }));
        }
        if ctx.json {
            println!("{}", serde_json::json!({ "results": json }));
        } else {
            print!("{text}");
        }
        if failed > 0 {
            let first = results.iter().find_map(|(_, r)| r.clone().err());
            return Err(match first {
                Some(e) => anyhow::Error::new(e).context(format!(
                    "{failed} of {} alert targets failed",
                    results.len()
                )),
                None => usage("an alert target failed"),
            });
        }
        Ok(())
    }
}
