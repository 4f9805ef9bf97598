//! The circuit breaker in front of the OFD: a pure state machine. It does no I/O and reads no
//! clock; every call gets `now`, so tests drive it with any timeline.
//!
//! closed → (N consecutive transient failures) → open → (open period elapsed) → half-open, which
//! admits one probe at a time → (M successes) → closed; a failed probe re-opens it. Only transient
//! failures count against the OFD; any answer from it — an acceptance or a rejection of the
//! document — shows it is up, and counts as a success.
//!
//! The open period grows with the outage (docs/contract.md §1a, §10 item 6): after a failed
//! probe the next one comes after half the outage so far, at least `open_initial` (1 s) and at
//! most `open_max` (60 s, the seed's policy and its upper bound). The OFD back after a 5 s
//! outage is found within about 2.5 s; a long outage still gets at most one probe a minute,
//! and the OFD sees probes thin out as the outage lasts. Closing resets it.

use crate::units;
use serde::{Deserialize, Serialize};
use tokio::time::{Duration, Instant};

/// `[breaker]`: the circuit breaker's policy (docs/contract.md §3, §1a).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerPolicy {
    pub failure_threshold: u32,
    /// The shortest open period (the first, after the breaker trips); after a failed probe the
    /// next comes after half the outage so far.
    #[serde(rename = "open_initial_secs", with = "units::secs")]
    pub open_initial: Duration,
    /// The longest open period: the seed's 60 s, the upper bound of the adaptive one.
    #[serde(rename = "open_secs", with = "units::secs")]
    pub open_max: Duration,
    pub half_open_successes: u32,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            failure_threshold: 5,
            open_initial: Duration::from_secs(1),
            open_max: Duration::from_secs(60),
            half_open_successes: 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

impl State {
    pub const ALL: [State; 3] = [State::Closed, State::Open, State::HalfOpen];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
        }
    }
}

/// A state change, to be logged as a `buffer_events` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: State,
    pub to: State,
}

/// The answer to "may I send now?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// Send; report the outcome with [`Breaker::record`].
    Granted,
    /// Do not send (not an attempt).
    Refused,
}

/// How a permitted call ended, as far as the breaker cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Timeout, connection error, 5xx, 429, 408, or a misconfiguration (401/403/404).
    TransientFailure,
}

#[derive(Debug, Clone)]
pub struct Breaker {
    policy: BreakerPolicy,
    state: State,
    consecutive_failures: u32,
    half_open_successes: u32,
    probe_in_flight: bool,
    opened_at: Option<Instant>,
    /// The first failure of the current run of failures: when the outage began.
    outage_since: Option<Instant>,
    /// How long the breaker stays open this time: half the outage so far, within
    /// `open_initial` ..= `open_max`.
    open_period: Duration,
    totals: Totals,
}

/// Lifetime counters, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub successes: u64,
    pub failures: u64,
    pub short_circuited: u64,
}

/// A read-only view for status and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub state: State,
    pub consecutive_failures: u32,
    pub opened_at: Option<Instant>,
    pub next_probe_at: Option<Instant>,
    /// The current open period (the next one, while closed).
    pub open_period: Duration,
    pub totals: Totals,
}

impl Breaker {
    pub fn new(policy: BreakerPolicy) -> Breaker {
        Breaker {
            policy,
            state: State::Closed,
            consecutive_failures: 0,
            half_open_successes: 0,
            probe_in_flight: false,
            opened_at: None,
            outage_since: None,
            open_period: policy.open_initial.min(policy.open_max),
            totals: Totals::default(),
        }
    }

    /// Half the outage so far, within the policy's bounds.
    fn period_at(&self, now: Instant) -> Duration {
        let outage = self
            .outage_since
            .map_or(Duration::ZERO, |since| now.saturating_duration_since(since));
        (outage / 2).clamp(self.policy.open_initial.min(self.policy.open_max), self.policy.open_max)
    }

    /// Moves open → half-open when the open period is over; returns the transition if any.
    pub fn poll(&mut self, now: Instant) -> Option<Transition> {
        match (self.state, self.opened_at) {
            (State::Open, Some(at)) if now >= at + self.open_period => {
                self.half_open_successes = 0;
                self.probe_in_flight = false;
                Some(self.set(State::HalfOpen))
            }
            _ => None,
        }
    }

