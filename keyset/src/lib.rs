//! A fetched key set (JWKS) kept in memory: fetched on first use, fetched again when a token
//! names a key id the set lacks (the issuer rotated its keys), but never more often than once
//! per `min_refresh`, so tokens with made-up key ids cannot make a service hammer the issuer.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

/// Why a key set could not be had.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The issuer could not be reached or answered with an error status.
    #[error("{url} is unavailable: {reason}")]
    Unavailable {
        /// The key set's URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The answer is not a key set.
    #[error("{url} is not a usable key set: {reason}")]
    Invalid {
        /// The key set's URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

struct State<T> {
    current: Option<Arc<T>>,
    url: String,
    fetched_at: Option<Instant>,
}

/// A key set of type `T`, parsed from the JSON at a URL.
pub struct KeyCache<T> {
    http: reqwest::Client,
    min_refresh: Duration,
    parse: fn(&[u8]) -> Result<T, String>,
    state: tokio::sync::Mutex<State<T>>,
}

impl<T> std::fmt::Debug for KeyCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache").field("min_refresh", &self.min_refresh).finish_non_exhaustive()
    }
}

impl<T> KeyCache<T> {
    /// A cache fetching with `http`, at most once per `min_refresh`, parsing with `parse`.
    pub fn new(http: reqwest::Client, min_refresh: Duration, parse: fn(&[u8]) -> Result<T, String>) -> Self {
        Self {
            http,
            min_refresh,
            parse,
            state: tokio::sync::Mutex::new(State { current: None, url: String::new(), fetched_at: None }),
        }
    }

    /// The key set at `url`, fetched if none is held yet (or the URL changed).
    pub async fn get(&self, url: &str) -> Result<Arc<T>, FetchError> {
        let mut state = self.state.lock().await;
        if let Some(current) = &state.current
            && state.url == url
        {
            return Ok(current.clone());
        }
        self.fetch(&mut state, url).await
    }

    /// Fetches the key set again, unless the last fetch is more recent than `min_refresh`
    /// (then `None`: the caller's key id is unknown and stays so).
    pub async fn refresh(&self, url: &str) -> Result<Option<Arc<T>>, FetchError> {
        let mut state = self.state.lock().await;
        if state.url == url
            && let Some(at) = state.fetched_at
            && at.elapsed() < self.min_refresh
        {
            tracing::debug!(target: "dchat::keys", url, "key set fetched recently; not fetching again");
            return Ok(None);
        }
        self.fetch(&mut state, url).await.map(Some)
    }

    async fn fetch(&self, state: &mut State<T>, url: &str) -> Result<Arc<T>, FetchError> {
        let unavailable = |reason: String| FetchError::Unavailable { url: url.to_string(), reason };
        // A failed fetch counts too: an issuer that is down is not asked again at once.
        state.fetched_at = Some(Instant::now());
        state.url = url.to_string();
        let resp = self.http.get(url).send().await.map_err(|e| unavailable(e.without_url().to_string()))?;
        if !resp.status().is_success() {
            return Err(unavailable(format!("status {}", resp.status())));
        }
        let bytes = resp.bytes().await.map_err(|e| unavailable(e.without_url().to_string()))?;
        let parsed = (self.parse)(&bytes).map_err(|reason| FetchError::Invalid { url: url.to_string(), reason })?;
        let parsed = Arc::new(parsed);
        tracing::info!(target: "dchat::keys", url, "fetched key set");
        state.current = Some(parsed.clone());
        Ok(parsed)
    }
}
