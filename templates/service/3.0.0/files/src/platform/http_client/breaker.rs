//! The circuit breaker of one dependency: a time-based window of outcomes, open at a failure
//! rate, then a few probes.
//!
//! Managed by the platform (component `http_client`).
//!
//! Hand-written: tower-resilience-circuitbreaker has the same settings but is tower-only (its
//! circuit is private, and reqwest-middleware's `Next<'_>` is not `'static`, so it cannot wrap
//! one attempt of the middleware chain), keeps one record per call in its window and takes an
//! async mutex twice per call; failsafe's time window is an average, not a window, and it builds
//! a second rand. This one keeps ten counters and takes one short std mutex per attempt.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets the window is divided into; outcomes leave the window one bucket at a time.
const BUCKETS: usize = 10;

/// Where a breaker stands (the `http_client_circuit_state` gauge: 0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through; outcomes are counted.
    Closed,
    /// Calls fail fast until the open time is over.
    Open,
    /// A few probes go through: their successes close the breaker, a failure opens it again.
    HalfOpen,
}

impl BreakerState {
    /// The gauge value: closed 0, open 1, half-open 2.
    pub fn gauge(self) -> f64 {
        match self {
            Self::Closed => 0.0,
            Self::Open => 1.0,
            Self::HalfOpen => 2.0,
        }
    }
}

/// Breaker settings (`[http_client.<name>]` keys `breaker_*`).
#[derive(Debug, Clone, Copy)]
pub struct BreakerSettings {
    pub window: Duration,
    pub min_calls: u32,
    /// Opens at this failure rate (0.0..=1.0) once `min_calls` are in the window.
    pub failure_rate: f64,
    pub open_for: Duration,
    /// Probes let through while half-open; this many successes close the breaker.
    pub half_open_probes: u32,
}

#[derive(Debug)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { in_flight: u32, succeeded: u32 },
}

#[derive(Debug)]
struct Inner {
    state: State,
    /// Bumped on every transition: a permit from an earlier state (a slow probe of the last
    /// half-open round, a call that started before the breaker opened) does not count in this one.
    generation: u64,
    /// Per bucket: (bucket number since `epoch`, successes, failures).
    buckets: [(u64, u32, u32); BUCKETS],
}

impl Inner {
    fn enter(&mut self, state: State) {
        self.state = state;
        self.generation += 1;
    }
}

/// One dependency's breaker. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Breaker {
    settings: BreakerSettings,
    epoch: Instant,
    inner: Mutex<Inner>,
}

/// What a [`Permit`] lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermitKind {
    /// A call while the breaker is closed.
    Call,
    /// One of the few probes of a half-open round.
    Probe,
}

/// Permission to make one call, from [`Breaker::try_acquire`], tied to the state (generation)
/// it was given in. Consume it with [`Permit::record`] (the outcome counts) or
/// [`Permit::release`] (it does not). Dropped unconsumed (the call's future was dropped: a
/// server timeout, a client that went away, a `select!`), a probe counts as a failed probe, so
/// its slot is never lost; a call counts as nothing.
#[derive(Debug)]
#[must_use = "record the outcome, or release the permit"]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    kind: PermitKind,
    generation: u64,
    done: bool,
}

impl Permit<'_> {
    pub fn kind(&self) -> PermitKind {
        self.kind
    }

    /// Records the outcome of the call; returns the state after it.
    pub fn record(self, ok: bool) -> BreakerState {
        self.record_at(ok, Instant::now())
    }

    pub fn record_at(mut self, ok: bool, now: Instant) -> BreakerState {
        self.done = true;
        self.breaker
            .record(self.kind, self.generation, Some(ok), now)
    }

    /// The call ended without saying anything about the dependency (e.g. the caller's total
    /// budget cut it short): a probe's slot is freed for another probe, nothing is counted.
    pub fn release(mut self) -> BreakerState {
        self.done = true;
        self.breaker
            .record(self.kind, self.generation, None, Instant::now())
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.done && self.kind == PermitKind::Probe {
            self.breaker
                .record(self.kind, self.generation, Some(false), Instant::now());
        }
    }
}

