//! What the gate believes of the envelopes it hears: where the server's
//! clock stands against its own ([`ServerOffset`]), and whether an
//! implausible envelope is believed yet ([`Doubt`]). Pure, no IO.

use keepa::TokenSnapshot;

use crate::demand::Millis;

/// The offset of the server's clock from the gate's clock, measured from
/// envelopes, so that the gate waits in server time whatever the skew.
///
/// An envelope received at local time `l` with server `timestamp` `t`
/// bounds the offset from below by `t - l` (the answer was written before
/// it arrived). The estimate is the largest bound since the last reset:
/// it is never ahead of the server (skew never makes a request early),
/// and behind it by at most the fastest answer's latency (a wait is never
/// longer than that). A 429 says the gate was early after all (the
/// server's clock stepped back): it [resets](Self::reset) the estimate to
/// that answer's bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ServerOffset {
    best: Option<Millis>,
}

impl ServerOffset {
    /// Server time minus local time (0 before any envelope).
    pub(crate) fn offset(&self) -> Millis {
        self.best.unwrap_or(0)
    }

    /// Takes in an envelope stamped `server_ms`, received at `local_ms`.
    pub(crate) fn sample(&mut self, local_ms: Millis, server_ms: Millis) {
        let bound = server_ms.saturating_sub(local_ms);
        self.best = Some(self.best.map_or(bound, |b| b.max(bound)));
    }

    /// Starts again from one envelope (a 429's).
    pub(crate) fn reset(&mut self, local_ms: Millis, server_ms: Millis) {
        self.best = Some(server_ms.saturating_sub(local_ms));
    }

    /// `local_ms` in server time.
    pub(crate) fn to_server(self, local_ms: Millis) -> Millis {
        local_ms.saturating_add(self.offset())
    }

    /// `server_ms` in local time.
    pub(crate) fn to_local(self, server_ms: Millis) -> Millis {
        server_ms.saturating_sub(self.offset())
    }
}

/// What to do with an envelope after [`Doubt::screen`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Adopt it.
    Believe(TokenSnapshot),
    /// Hold it back until another answer confirms it.
    Hold,
    /// Confirmed: refill 0 and nothing left. The key was refused or has no
    /// plan; no request will ever be admitted.
    NoPlan,
}

/// One implausible envelope is not believed until a second answer
/// confirms it.
///
/// Implausible: a refill rate of 0 after a plan with refill (or as the
/// first envelope). Keepa sends it for a glitch, for a key it refuses (every
/// token field 0) and for a plan that tracking took down to 0. The first
/// such envelope is held back (its balance and rate are not adopted) and
/// the gate asks `/token` once to confirm; any later answer with refill 0
/// confirms it, any with refill resolves the doubt. A confirmed refill of
/// 0 with nothing left is [`Verdict::NoPlan`]; with tokens left it is
/// adopted (the policy then refuses what refill would have to pay).
#[derive(Debug, Clone, Default)]
pub(crate) struct Doubt {
    suspect: Option<TokenSnapshot>,
    /// A `/token` was asked to confirm the suspect.
    asked: bool,
    /// A refill of 0 was confirmed and nothing has said otherwise since.
    zero_believed: bool,
}

impl Doubt {
    /// The verdict on `s`.
    pub(crate) fn screen(&mut self, s: TokenSnapshot) -> Verdict {
        if s.refill_rate > 0 {
            self.suspect = None;
            self.zero_believed = false;
            return Verdict::Believe(s);
        }
        if self.zero_believed {
            return Verdict::Believe(s);
        }
        if self.suspect.take().is_none() {
            self.suspect = Some(s);
            self.asked = false;
            return Verdict::Hold;
        }
        self.zero_believed = true;
        if s.tokens_left <= 0 {
            Verdict::NoPlan
        } else {
            Verdict::Believe(s)
        }
    }

    /// Whether a held envelope waits for a `/token` not asked yet; marks it
    /// asked.
    pub(crate) fn ask(&mut self) -> bool {
        let want = self.suspect.is_some() && !self.asked;
        self.asked |= want;
        want
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(ts: i64, left: i64, rate: i64) -> TokenSnapshot {
        TokenSnapshot {
            timestamp_ms: ts,
            tokens_left: left,
            refill_in_ms: 0,
            refill_rate: rate,
        }
    }

    #[test]
    fn the_offset_is_the_largest_lower_bound_and_a_429_resets_it() {
        let mut o = ServerOffset::default();
        assert_eq!(o.offset(), 0);
        // The server is 30 s behind; answers took 5 ms and 200 ms.
        o.sample(1_000_000, 970_000 - 200);
        o.sample(2_000_000, 1_970_000 - 5);
        o.sample(3_000_000, 2_970_000 - 900);
        assert_eq!(o.offset(), -30_005);
        assert_eq!(o.to_server(2_000_000), 1_969_995);
        assert_eq!(o.to_local(1_969_995), 2_000_000);
        // Its clock stepped back 10 s more: the next 429 follows it.
        o.sample(4_000_000, 3_960_000);
        assert_eq!(o.offset(), -30_005);
        o.reset(4_000_000, 3_960_000);
        assert_eq!(o.offset(), -40_000);
        // Absurd timestamps saturate instead of overflowing.
        o.sample(i64::MIN, i64::MAX);
        assert_eq!(o.offset(), i64::MAX);
    }

    #[test]
    fn one_refill_of_zero_is_held_until_confirmed() {
        let mut d = Doubt::default();
        assert_eq!(d.screen(snap(1, 50, 20)), Verdict::Believe(snap(1, 50, 20)));
        // A glitch: held, asked once, and a refill dismisses it.
        assert_eq!(d.screen(snap(2, 50, 0)), Verdict::Hold);
        assert!(d.ask());
        assert!(!d.ask());
        assert_eq!(d.screen(snap(3, 49, 20)), Verdict::Believe(snap(3, 49, 20)));
        assert!(!d.ask());
        // Confirmed with tokens left: adopted, and so are the next.
        assert_eq!(d.screen(snap(4, 40, 0)), Verdict::Hold);
        assert_eq!(d.screen(snap(5, 40, 0)), Verdict::Believe(snap(5, 40, 0)));
        assert_eq!(d.screen(snap(6, 30, 0)), Verdict::Believe(snap(6, 30, 0)));
    }

    #[test]
    fn a_confirmed_refill_of_zero_with_nothing_left_is_no_plan() {
        let mut d = Doubt::default();
        // The bad-key envelope: every token field 0, as the first answer.
        assert_eq!(d.screen(snap(0, 0, 0)), Verdict::Hold);
        assert_eq!(d.screen(snap(0, 0, 0)), Verdict::NoPlan);
    }
}
