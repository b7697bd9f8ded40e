//! Media: files uploaded into rooms, kept on IPFS.
//!
//! - [`unixfs`]: the dag-pb / UnixFS encoding and the balanced layout Kubo uses by default, so a
//!   file gets the same CIDv0 here as from `ipfs add`.
//! - [`embedded`]: blocks in files under `data_dir/media` (no IPFS API configured).
//! - [`kubo`]: a small Kubo RPC API client (`media.ipfs_api` configured).
//! - [`db`]: which rooms reference which file, who uploaded it and how big it is (quotas).
//! - [`api`]: `POST /v1/media`, `GET /v1/media/{cid}`, `DELETE /v1/media/{cid}`.
//!
//! An upload streams through a [`unixfs::DagBuilder`] in a blocking task, so the node computes
//! the CID itself whichever backend keeps the bytes and never holds more than a few chunks of a
//! file in memory. Reads walk the DAG from the root, re-hash every block against the CID that
//! names it, and stop with [`MediaError::Corrupt`] before serving a byte that does not match.

pub mod api;
pub mod db;
pub mod embedded;
pub mod kubo;
pub mod unixfs;

use std::{
    future::Future,
    path::{Path, PathBuf},
    pin::Pin,
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::sync::Mutex;

use crate::config::MediaConfig;
use embedded::{BlockStore, DirSink};
use kubo::Kubo;
use unixfs::{Cid, DagBuilder, Discard, FileNode};

/// A boxed future, for the object-safe [`Backend`] trait.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What can go wrong with media.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The upload is over the size limit.
    #[error("file is over the limit of {limit} bytes")]
    TooLarge {
        /// The limit, bytes.
        limit: u64,
    },
    /// The request body broke off.
    #[error("reading the upload failed: {0}")]
    Body(String),
    /// Stored content does not match its CID (or is not a UnixFS file).
    #[error("stored content does not match its CID: {0}")]
    Corrupt(String),
    /// The IPFS daemon failed or is unreachable.
    #[error("IPFS: {0}")]
    Ipfs(#[from] kubo::KuboError),
    /// The IPFS daemon stored the file under another CID than the node computed.
    #[error("the IPFS daemon returned CID {theirs} for a file whose CID is {ours}")]
    CidMismatch {
        /// What the node computed.
        ours: Cid,
        /// What the daemon said.
        theirs: String,
    },
    /// Local file system.
    #[error("media storage: {0}")]
    Io(#[from] std::io::Error),
}

/// An upload that has streamed in: its CID and size, and its bytes in a staging directory that
/// is removed when this is dropped.
#[derive(Debug)]
pub struct Staged {
    /// Root CID.
    pub cid: Cid,
    /// File size, bytes.
    pub size: u64,
    dir: PathBuf,
}

impl Staged {
    /// Where the embedded store's staged blocks are.
    fn blocks(&self) -> PathBuf {
        self.dir.join("blocks")
    }

    /// Where the raw file is (kept for an IPFS daemon).
    fn file(&self) -> PathBuf {
        self.dir.join("file")
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Removes a staging directory when an upload is abandoned.
struct StagingGuard(Option<PathBuf>);

impl Drop for StagingGuard {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Where pinned media lives. Both backends hand out raw blocks; [`Media::read`] checks them.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// Whether uploads should be staged as blocks (the embedded store) rather than as the raw
    /// file (an IPFS daemon re-imports the file).
    fn keeps_blocks(&self) -> bool;

    /// Makes a staged upload available, without pinning it: the slow part, outside the pin lock.
    fn store<'a>(&'a self, upload: &'a Staged) -> BoxFuture<'a, Result<(), MediaError>>;

    /// Pins a file, from its staged upload when there is one.
    fn pin<'a>(&'a self, cid: &'a Cid, upload: Option<&'a Staged>) -> BoxFuture<'a, Result<(), MediaError>>;

    /// Unpins a file.
    fn unpin<'a>(&'a self, cid: &'a Cid) -> BoxFuture<'a, Result<(), MediaError>>;

    /// Whether a file is pinned.
    fn is_pinned<'a>(&'a self, cid: &'a Cid) -> BoxFuture<'a, Result<bool, MediaError>>;

    /// One block of the file `root`, as stored (unverified); `None` when missing.
    fn block<'a>(&'a self, root: &'a Cid, cid: &'a Cid) -> BoxFuture<'a, Result<Option<Vec<u8>>, MediaError>>;
}

impl Backend for BlockStore {
    fn keeps_blocks(&self) -> bool {
        true
    }

    fn store<'a>(&'a self, _: &'a Staged) -> BoxFuture<'a, Result<(), MediaError>> {
        Box::pin(async { Ok(()) })
    }

    fn pin<'a>(&'a self, cid: &'a Cid, upload: Option<&'a Staged>) -> BoxFuture<'a, Result<(), MediaError>> {
        let store = self.clone();
        let cid = *cid;
        let blocks = upload.map(Staged::blocks);
        Box::pin(async move {
            blocking(move || match blocks {
                Some(b) => store.pin_staged(&cid, &b),
                None if store.is_pinned(&cid) => Ok(()),
                None => Err(std::io::Error::other(format!("{cid} has no blocks here to pin"))),
            })
            .await
        })
    }

    fn unpin<'a>(&'a self, cid: &'a Cid) -> BoxFuture<'a, Result<(), MediaError>> {
        let store = self.clone();
        let cid = *cid;
        Box::pin(async move { blocking(move || store.unpin(&cid)).await })
    }

    fn is_pinned<'a>(&'a self, cid: &'a Cid) -> BoxFuture<'a, Result<bool, MediaError>> {
        let pinned = BlockStore::is_pinned(self, cid);
        Box::pin(async move { Ok(pinned) })
    }

    fn block<'a>(&'a self, root: &'a Cid, cid: &'a Cid) -> BoxFuture<'a, Result<Option<Vec<u8>>, MediaError>> {
        let store = self.clone();
        let (root, cid) = (*root, *cid);
        Box::pin(async move { blocking(move || store.block(&root, &cid)).await })
    }
}

