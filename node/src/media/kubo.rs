//! A small client of the Kubo RPC API (`/api/v0/*`, every call a POST): what the node needs to
//! pin media in an IPFS daemon. It works with Kubo and with js-ipfs, whose replies differ in
//! small ways (`Size` in the `add` reply is a string in Kubo, a number in js-ipfs).
//!
//! `ipfs-api-backend-hyper` is not used: its last release no longer resolves (a yanked
//! transitive dependency), it brings a second hyper, and it cannot parse js-ipfs' `add` reply.

use std::{path::Path, time::Duration};

use serde::Deserialize;

use super::unixfs::Cid;

/// What a call to the daemon can fail with.
#[derive(Debug, thiserror::Error)]
pub enum KuboError {
    /// The daemon could not be reached or the transfer broke.
    #[error("IPFS API unreachable: {0}")]
    Http(#[from] reqwest::Error),
    /// The daemon answered with an error.
    #[error("IPFS API error ({status}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The daemon's message.
        message: String,
    },
    /// The reply did not have the expected shape.
    #[error("unexpected IPFS API reply: {0}")]
    Reply(String),
    /// Reading the file to add failed.
    #[error("reading the file to add: {0}")]
    Io(#[from] std::io::Error),
}

/// One line of the `add` reply.
#[derive(Debug, Deserialize)]
struct AddLine {
    #[serde(rename = "Hash")]
    hash: Option<String>,
    #[serde(rename = "Size", default)]
    size: Option<serde_json::Value>,
}

/// The daemon's identity (`/api/v0/id`).
#[derive(Debug, Clone, Deserialize)]
pub struct Identity {
    /// Peer id.
    #[serde(rename = "ID")]
    pub id: String,
    /// Implementation and version, e.g. `kubo/0.29.0` or `js-ipfs/0.18.1`.
    #[serde(rename = "AgentVersion", default)]
    pub agent_version: String,
}

/// A file the daemon stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    /// Its root CID.
    pub cid: String,
    /// The daemon's `Size` (the DAG's cumulative size), when it sent one.
    pub size: Option<u64>,
}

/// A Kubo RPC API client.
#[derive(Debug, Clone)]
pub struct Kubo {
    http: reqwest::Client,
    base: String,
    timeout: Duration,
}

impl Kubo {
    /// A client of the API at `base` (e.g. `http://127.0.0.1:5001`). `timeout` bounds each call
    /// that does not stream a file.
    pub fn new(base: &str, timeout: Duration) -> Self {
        Self { http: reqwest::Client::new(), base: base.trim_end_matches('/').to_string(), timeout }
    }

    /// The API's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, cmd: &str) -> String {
        format!("{}/api/v0/{cmd}", self.base)
    }

    async fn call(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, KuboError> {
        let resp = req.send().await?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        // Kubo: {"Message": "...", "Code": 0, "Type": "error"}; js-ipfs the same.
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["Message"].as_str().map(str::to_string))
            .unwrap_or(text);
        Err(KuboError::Api { status, message })
    }

    async fn json<T: serde::de::DeserializeOwned>(&self, cmd: &str, args: &[(&str, &str)]) -> Result<T, KuboError> {
        let resp = self.call(self.http.post(self.url(cmd)).query(args).timeout(self.timeout)).await?;
        let bytes = resp.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| KuboError::Reply(format!("{cmd}: {e}")))
    }

    /// `id`: the daemon's identity (also a reachability check).
    pub async fn id(&self) -> Result<Identity, KuboError> {
        self.json("id", &[]).await
    }

    /// `add`: streams a file to the daemon as a multipart body, with the settings whose CIDs the
    /// embedded store reproduces (CIDv0, 256 KiB chunks, balanced, no raw leaves). Not pinned
    /// when `pin` is false (pin it with [`Kubo::pin_add`]).
    pub async fn add_file(&self, path: &Path, pin: bool) -> Result<Added, KuboError> {
        let file = tokio::fs::File::open(path).await?;
        let len = file.metadata().await?.len();
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024));
        let part = reqwest::multipart::Part::stream_with_length(body, len)
            .file_name("blob")
            .mime_str("application/octet-stream")?;
        let form = reqwest::multipart::Form::new().part("file", part);
        let query = [
            ("cid-version", "0"),
            ("raw-leaves", "false"),
            ("chunker", "size-262144"),
            ("trickle", "false"),
            ("pin", if pin { "true" } else { "false" }),
            ("progress", "false"),
        ];
        let resp = self.call(self.http.post(self.url("add")).query(&query).multipart(form)).await?;
        let text = resp.text().await?;
        // One JSON object per line; with a single file and no wrapping, the last names it.
        let line = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| serde_json::from_str::<AddLine>(l).ok())
            .rfind(|l| l.hash.is_some())
            .ok_or_else(|| KuboError::Reply(format!("add: no Hash in {text:?}")))?;
        let size = line.size.and_then(|s| match s {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        });
        Ok(Added { cid: line.hash.unwrap_or_default(), size })
    }

    /// `cat`: the file's bytes, streamed; `offset` and `length` select a part.
    pub async fn cat(
        &self,
        cid: &Cid,
        offset: Option<u64>,
        length: Option<u64>,
    ) -> Result<reqwest::Response, KuboError> {
        let mut args = vec![("arg", cid.to_string())];
        if let Some(o) = offset {
            args.push(("offset", o.to_string()));
        }
        if let Some(l) = length {
            args.push(("length", l.to_string()));
        }
        self.call(self.http.post(self.url("cat")).query(&args)).await
    }

    /// `block/get`: one raw block, or `None` when the daemon does not have it. Asked offline, so
    /// a missing block is an error at once rather than a search of the network.
    pub async fn block_get(&self, cid: &Cid) -> Result<Option<Vec<u8>>, KuboError> {
        let cid = cid.to_string();
        let req = self.http.post(self.url("block/get")).query(&[("arg", cid.as_str()), ("offline", "true")]);
        match self.call(req.timeout(self.timeout)).await {
            Ok(resp) => Ok(Some(resp.bytes().await?.to_vec())),
            Err(KuboError::Api { status, message }) if is_not_found(&message) => {
                tracing::debug!(target: "node::media", %cid, status, %message, "block not in the IPFS daemon");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// `pin/add` (recursive).
    pub async fn pin_add(&self, cid: &Cid) -> Result<(), KuboError> {
        let cid = cid.to_string();
        let _: serde_json::Value = self.json("pin/add", &[("arg", cid.as_str()), ("recursive", "true")]).await?;
        Ok(())
    }

    /// `pin/rm`; a CID that is not pinned is not an error.
    pub async fn pin_rm(&self, cid: &Cid) -> Result<(), KuboError> {
        let cid = cid.to_string();
        match self.json::<serde_json::Value>("pin/rm", &[("arg", cid.as_str()), ("recursive", "true")]).await {
            Ok(_) => Ok(()),
            Err(KuboError::Api { message, .. }) if message.contains("not pinned") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `pin/ls` of one CID: whether it is pinned recursively.
    pub async fn pin_ls(&self, cid: &Cid) -> Result<bool, KuboError> {
        let cid = cid.to_string();
        match self.json::<serde_json::Value>("pin/ls", &[("arg", cid.as_str()), ("type", "recursive")]).await {
            Ok(v) => Ok(v["Keys"].get(&cid).is_some()),
            Err(KuboError::Api { message, .. }) if message.contains("not pinned") => Ok(false),
            Err(e) => Err(e),
        }
    }
}

fn is_not_found(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("not found") || m.contains("blockservice") || m.contains("offline") || m.contains("not available")
}
