//! The embedded block store: IPFS blocks in files under `data_dir/media`, used when no IPFS API
//! is configured.
//!
//! ```text
//! media/pins/<root cid>/<block cid>   the blocks of one pinned file
//! media/tmp/<random>/                 an upload in progress (blocks, or the file for Kubo)
//! media/trash/<random>/               an unpinned file being removed
//! ```
//!
//! Blocks are grouped by the file (root) they were pinned for: pinning is one rename of a
//! finished upload's directory and unpinning one rename out of `pins/`, both atomic, so a crash
//! never leaves a half-pinned file and no reference counting of shared blocks is needed. The
//! cost: identical chunks of two different files are stored twice. Nothing read is trusted:
//! the reader re-hashes every block against the CID it was asked for.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use super::unixfs::{BlockSink, Cid};

/// Writes each block of an upload to its own file in a staging directory.
#[derive(Debug)]
pub struct DirSink {
    dir: PathBuf,
}

impl DirSink {
    /// Blocks go to `dir` (created).
    pub fn new(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }
}

impl BlockSink for DirSink {
    fn put(&mut self, cid: &Cid, block: &[u8]) -> std::io::Result<()> {
        let path = self.dir.join(cid.to_string());
        // The same chunk twice in one file: one copy is enough.
        if path.exists() {
            return Ok(());
        }
        let mut f = std::fs::File::create(&path)?;
        f.write_all(block)?;
        Ok(())
    }
}

/// Pinned files on disk.
#[derive(Debug, Clone)]
pub struct BlockStore {
    root: PathBuf,
}

impl BlockStore {
    /// Opens (creating) the store under `dir`, clearing what a crash left in `tmp/` and `trash/`.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        for sub in ["tmp", "trash"] {
            let p = dir.join(sub);
            if p.exists() {
                std::fs::remove_dir_all(&p)?;
            }
            std::fs::create_dir_all(&p)?;
        }
        std::fs::create_dir_all(dir.join("pins"))?;
        Ok(Self { root: dir.to_path_buf() })
    }

    /// A fresh staging directory for one upload.
    pub fn staging_dir(&self) -> PathBuf {
        self.root.join("tmp").join(hex::encode(rand::random::<[u8; 12]>()))
    }

    fn pin_dir(&self, root: &Cid) -> PathBuf {
        self.root.join("pins").join(root.to_string())
    }

    /// The path of one block of a pinned file (tests corrupt blocks through it).
    pub fn block_path(&self, root: &Cid, cid: &Cid) -> PathBuf {
        self.pin_dir(root).join(cid.to_string())
    }

    /// Pins `root` with the blocks staged in `blocks`; a root already pinned keeps its blocks.
    pub fn pin_staged(&self, root: &Cid, blocks: &Path) -> std::io::Result<()> {
        let target = self.pin_dir(root);
        if target.exists() {
            return Ok(());
        }
        std::fs::rename(blocks, &target)
    }

    /// Whether `root` is pinned.
    pub fn is_pinned(&self, root: &Cid) -> bool {
        self.pin_dir(root).is_dir()
    }

    /// Unpins `root` and removes its blocks.
    pub fn unpin(&self, root: &Cid) -> std::io::Result<()> {
        let dir = self.pin_dir(root);
        if !dir.exists() {
            return Ok(());
        }
        let trash = self.root.join("trash").join(hex::encode(rand::random::<[u8; 12]>()));
        std::fs::rename(&dir, &trash)?;
        std::fs::remove_dir_all(&trash)
    }

    /// A block of a pinned file, unverified; `None` when absent.
    pub fn block(&self, root: &Cid, cid: &Cid) -> std::io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.block_path(root, cid)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every pinned root.
    pub fn pins(&self) -> std::io::Result<Vec<Cid>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(self.root.join("pins"))? {
            if let Some(cid) = entry?.file_name().to_str().and_then(|n| n.parse().ok()) {
                out.push(cid);
            }
        }
        Ok(out)
    }
}