    /// Asks to send one request now. `force` lets one probe through an open breaker (manual sync).
    pub fn try_acquire(&mut self, now: Instant, force: bool) -> (Permit, Option<Transition>) {
        let mut transition = self.poll(now);
        if force && self.state == State::Open {
            self.half_open_successes = 0;
            self.probe_in_flight = false;
            transition = Some(self.set(State::HalfOpen));
        }
        let permit = match self.state {
            State::Closed => Permit::Granted,
            State::HalfOpen if !self.probe_in_flight => {
                self.probe_in_flight = true;
                Permit::Granted
            }
            State::HalfOpen | State::Open => {
                self.totals.short_circuited += 1;
                Permit::Refused
            }
        };
        (permit, transition)
    }

    /// Reports how a granted call ended.
    pub fn record(&mut self, outcome: Outcome, now: Instant) -> Option<Transition> {
        let was_probe = self.state == State::HalfOpen;
        if was_probe {
            self.probe_in_flight = false;
        }
        match outcome {
            Outcome::Success => {
                self.totals.successes += 1;
                self.consecutive_failures = 0;
                self.outage_since = None;
                if was_probe {
                    self.half_open_successes += 1;
                    if self.half_open_successes >= self.policy.half_open_successes {
                        self.opened_at = None;
                        self.open_period = self.policy.open_initial.min(self.policy.open_max);
                        return Some(self.set(State::Closed));
                    }
                }
                None
            }
            Outcome::TransientFailure => {
                self.totals.failures += 1;
                self.consecutive_failures += 1;
                self.outage_since.get_or_insert(now);
                let trip = match self.state {
                    State::HalfOpen => {
                        // The OFD is still down: probe again after half the outage so far.
                        self.open_period = self.period_at(now);
                        true
                    }
                    State::Closed => {
                        self.open_period = self.period_at(now);
                        self.consecutive_failures >= self.policy.failure_threshold
                    }
                    State::Open => false,
                };
                if trip {
                    self.opened_at = Some(now);
                    return Some(self.set(State::Open));
                }
                None
            }
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            state: self.state,
            consecutive_failures: self.consecutive_failures,
            opened_at: self.opened_at,
            next_probe_at: match self.state {
                State::Open => self.opened_at.map(|at| at + self.open_period),
                _ => None,
            },
            open_period: self.open_period,
            totals: self.totals,
        }
    }

    fn set(&mut self, to: State) -> Transition {
        let from = self.state;
        self.state = to;
        Transition { from, to }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> (Breaker, Instant) {
        (Breaker::new(BreakerPolicy::default()), Instant::now())
    }

    fn fail(b: &mut Breaker, now: Instant) -> Option<Transition> {
        assert_eq!(b.try_acquire(now, false).0, Permit::Granted);
        b.record(Outcome::TransientFailure, now)
    }

    #[test]
    fn it_opens_after_five_consecutive_transient_failures() {
        let (mut b, t) = breaker();
        for _ in 0..4 {
            assert_eq!(fail(&mut b, t), None);
        }
        assert_eq!(
            fail(&mut b, t),
            Some(Transition {
                from: State::Closed,
                to: State::Open
            })
        );
        assert_eq!(b.try_acquire(t, false).0, Permit::Refused);
        assert_eq!(b.snapshot().totals.short_circuited, 1);
        assert_eq!(
            b.snapshot().next_probe_at,
            Some(t + Duration::from_secs(1)),
            "the first open period is the short one"
        );
    }

    #[test]
    fn only_consecutive_failures_open_it() {
        let (mut b, t) = breaker();
        for _ in 0..4 {
            fail(&mut b, t);
        }
        b.try_acquire(t, false);
        b.record(Outcome::Success, t);
        for _ in 0..4 {
            fail(&mut b, t);
        }
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.snapshot().consecutive_failures, 4);
        assert_eq!(
            b.snapshot().totals,
            Totals {
                successes: 1,
                failures: 8,
                short_circuited: 0
            }
        );
    }