impl Backend for Kubo {
    fn keeps_blocks(&self) -> bool {
        false
    }

    fn store<'a>(&'a self, upload: &'a Staged) -> BoxFuture<'a, Result<(), MediaError>> {
        Box::pin(async move {
            let added = self.add_file(&upload.file(), false).await?;
            if added.cid != upload.cid.to_string() {
                return Err(MediaError::CidMismatch { ours: upload.cid, theirs: added.cid });
            }
            Ok(())
        })
    }

    fn pin<'a>(&'a self, cid: &'a Cid, _: Option<&'a Staged>) -> BoxFuture<'a, Result<(), MediaError>> {
        Box::pin(async move { Ok(self.pin_add(cid).await?) })
    }

    fn unpin<'a>(&'a self, cid: &'a Cid) -> BoxFuture<'a, Result<(), MediaError>> {
        Box::pin(async move { Ok(self.pin_rm(cid).await?) })
    }

    fn is_pinned<'a>(&'a self, cid: &'a Cid) -> BoxFuture<'a, Result<bool, MediaError>> {
        Box::pin(async move { Ok(self.pin_ls(cid).await?) })
    }

    fn block<'a>(&'a self, _root: &'a Cid, cid: &'a Cid) -> BoxFuture<'a, Result<Option<Vec<u8>>, MediaError>> {
        Box::pin(async move { Ok(self.block_get(cid).await?) })
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> std::io::Result<T> + Send + 'static) -> Result<T, MediaError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| MediaError::Io(std::io::Error::other(e)))?.map_err(MediaError::Io)
}

/// The node's media service: a backend, a staging area and the lock that keeps pins and the
/// database's references in step.
#[derive(Debug, Clone)]
pub struct Media {
    inner: Arc<MediaInner>,
}

#[derive(Debug)]
struct MediaInner {
    backend: Arc<dyn Backend>,
    staging: PathBuf,
    config: MediaConfig,
    /// Held while a pin and the references that justify it change together.
    pins: Mutex<()>,
    embedded: Option<BlockStore>,
}

impl Media {
    /// Opens the media store: the IPFS daemon at `media.ipfs_api` (checked with `/api/v0/id`)
    /// or the embedded store under `data_dir/media`.
    pub async fn open(config: &MediaConfig, data_dir: &Path) -> eyre::Result<Self> {
        use eyre::WrapErr;
        let dir = data_dir.join("media");
        let (backend, embedded): (Arc<dyn Backend>, _) = match &config.ipfs_api {
            Some(api) => {
                let kubo = Kubo::new(api, Duration::from_secs(config.ipfs_timeout_secs.max(1)));
                let id = kubo.id().await.wrap_err_with(|| format!("the IPFS API at {api} does not answer"))?;
                tracing::info!(target: "node::media", api = %api, agent = %id.agent_version, "media pinned in IPFS");
                let tmp = dir.join("tmp");
                if tmp.exists() {
                    std::fs::remove_dir_all(&tmp).wrap_err_with(|| format!("clearing {}", tmp.display()))?;
                }
                std::fs::create_dir_all(&tmp).wrap_err_with(|| format!("creating {}", tmp.display()))?;
                (Arc::new(kubo), None)
            }
            None => {
                let store =
                    BlockStore::open(&dir).wrap_err_with(|| format!("opening the media store in {}", dir.display()))?;
                (Arc::new(store.clone()), Some(store))
            }
        };
        Ok(Self {
            inner: Arc::new(MediaInner {
                backend,
                staging: dir.join("tmp"),
                config: config.clone(),
                pins: Mutex::new(()),
                embedded,
            }),
        })
    }

    /// Configuration.
    pub fn config(&self) -> &MediaConfig {
        &self.inner.config
    }

    /// The backend.
    pub fn backend(&self) -> &dyn Backend {
        self.inner.backend.as_ref()
    }

    /// The embedded store, when media is not pinned in an IPFS daemon.
    pub fn embedded(&self) -> Option<&BlockStore> {
        self.inner.embedded.as_ref()
    }