impl Breaker {
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            epoch: Instant::now(),
            inner: Mutex::new(Inner {
                state: State::Closed,
                generation: 0,
                buckets: [(u64::MAX, 0, 0); BUCKETS],
            }),
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state_at(Instant::now())
    }

    /// The state at `now` (an open breaker whose time is over reads half-open).
    pub fn state_at(&self, now: Instant) -> BreakerState {
        match self.lock().state {
            State::Closed => BreakerState::Closed,
            State::Open { until } if now < until => BreakerState::Open,
            State::Open { .. } | State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// May a call go out now? `None`: the breaker is open (or all probes are out); fail fast.
    pub fn try_acquire(&self) -> Option<Permit<'_>> {
        self.try_acquire_at(Instant::now())
    }

    pub fn try_acquire_at(&self, now: Instant) -> Option<Permit<'_>> {
        let mut inner = self.lock();
        let kind = match inner.state {
            State::Closed => PermitKind::Call,
            State::Open { until } if now < until => return None,
            State::Open { .. } => {
                inner.enter(State::HalfOpen {
                    in_flight: 1,
                    succeeded: 0,
                });
                PermitKind::Probe
            }
            State::HalfOpen {
                ref mut in_flight,
                succeeded,
            } => {
                if *in_flight + succeeded < self.settings.half_open_probes {
                    *in_flight += 1;
                    PermitKind::Probe
                } else {
                    return None;
                }
            }
        };
        Some(Permit {
            breaker: self,
            kind,
            generation: inner.generation,
            done: false,
        })
    }

    /// Records the outcome (`None`: no outcome, free the slot) of a call made under a permit of
    /// `kind` given in `generation`; returns the state after it.
    fn record(
        &self,
        kind: PermitKind,
        generation: u64,
        ok: Option<bool>,
        now: Instant,
    ) -> BreakerState {
        let settings = self.settings;
        let bucket_len = (settings.window / BUCKETS as u32).max(Duration::from_millis(1));
        let bucket =
            (now.saturating_duration_since(self.epoch).as_nanos() / bucket_len.as_nanos()) as u64;
        let mut inner = self.lock();
        // A call that started under another state (or an earlier round of this one) ended after
        // a transition: it does not count towards the new one.
        if generation == inner.generation {
            match (kind, &mut inner.state, ok) {
                (
                    PermitKind::Probe,
                    State::HalfOpen {
                        in_flight,
                        succeeded,
                    },
                    ok,
                ) => {
                    *in_flight = in_flight.saturating_sub(1);
                    match ok {
                        None => {}
                        Some(false) => inner.enter(State::Open {
                            until: now + settings.open_for,
                        }),
                        Some(true) => {
                            *succeeded += 1;
                            if *succeeded >= settings.half_open_probes {
                                inner.enter(State::Closed);
                                inner.buckets = [(u64::MAX, 0, 0); BUCKETS];
                            }
                        }
                    }
                }
                (PermitKind::Call, State::Closed, Some(ok)) => {
                    let slot = &mut inner.buckets[(bucket % BUCKETS as u64) as usize];
                    if slot.0 != bucket {
                        *slot = (bucket, 0, 0);
                    }
                    if ok {
                        slot.1 += 1;
                    } else {
                        slot.2 += 1;
                    }
                    let oldest = bucket.saturating_sub(BUCKETS as u64 - 1);
                    let (calls, failures) = inner
                        .buckets
                        .iter()
                        .filter(|(b, _, _)| *b != u64::MAX && *b >= oldest && *b <= bucket)
                        .fold((0u32, 0u32), |(c, f), (_, s, e)| (c + s + e, f + e));
                    if !ok
                        && calls >= settings.min_calls
                        && f64::from(failures) >= settings.failure_rate * f64::from(calls)
                    {
                        inner.enter(State::Open {
                            until: now + settings.open_for,
                        });
                    }
                }
                _ => {}
            }
        }
        drop(inner);
        self.state_at(now)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BreakerSettings {
        BreakerSettings {
            window: Duration::from_secs(30),
            min_calls: 20,
            failure_rate: 0.5,
            open_for: Duration::from_secs(5),
            half_open_probes: 3,
        }
    }

    /// A breaker opened by one failed call at `t0` (min_calls 1).
    fn opened(t0: Instant) -> Breaker {
        let breaker = Breaker::new(BreakerSettings {
            min_calls: 1,
            ..settings()
        });
        let permit = breaker.try_acquire_at(t0).unwrap();
        assert_eq!(permit.record_at(false, t0), BreakerState::Open);
        breaker
    }

    #[test]
    fn opens_at_half_failures_of_twenty_calls_then_probes_and_closes() {
        let breaker = Breaker::new(settings());
        let t0 = Instant::now();
        for i in 0..19 {
            let permit = breaker.try_acquire_at(t0).unwrap();
            assert_eq!(permit.kind(), PermitKind::Call);
            assert_eq!(permit.record_at(i % 2 == 0, t0), BreakerState::Closed);
        }
        // 20th call: 10 failures of 20.
        let permit = breaker.try_acquire_at(t0).unwrap();
        assert_eq!(permit.record_at(false, t0), BreakerState::Open);
        assert!(
            breaker
                .try_acquire_at(t0 + Duration::from_secs(4))
                .is_none()
        );
        let later = t0 + Duration::from_secs(5);
        let mut probes: Vec<_> = (0..4).map(|_| breaker.try_acquire_at(later)).collect();
        assert!(probes[3].is_none(), "three probes at most");
        let probes: Vec<_> = probes.drain(..3).map(Option::unwrap).collect();
        assert!(probes.iter().all(|p| p.kind() == PermitKind::Probe));
        let mut probes = probes.into_iter();
        for _ in 0..2 {
            assert_eq!(
                probes.next().unwrap().record_at(true, later),
                BreakerState::HalfOpen
            );
        }
        assert_eq!(
            probes.next().unwrap().record_at(true, later),
            BreakerState::Closed
        );
    }

    #[test]
    fn a_failed_probe_opens_again() {
        let t0 = Instant::now();
        let breaker = opened(t0);
        let later = t0 + Duration::from_secs(6);
        let probe = breaker.try_acquire_at(later).unwrap();
        assert_eq!(probe.kind(), PermitKind::Probe);
        assert_eq!(probe.record_at(false, later), BreakerState::Open);
    }

    #[test]
    fn a_dropped_probe_counts_as_a_failed_probe() {
        let t0 = Instant::now();
        let breaker = opened(t0);
        let round1 = t0 + Duration::from_secs(5);
        let probe = breaker.try_acquire_at(round1).unwrap();
        drop(probe);
        assert_eq!(breaker.state_at(round1), BreakerState::Open);
        assert!(breaker.try_acquire_at(round1).is_none());
    }

    #[test]
    fn dropped_probes_never_lock_the_breaker() {
        let breaker = Breaker::new(BreakerSettings {
            min_calls: 1,
            open_for: Duration::ZERO,
            ..settings()
        });
        breaker.try_acquire().unwrap().record(false);
        // More dropped probes than there are probe slots (a request timeout, a caller gone):
        // each frees its slot, so the breaker keeps probing.
        for _ in 0..5 {
            let probe = breaker.try_acquire().expect("the breaker keeps probing");
            assert_eq!(probe.kind(), PermitKind::Probe);
            drop(probe);
        }
        for _ in 0..2 {
            assert_eq!(
                breaker.try_acquire().unwrap().record(true),
                BreakerState::HalfOpen
            );
        }
        assert_eq!(
            breaker.try_acquire().unwrap().record(true),
            BreakerState::Closed
        );
    }

    #[test]
    fn a_released_probe_frees_its_slot_without_counting() {
        let t0 = Instant::now();
        let breaker = Breaker::new(BreakerSettings {
            min_calls: 1,
            half_open_probes: 1,
            open_for: Duration::ZERO,
            ..settings()
        });
        let permit = breaker.try_acquire_at(t0).unwrap();
        permit.record_at(false, t0);
        let probe = breaker.try_acquire().unwrap();
        assert!(breaker.try_acquire().is_none(), "the one probe is out");
        assert_eq!(probe.release(), BreakerState::HalfOpen);
        let probe = breaker.try_acquire().expect("its slot is free again");
        assert_eq!(probe.record(true), BreakerState::Closed);
    }

    #[test]
    fn a_slow_probe_of_an_earlier_round_does_not_count_in_the_next() {
        let t0 = Instant::now();
        let breaker = opened(t0);
        let round1 = t0 + Duration::from_secs(5);
        let slow = breaker.try_acquire_at(round1).unwrap();
        let failed = breaker.try_acquire_at(round1).unwrap();
        assert_eq!(failed.record_at(false, round1), BreakerState::Open);
        // Round 2 starts while the slow probe of round 1 is still out.
        let round2 = round1 + Duration::from_secs(5);
        let probes: Vec<_> = (0..3)
            .map(|_| breaker.try_acquire_at(round2).expect("three fresh slots"))
            .collect();
        assert!(breaker.try_acquire_at(round2).is_none());
        // The slow probe ends now: neither frees a slot of round 2 nor counts as its success...
        assert_eq!(slow.record_at(true, round2), BreakerState::HalfOpen);
        assert!(breaker.try_acquire_at(round2).is_none(), "no slot freed");
        let mut probes = probes.into_iter();
        probes.next().unwrap().record_at(true, round2);
        assert_eq!(
            probes.next().unwrap().record_at(true, round2),
            BreakerState::HalfOpen,
            "two successes of round 2, not three"
        );
        assert_eq!(
            probes.next().unwrap().record_at(true, round2),
            BreakerState::Closed
        );
    }

    #[test]
    fn a_stale_failure_does_not_reopen_a_closed_breaker() {
        let t0 = Instant::now();
        let breaker = Breaker::new(BreakerSettings {
            min_calls: 1,
            half_open_probes: 1,
            ..settings()
        });
        let slow = breaker.try_acquire_at(t0).unwrap();
        breaker.try_acquire_at(t0).unwrap().record_at(false, t0);
        let later = t0 + Duration::from_secs(5);
        let probe = breaker.try_acquire_at(later).unwrap();
        assert_eq!(probe.record_at(true, later), BreakerState::Closed);
        assert_eq!(
            slow.record_at(false, later),
            BreakerState::Closed,
            "a call from before the breaker opened"
        );
    }

    #[test]
    fn failures_older_than_the_window_do_not_count() {
        let breaker = Breaker::new(settings());
        let t0 = Instant::now();
        for _ in 0..19 {
            breaker.try_acquire_at(t0).unwrap().record_at(false, t0);
        }
        let later = t0 + Duration::from_secs(31);
        assert_eq!(
            breaker
                .try_acquire_at(later)
                .unwrap()
                .record_at(false, later),
            BreakerState::Closed
        );
    }
}
