//! Latency and delivery accounting shared by every client of a run.
//!
//! A run is a series of steps, each sending `count` messages at `rate` per second from its start.
//! Message `seq` of a step is due at `start + (seq - first) / rate`; its latency is from that
//! due time to its arrival at a client (so a sender falling behind shows as latency, not as a
//! lower offered rate). Clients buffer arrivals and hand them over in batches.

use std::{
    sync::{
        Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;

/// One step of the ramp.
#[derive(Debug)]
pub(crate) struct Step {
    /// Messages per second sent.
    pub(crate) rate: u64,
    /// First sequence number.
    pub(crate) first: u64,
    /// Messages sent.
    pub(crate) count: u64,
    /// Set when sending starts.
    pub(crate) start: OnceLock<Instant>,
    /// How long sending lasts.
    pub(crate) secs: f64,
}

impl Step {
    /// When message `seq` of this step is due.
    pub(crate) fn due(&self, start: Instant, seq: u64) -> Instant {
        start + Duration::from_secs_f64((seq - self.first) as f64 / self.rate as f64)
    }
}

#[derive(Debug)]
struct Acc {
    /// Latency (µs) per step, by the step the message was sent in.
    hist: Vec<Histogram<u64>>,
    /// Deliveries per step, by the step the message was sent in.
    delivered: Vec<u64>,
    /// Deliveries that arrived during each step's sending window.
    in_window: Vec<u64>,
}

/// Shared accounting.
#[derive(Debug)]
pub(crate) struct Recorder {
    pub(crate) steps: Vec<Step>,
    acc: Mutex<Acc>,
    disconnected: AtomicU64,
}

impl Recorder {
    /// Steps at `rates`, each `secs` long.
    pub(crate) fn new(rates: &[u64], secs: f64) -> Self {
        let mut first = 0;
        let steps: Vec<Step> = rates
            .iter()
            .map(|&rate| {
                let count = (rate as f64 * secs).round() as u64;
                let s = Step { rate, first, count, start: OnceLock::new(), secs };
                first += count;
                s
            })
            .collect();
        let n = steps.len();
        let hist = (0..n).map(|_| Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")).collect();
        Self {
            steps,
            acc: Mutex::new(Acc { hist, delivered: vec![0; n], in_window: vec![0; n] }),
            disconnected: AtomicU64::new(0),
        }
    }

    /// The step message `seq` belongs to.
    pub(crate) fn step_of(&self, seq: u64) -> Option<usize> {
        let i = self.steps.partition_point(|s| s.first <= seq).checked_sub(1)?;
        (seq < self.steps[i].first + self.steps[i].count).then_some(i)
    }

    /// Takes a client's buffered arrivals `(seq, when)`.
    pub(crate) fn flush(&self, arrivals: &mut Vec<(u64, Instant)>) {
        if arrivals.is_empty() {
            return;
        }
        let mut acc = self.acc.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (seq, at) in arrivals.drain(..) {
            let Some(i) = self.step_of(seq) else { continue };
            let step = &self.steps[i];
            let Some(&start) = step.start.get() else { continue };
            let us = at.saturating_duration_since(step.due(start, seq)).as_micros().max(1);
            let _ = acc.hist[i].record(u64::try_from(us).unwrap_or(u64::MAX));
            acc.delivered[i] += 1;
            // The sending window this arrival fell in, if any.
            if let Some(w) = self
                .steps
                .iter()
                .position(|s| s.start.get().is_some_and(|&t| at >= t && at < t + Duration::from_secs_f64(s.secs)))
            {
                acc.in_window[w] += 1;
            }
        }
    }

    /// A client lost its connection during the run.
    pub(crate) fn disconnected(&self) {
        self.disconnected.fetch_add(1, Ordering::Relaxed);
    }

    /// Clients that lost their connection.
    pub(crate) fn disconnects(&self) -> u64 {
        self.disconnected.load(Ordering::Relaxed)
    }

    /// Deliveries of step `i`'s messages so far.
    pub(crate) fn delivered(&self, i: usize) -> u64 {
        self.acc.lock().unwrap_or_else(std::sync::PoisonError::into_inner).delivered[i]
    }

    /// Latency histogram (µs) and arrivals inside the sending window of step `i`.
    pub(crate) fn result(&self, i: usize) -> (Histogram<u64>, u64) {
        let acc = self.acc.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        (acc.hist[i].clone(), acc.in_window[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_map_to_their_step_and_due_time() {
        let r = Recorder::new(&[10, 100], 2.0);
        assert_eq!((r.steps[0].count, r.steps[1].first, r.steps[1].count), (20, 20, 200));
        assert_eq!(r.step_of(0), Some(0));
        assert_eq!(r.step_of(19), Some(0));
        assert_eq!(r.step_of(20), Some(1));
        assert_eq!(r.step_of(220), None);
        let t = Instant::now();
        assert_eq!(r.steps[1].due(t, 30), t + Duration::from_millis(100));
    }
}