    #[test]
    fn after_the_open_period_it_admits_one_probe_at_a_time_and_closes_after_two_successes() {
        let (mut b, t) = breaker();
        for _ in 0..5 {
            fail(&mut b, t);
        }
        let later = t + Duration::from_millis(999);
        assert_eq!(b.try_acquire(later, false).0, Permit::Refused);
        let t5 = t + Duration::from_secs(1);
        let (p, tr) = b.try_acquire(t5, false);
        assert_eq!(
            (p, tr),
            (
                Permit::Granted,
                Some(Transition {
                    from: State::Open,
                    to: State::HalfOpen
                })
            )
        );
        assert_eq!(
            b.try_acquire(t5, false).0,
            Permit::Refused,
            "second probe while the first is in flight"
        );
        assert_eq!(b.record(Outcome::Success, t5), None);
        assert_eq!(b.try_acquire(t5, false).0, Permit::Granted);
        assert_eq!(
            b.record(Outcome::Success, t5),
            Some(Transition {
                from: State::HalfOpen,
                to: State::Closed
            })
        );
        assert_eq!(b.try_acquire(t5, false).0, Permit::Granted);
    }

    /// Fails the probe that the breaker admits at `at`; returns the time of the next probe.
    fn fail_probe(b: &mut Breaker, at: Instant) -> Instant {
        assert_eq!(b.try_acquire(at, false).0, Permit::Granted, "a probe is due at {at:?}");
        assert_eq!(
            b.record(Outcome::TransientFailure, at),
            Some(Transition {
                from: State::HalfOpen,
                to: State::Open
            })
        );
        b.snapshot().next_probe_at.unwrap()
    }

    #[test]
    fn probes_come_after_half_the_outage_so_far_from_one_second_up_to_sixty() {
        let (mut b, t) = breaker();
        for _ in 0..5 {
            fail(&mut b, t);
        }
        let mut at = t + Duration::from_secs(1);
        let mut periods = Vec::new();
        for _ in 0..14 {
            let next = fail_probe(&mut b, at);
            assert_eq!(
                b.try_acquire(next - Duration::from_millis(1), false).0,
                Permit::Refused,
                "no probe before the period is over"
            );
            periods.push((next - at).as_millis());
            at = next;
        }
        // 1 s while the outage is young, then half of it: ×1.5 per failed probe, capped at 60 s.
        assert_eq!(
            periods,
            vec![
                1000, 1000, 1500, 2250, 3375, 5062, 7593, 11390, 17085, 25628, 38443, 57665, 60000, 60000
            ]
        );
        // An OFD back 5 s into an outage is probed within 2.5 s of its return.
        let (mut b, t) = breaker();
        for _ in 0..5 {
            fail(&mut b, t);
        }
        let mut probe = t + Duration::from_secs(1);
        while probe < t + Duration::from_secs(5) {
            probe = fail_probe(&mut b, probe);
        }
        assert!(
            probe - (t + Duration::from_secs(5)) <= Duration::from_millis(2500),
            "{:?}",
            probe - t
        );
    }

    #[test]
    fn closing_resets_the_open_period_to_the_short_one() {
        let (mut b, t) = breaker();
        for _ in 0..5 {
            fail(&mut b, t);
        }
        let next = fail_probe(&mut b, t + Duration::from_secs(1));
        let next = fail_probe(&mut b, next);
        for _ in 0..2 {
            assert_eq!(b.try_acquire(next, false).0, Permit::Granted);
            b.record(Outcome::Success, next);
        }
        assert_eq!(b.state(), State::Closed);
        for _ in 0..5 {
            fail(&mut b, next);
        }
        assert_eq!(b.snapshot().next_probe_at, Some(next + Duration::from_secs(1)));
    }

    #[test]
    fn force_lets_one_probe_through_an_open_breaker() {
        let (mut b, t) = breaker();
        for _ in 0..5 {
            fail(&mut b, t);
        }
        let (p, tr) = b.try_acquire(t, true);
        assert_eq!(p, Permit::Granted);
        assert_eq!(
            tr,
            Some(Transition {
                from: State::Open,
                to: State::HalfOpen
            })
        );
        assert_eq!(b.try_acquire(t, false).0, Permit::Refused);
    }
}
