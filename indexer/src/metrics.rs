//! Counters and gauges the follower updates and `/metrics` shows (Prometheus text format).

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicI64, AtomicU64, Ordering},
};

/// The indexer's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// The follower's cursor.
    pub cursor: AtomicI64,
    /// The node's highest `seq`, as last seen.
    pub node_max_seq: AtomicI64,
    /// Messages stored (new rows) since start.
    pub rows_total: AtomicU64,
    /// Messages refetched and stored by reconcile since start.
    pub reconciled_total: AtomicU64,
    /// Log requests that failed since start.
    pub errors_total: AtomicU64,
    /// Reconcile passes completed since start.
    pub reconcile_passes: AtomicU64,
    /// The chain follower's counters (all zero when no chain is followed).
    pub chain: Arc<crate::chain::ChainMetrics>,
    rate: Mutex<Rate>,
}

#[derive(Debug, Default)]
struct Rate {
    at: Option<std::time::Instant>,
    rows: u64,
    per_sec: f64,
}

impl Metrics {
    /// Adds `n` stored rows and updates the rows-per-second estimate (over windows of at least
    /// five seconds).
    pub fn add_rows(&self, n: u64) {
        let total = self.rows_total.fetch_add(n, Ordering::Relaxed) + n;
        let Ok(mut rate) = self.rate.lock() else { return };
        let now = std::time::Instant::now();
        match rate.at {
            None => {
                rate.at = Some(now);
                rate.rows = total;
            }
            Some(at) if now.duration_since(at).as_secs_f64() >= 5.0 => {
                rate.per_sec = (total - rate.rows) as f64 / now.duration_since(at).as_secs_f64();
                rate.at = Some(now);
                rate.rows = total;
            }
            Some(_) => {}
        }
    }

    /// How far the follower is behind the node, in `seq`.
    pub fn lag(&self) -> i64 {
        (self.node_max_seq.load(Ordering::Relaxed) - self.cursor.load(Ordering::Relaxed)).max(0)
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut text = self.render_log();
        text.push_str(&self.chain.render());
        text
    }

    fn render_log(&self) -> String {
        let per_sec = self.rate.lock().map(|r| r.per_sec).unwrap_or_default();
        let g = |v: &AtomicI64| v.load(Ordering::Relaxed);
        let c = |v: &AtomicU64| v.load(Ordering::Relaxed);
        format!(
            "# HELP dchat_indexer_lag_seq How far the follower is behind the node's log, in seq.\n\
             # TYPE dchat_indexer_lag_seq gauge\n\
             dchat_indexer_lag_seq {}\n\
             # HELP dchat_indexer_cursor_seq The follower's position in the node's log.\n\
             # TYPE dchat_indexer_cursor_seq gauge\n\
             dchat_indexer_cursor_seq {}\n\
             # HELP dchat_indexer_node_max_seq The node's highest seq, as last seen.\n\
             # TYPE dchat_indexer_node_max_seq gauge\n\
             dchat_indexer_node_max_seq {}\n\
             # HELP dchat_indexer_rows_total Messages stored since start.\n\
             # TYPE dchat_indexer_rows_total counter\n\
             dchat_indexer_rows_total {}\n\
             # HELP dchat_indexer_rows_per_second Messages stored per second (recent window).\n\
             # TYPE dchat_indexer_rows_per_second gauge\n\
             dchat_indexer_rows_per_second {per_sec:.3}\n\
             # HELP dchat_indexer_reconciled_total Messages found missing and stored by reconcile.\n\
             # TYPE dchat_indexer_reconciled_total counter\n\
             dchat_indexer_reconciled_total {}\n\
             # HELP dchat_indexer_reconcile_passes_total Reconcile passes completed.\n\
             # TYPE dchat_indexer_reconcile_passes_total counter\n\
             dchat_indexer_reconcile_passes_total {}\n\
             # HELP dchat_indexer_source_errors_total Failed requests to the node.\n\
             # TYPE dchat_indexer_source_errors_total counter\n\
             dchat_indexer_source_errors_total {}\n",
            self.lag(),
            g(&self.cursor),
            g(&self.node_max_seq),
            c(&self.rows_total),
            c(&self.reconciled_total),
            c(&self.reconcile_passes),
            c(&self.errors_total),
        )
    }
}
