//! Token-bucket rate limiting keyed by client IP or wallet address. The table is bounded: past
//! `max_keys` entries, buckets that have refilled (idle clients) are evicted first, and if none
//! have, new keys are refused rather than letting memory grow.

use std::{collections::HashMap, hash::Hash, sync::Mutex, time::Instant};

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A bounded table of token buckets.
#[derive(Debug)]
pub struct RateLimiter<K> {
    rate: f64,
    burst: f64,
    max_keys: usize,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    /// `rate` tokens per second, up to `burst`; at most `max_keys` keys tracked.
    pub fn new(rate: f64, burst: f64, max_keys: usize) -> Self {
        Self { rate, burst: burst.max(1.0), max_keys: max_keys.max(1), buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token for `key`, or says how many whole seconds to wait.
    pub fn check(&self, key: &K) -> Result<(), u64> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &K, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| refill(b, rate, burst, now) < burst);
            if buckets.len() >= self.max_keys {
                return Err(1);
            }
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket { tokens: self.burst, at: now });
        let tokens = refill(bucket, self.rate, self.burst, now);
        if tokens >= 1.0 {
            bucket.tokens = tokens - 1.0;
            Ok(())
        } else {
            let wait = if self.rate > 0.0 { ((1.0 - tokens) / self.rate).ceil() as u64 } else { 60 };
            Err(wait.max(1))
        }
    }
}

fn refill(b: &mut Bucket, rate: f64, burst: f64, now: Instant) -> f64 {
    let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
    b.tokens = (b.tokens + elapsed * rate).min(burst);
    b.at = now;
    b.tokens
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn burst_then_refill() {
        let rl = RateLimiter::new(1.0, 3.0, 10);
        let t = Instant::now();
        for _ in 0..3 {
            assert_eq!(rl.check_at(&"a", t), Ok(()));
        }
        assert_eq!(rl.check_at(&"a", t), Err(1));
        assert_eq!(rl.check_at(&"b", t), Ok(()), "keys are independent");
        assert_eq!(rl.check_at(&"a", t + Duration::from_millis(1100)), Ok(()));
    }

    #[test]
    fn table_stays_bounded() {
        let rl = RateLimiter::new(1.0, 2.0, 2);
        let t = Instant::now();
        assert!(rl.check_at(&1, t).is_ok());
        assert!(rl.check_at(&2, t).is_ok());
        assert!(rl.check_at(&3, t).is_err(), "no idle key to evict yet");
        assert!(rl.check_at(&3, t + Duration::from_secs(5)).is_ok(), "idle keys were evicted");
        assert!(rl.buckets.lock().expect("lock").len() <= 2);
    }
}
