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
    /// Per bucket: (bucket number since `epoch`, successes, failures).
    buckets: [(u64, u32, u32); BUCKETS],
}

/// One dependency's breaker. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Breaker {
    settings: BreakerSettings,
    epoch: Instant,
    inner: Mutex<Inner>,
}

/// Permission to make one call, from [`Breaker::try_acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    Call,
    Probe,
}

impl Breaker {
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            epoch: Instant::now(),
            inner: Mutex::new(Inner {
                state: State::Closed,
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
    pub fn try_acquire(&self) -> Option<Permit> {
        self.try_acquire_at(Instant::now())
    }

    pub fn try_acquire_at(&self, now: Instant) -> Option<Permit> {
        let mut inner = self.lock();
        match inner.state {
            State::Closed => Some(Permit::Call),
            State::Open { until } if now < until => None,
            State::Open { .. } => {
                inner.state = State::HalfOpen {
                    in_flight: 1,
                    succeeded: 0,
                };
                Some(Permit::Probe)
            }
            State::HalfOpen {
                ref mut in_flight,
                succeeded,
            } => {
                if *in_flight + succeeded < self.settings.half_open_probes {
                    *in_flight += 1;
                    Some(Permit::Probe)
                } else {
                    None
                }
            }
        }
    }

    /// Records the outcome of a call made under `permit`; returns the state after it.
    pub fn record(&self, permit: Permit, ok: bool) -> BreakerState {
        self.record_at(permit, ok, Instant::now())
    }

    pub fn record_at(&self, permit: Permit, ok: bool, now: Instant) -> BreakerState {
        let settings = self.settings;
        let bucket_len = (settings.window / BUCKETS as u32).max(Duration::from_millis(1));
        let bucket =
            (now.saturating_duration_since(self.epoch).as_nanos() / bucket_len.as_nanos()) as u64;
        let mut inner = self.lock();
        match (permit, &mut inner.state) {
            (
                Permit::Probe,
                State::HalfOpen {
                    in_flight,
                    succeeded,
                },
            ) => {
                *in_flight = in_flight.saturating_sub(1);
                if !ok {
                    inner.state = State::Open {
                        until: now + settings.open_for,
                    };
                } else {
                    *succeeded += 1;
                    if *succeeded >= settings.half_open_probes {
                        inner.state = State::Closed;
                        inner.buckets = [(u64::MAX, 0, 0); BUCKETS];
                    }
                }
            }
            (Permit::Call, State::Closed) => {
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
                    inner.state = State::Open {
                        until: now + settings.open_for,
                    };
                }
            }
            // A call that started under another state ended after a transition: it does not
            // count towards the new one.
            _ => {}
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

    #[test]
    fn opens_at_half_failures_of_twenty_calls_then_probes_and_closes() {
        let breaker = Breaker::new(settings());
        let t0 = Instant::now();
        for i in 0..19 {
            let permit = breaker.try_acquire_at(t0).unwrap();
            assert_eq!(
                breaker.record_at(permit, i % 2 == 0, t0),
                BreakerState::Closed
            );
        }
        // 20th call: 10 failures of 20.
        let permit = breaker.try_acquire_at(t0).unwrap();
        assert_eq!(breaker.record_at(permit, false, t0), BreakerState::Open);
        assert_eq!(breaker.try_acquire_at(t0 + Duration::from_secs(4)), None);
        let later = t0 + Duration::from_secs(5);
        let probes: Vec<_> = (0..4).map(|_| breaker.try_acquire_at(later)).collect();
        assert_eq!(probes.iter().filter(|p| p.is_some()).count(), 3);
        for _ in 0..2 {
            assert_eq!(
                breaker.record_at(Permit::Probe, true, later),
                BreakerState::HalfOpen
            );
        }
        assert_eq!(
            breaker.record_at(Permit::Probe, true, later),
            BreakerState::Closed
        );
    }

    #[test]
    fn a_failed_probe_opens_again() {
        let breaker = Breaker::new(BreakerSettings {
            min_calls: 1,
            ..settings()
        });
        let t0 = Instant::now();
        breaker.try_acquire_at(t0).unwrap();
        assert_eq!(
            breaker.record_at(Permit::Call, false, t0),
            BreakerState::Open
        );
        let later = t0 + Duration::from_secs(6);
        assert_eq!(breaker.try_acquire_at(later), Some(Permit::Probe));
        assert_eq!(
            breaker.record_at(Permit::Probe, false, later),
            BreakerState::Open
        );
    }

    #[test]
    fn failures_older_than_the_window_do_not_count() {
        let breaker = Breaker::new(settings());
        let t0 = Instant::now();
        for _ in 0..19 {
            breaker.record_at(Permit::Call, false, t0);
        }
        let later = t0 + Duration::from_secs(31);
        assert_eq!(
            breaker.record_at(Permit::Call, false, later),
            BreakerState::Closed
        );
    }
}