    /// Takes the pin lock.
    pub(crate) async fn lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.inner.pins.lock().await
    }

    /// Streams an upload into a staging directory while computing its CID. Stops reading, with
    /// [`MediaError::TooLarge`], as soon as more than `limit` bytes arrived.
    pub async fn import<S, E>(&self, mut body: S, limit: u64) -> Result<Staged, MediaError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let dir = self.inner.staging.join(hex::encode(rand::random::<[u8; 12]>()));
        let mut guard = StagingGuard(Some(dir.clone()));
        let keep_blocks = self.inner.backend.keeps_blocks();
        // A few frames in flight: the network never runs far ahead of the disk.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(8);
        let worker_dir = dir.clone();
        let worker = tokio::task::spawn_blocking(move || -> std::io::Result<(unixfs::Link, u64)> {
            std::fs::create_dir_all(&worker_dir)?;
            if keep_blocks {
                let mut dag = DagBuilder::new(DirSink::new(worker_dir.join("blocks"))?);
                while let Some(bytes) = rx.blocking_recv() {
                    dag.push(&bytes)?;
                }
                let size = dag.size();
                Ok((dag.finish()?.0, size))
            } else {
                use std::io::Write;
                let mut file =
                    std::io::BufWriter::with_capacity(256 * 1024, std::fs::File::create(worker_dir.join("file"))?);
                let mut dag = DagBuilder::new(Discard);
                while let Some(bytes) = rx.blocking_recv() {
                    dag.push(&bytes)?;
                    file.write_all(&bytes)?;
                }
                file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                let size = dag.size();
                Ok((dag.finish()?.0, size))
            }
        });
        let mut total: u64 = 0;
        let mut failure = None;
        while let Some(frame) = body.next().await {
            let frame = match frame {
                Ok(f) => f,
                Err(e) => {
                    failure = Some(MediaError::Body(e.to_string()));
                    break;
                }
            };
            total += frame.len() as u64;
            if total > limit {
                failure = Some(MediaError::TooLarge { limit });
                break;
            }
            if tx.send(frame).await.is_err() {
                break; // the worker stopped; its error comes below
            }
        }
        drop(tx);
        let result = worker.await.map_err(|e| MediaError::Io(std::io::Error::other(e)));
        if let Some(e) = failure {
            return Err(e);
        }
        let (root, size) = result??;
        guard.0 = None;
        Ok(Staged { cid: root.cid, size, dir })
    }

    /// The bytes `start..end` of the file `root` (of `size` bytes), block by block as the DAG is
    /// walked, each block checked against its CID first. A block that is missing, does not
    /// match, or disagrees with the sizes its parent gave ends the stream with
    /// [`MediaError::Corrupt`].
    pub fn read(
        &self,
        root: Cid,
        size: u64,
        start: u64,
        end: u64,
    ) -> impl Stream<Item = Result<Bytes, MediaError>> + Send + 'static {
        let backend = self.inner.backend.clone();
        let state = Walk { backend, root, stack: vec![(root, 0, size)], start, end };
        futures::stream::try_unfold(state, |mut w| async move {
            match w.next().await? {
                Some(bytes) => Ok(Some((bytes, w))),
                None => Ok(None),
            }
        })
    }
}

/// A depth-first walk of a file's DAG over the byte range `start..end`.
struct Walk {
    backend: Arc<dyn Backend>,
    root: Cid,
    /// Blocks still to visit: (CID, offset of its first byte in the file, its file bytes).
    stack: Vec<(Cid, u64, u64)>,
    start: u64,
    end: u64,
}

impl Walk {
    async fn next(&mut self) -> Result<Option<Bytes>, MediaError> {
        while let Some((cid, offset, size)) = self.stack.pop() {
            let block = self
                .backend
                .block(&self.root, &cid)
                .await?
                .ok_or_else(|| MediaError::Corrupt(format!("block {cid} of {} is missing", self.root)))?;
            if !cid.matches(&block) {
                return Err(MediaError::Corrupt(format!("block {cid} of {} does not hash to its CID", self.root)));
            }
            let node = unixfs::decode_file_node(&block).map_err(|e| MediaError::Corrupt(format!("{cid}: {e}")))?;
            match node {
                FileNode::Leaf(data) => {
                    if data.len() as u64 != size {
                        return Err(MediaError::Corrupt(format!("leaf {cid} holds {} bytes, not {size}", data.len())));
                    }
                    let from = self.start.saturating_sub(offset).min(size) as usize;
                    let to = self.end.saturating_sub(offset).min(size) as usize;
                    if from < to {
                        let mut data = data;
                        data.truncate(to);
                        return Ok(Some(Bytes::from(data).slice(from..)));
                    }
                }
                FileNode::Inner(children) => {
                    let total: u64 = children.iter().map(|(_, s)| s).sum();
                    if total != size {
                        return Err(MediaError::Corrupt(format!("node {cid} holds {total} bytes, not {size}")));
                    }
                    let mut at = offset + total;
                    for (child, child_size) in children.into_iter().rev() {
                        at -= child_size;
                        if at < self.end && at + child_size > self.start {
                            self.stack.push((child, at, child_size));
                        }
                    }
                }
            }
        }
        Ok(None)
    }
}
