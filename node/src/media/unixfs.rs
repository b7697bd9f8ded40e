//! Files as IPFS stores them by default, so the embedded store and Kubo give a file the same
//! CID: CIDv0 (a base58btc sha2-256 multihash of a dag-pb block), UnixFS `File` nodes, fixed
//! 256 KiB chunks, the balanced layout with at most 174 links per node, no raw leaves and no
//! inlining.
//!
//! - A leaf is a dag-pb node whose data is UnixFS `{Type: File, Data: chunk, filesize: len}`
//!   (`Data` absent for the empty file).
//! - An inner node has one link per child (`Hash`, empty `Name`, `Tsize` = the child's block
//!   plus everything under it) and data UnixFS `{Type: File, filesize: total, blocksizes: each
//!   child's file bytes}`.
//! - A one-chunk file is its leaf. Otherwise leaves are grouped 174 to a node, those nodes 174
//!   to a node, and so on, every subtree full before the next starts (go-unixfs
//!   `importer/balanced`).
//! - dag-pb's canonical form writes `Links` (field 2) before `Data` (field 1), against protobuf's
//!   field order, so nodes are written by hand here; the UnixFS message is plain protobuf (proto2:
//!   `blocksizes` not packed).

use std::{fmt, str::FromStr};

use prost::{
    Message as _,
    encoding::{WireType, encode_key, encode_varint},
};
use sha2::{Digest, Sha256};

/// Bytes of file data per leaf.
pub const CHUNK_SIZE: usize = 262_144;
/// Most links in one node.
pub const MAX_LINKS: usize = 174;

/// A CIDv0: the sha2-256 digest of a dag-pb block, shown as `Qm…` (base58btc of the multihash
/// `0x12 0x20 || digest`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cid([u8; 32]);

impl Cid {
    /// The CID of a dag-pb block.
    pub fn of(block: &[u8]) -> Self {
        Self(Sha256::digest(block).into())
    }

    /// The multihash bytes (what a dag-pb link holds).
    pub fn to_multihash(&self) -> [u8; 34] {
        let mut out = [0u8; 34];
        out[0] = 0x12;
        out[1] = 0x20;
        out[2..].copy_from_slice(&self.0);
        out
    }

    /// Reads a link's multihash; only sha2-256 is accepted.
    pub fn from_multihash(bytes: &[u8]) -> Option<Self> {
        match bytes {
            [0x12, 0x20, digest @ ..] => digest.try_into().ok().map(Self),
            _ => None,
        }
    }

    /// Whether `block` is the block this CID names.
    pub fn matches(&self, block: &[u8]) -> bool {
        Self::of(block) == *self
    }
}

impl fmt::Display for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.to_multihash()).into_string())
    }
}

impl fmt::Debug for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cid({self})")
    }
}

/// A string that is not a CIDv0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a CIDv0 (Qm… base58btc sha2-256)")]
pub struct CidError;

impl FromStr for Cid {
    type Err = CidError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 46 || !s.starts_with("Qm") {
            return Err(CidError);
        }
        let bytes = bs58::decode(s).into_vec().map_err(|_| CidError)?;
        Self::from_multihash(&bytes).ok_or(CidError)
    }
}

impl serde::Serialize for Cid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Cid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// dag-pb link (decoding; links are encoded by hand in canonical order).
#[derive(Clone, PartialEq, prost::Message)]
struct PbLink {
    #[prost(bytes = "vec", optional, tag = "1")]
    hash: Option<Vec<u8>>,
    #[prost(string, optional, tag = "2")]
    name: Option<String>,
    #[prost(uint64, optional, tag = "3")]
    tsize: Option<u64>,
}

/// dag-pb node (decoding only).
#[derive(Clone, PartialEq, prost::Message)]
struct PbNode {
    #[prost(bytes = "vec", optional, tag = "1")]
    data: Option<Vec<u8>>,
    #[prost(message, repeated, tag = "2")]
    links: Vec<PbLink>,
}

/// UnixFS `Data` type `File`.
const UNIXFS_FILE: i32 = 2;
/// UnixFS `Data` type `Raw` (leaves of some older importers).
const UNIXFS_RAW: i32 = 0;

/// The UnixFS message inside a dag-pb node's data (proto2, fields this node uses).
#[derive(Clone, PartialEq, prost::Message)]
struct UnixFs {
    #[prost(int32, required, tag = "1")]
    kind: i32,
    #[prost(bytes = "vec", optional, tag = "2")]
    data: Option<Vec<u8>>,
    #[prost(uint64, optional, tag = "3")]
    filesize: Option<u64>,
    #[prost(uint64, repeated, packed = "false", tag = "4")]
    blocksizes: Vec<u64>,
}

/// A link to a finished subtree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// The child block.
    pub cid: Cid,
    /// Bytes of the child block and every block under it.
    pub tsize: u64,
    /// File bytes under it.
    pub filesize: u64,
}

/// Encodes a dag-pb node in canonical order: links, then data.
fn encode_node(links: &[Link], data: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(data.len() + links.len() * 48 + 8);
    for l in links {
        let link =
            PbLink { hash: Some(l.cid.to_multihash().to_vec()), name: Some(String::new()), tsize: Some(l.tsize) };
        prost::encoding::message::encode(2, &link, &mut buf);
    }
    encode_key(1, WireType::LengthDelimited, &mut buf);
    encode_varint(data.len() as u64, &mut buf);
    buf.extend_from_slice(data);
    buf
}

/// The leaf block holding `chunk`.
pub fn leaf_block(chunk: &[u8]) -> Vec<u8> {
    let fs = UnixFs {
        kind: UNIXFS_FILE,
        data: (!chunk.is_empty()).then(|| chunk.to_vec()),
        filesize: Some(chunk.len() as u64),
        blocksizes: Vec::new(),
    };
    encode_node(&[], &fs.encode_to_vec())
}

/// The inner block over `links`.
fn inner_block(links: &[Link]) -> Vec<u8> {
    let fs = UnixFs {
        kind: UNIXFS_FILE,
        data: None,
        filesize: Some(links.iter().map(|l| l.filesize).sum()),
        blocksizes: links.iter().map(|l| l.filesize).collect(),
    };
    encode_node(links, &fs.encode_to_vec())
}

/// Receives every block a [`DagBuilder`] makes, leaves first, the root last.
pub trait BlockSink {
    /// Stores one block.
    fn put(&mut self, cid: &Cid, block: &[u8]) -> std::io::Result<()>;
}

/// Keeps nothing: for computing a CID only.
#[derive(Debug, Default)]
pub struct Discard;

impl BlockSink for Discard {
    fn put(&mut self, _: &Cid, _: &[u8]) -> std::io::Result<()> {
        Ok(())
    }
}

/// Builds a file's DAG as its bytes stream in, holding one chunk and the links of unfinished
/// nodes (at most 174 per level), never the file.
#[derive(Debug)]
pub struct DagBuilder<S> {
    sink: S,
    chunk: Vec<u8>,
    /// `levels[0]` holds links to leaves, `levels[1]` to nodes over leaves, and so on.
    levels: Vec<Vec<Link>>,
    size: u64,
}

impl<S: BlockSink> DagBuilder<S> {
    /// A builder writing blocks to `sink`.
    pub fn new(sink: S) -> Self {
        Self { sink, chunk: Vec::with_capacity(CHUNK_SIZE), levels: Vec::new(), size: 0 }
    }

    /// File bytes taken so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Adds file bytes.
    pub fn push(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        self.size += data.len() as u64;
        while !data.is_empty() {
            let take = (CHUNK_SIZE - self.chunk.len()).min(data.len());
            self.chunk.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.chunk.len() == CHUNK_SIZE {
                self.flush_leaf()?;
            }
        }
        Ok(())
    }

    fn flush_leaf(&mut self) -> std::io::Result<()> {
        let block = leaf_block(&self.chunk);
        let cid = Cid::of(&block);
        self.sink.put(&cid, &block)?;
        let link = Link { cid, tsize: block.len() as u64, filesize: self.chunk.len() as u64 };
        self.chunk.clear();
        self.add(0, link)
    }

    fn node(&mut self, links: &[Link]) -> std::io::Result<Link> {
        let block = inner_block(links);
        let cid = Cid::of(&block);
        self.sink.put(&cid, &block)?;
        Ok(Link {
            cid,
            tsize: block.len() as u64 + links.iter().map(|l| l.tsize).sum::<u64>(),
            filesize: links.iter().map(|l| l.filesize).sum(),
        })
    }

    /// Adds a link at `level`; a full level is closed into a node one level up first.
    fn add(&mut self, level: usize, link: Link) -> std::io::Result<()> {
        if self.levels.len() <= level {
            self.levels.push(Vec::with_capacity(MAX_LINKS));
        }
        if self.levels[level].len() == MAX_LINKS {
            let full = std::mem::take(&mut self.levels[level]);
            let parent = self.node(&full)?;
            self.add(level + 1, parent)?;
        }
        self.levels[level].push(link);
        Ok(())
    }

    /// Writes the last blocks; returns the root and the sink.
    pub fn finish(mut self) -> std::io::Result<(Link, S)> {
        if !self.chunk.is_empty() || self.levels.is_empty() {
            // The last, short chunk; or the empty file, which is one empty leaf.
            self.flush_leaf()?;
        }
        let mut level = 0;
        let root = loop {
            let links = std::mem::take(&mut self.levels[level]);
            if level + 1 == self.levels.len() {
                break match links.as_slice() {
                    [only] if level == 0 => *only,
                    _ => self.node(&links)?,
                };
            }
            let node = self.node(&links)?;
            self.add(level + 1, node)?;
            level += 1;
        };
        Ok((root, self.sink))
    }
}

/// A block, decoded as a UnixFS file node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileNode {
    /// Data of a leaf.
    Leaf(Vec<u8>),
    /// Children and the file bytes under each.
    Inner(Vec<(Cid, u64)>),
}

/// Why a block is not a UnixFS file node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("block is not a UnixFS file node: {0}")]
pub struct NodeError(&'static str);

/// Decodes a block of a UnixFS file and checks it is consistent (sizes add up).
pub fn decode_file_node(block: &[u8]) -> Result<FileNode, NodeError> {
    let node = PbNode::decode(block).map_err(|_| NodeError("not dag-pb"))?;
    let fs = UnixFs::decode(node.data.as_deref().unwrap_or_default()).map_err(|_| NodeError("no UnixFS data"))?;
    if fs.kind != UNIXFS_FILE && fs.kind != UNIXFS_RAW {
        return Err(NodeError("not a file"));
    }
    if node.links.is_empty() {
        let data = fs.data.unwrap_or_default();
        if fs.filesize.is_some_and(|s| s != data.len() as u64) {
            return Err(NodeError("leaf size does not match its data"));
        }
        return Ok(FileNode::Leaf(data));
    }
    if fs.blocksizes.len() != node.links.len() || fs.data.as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(NodeError("links and blocksizes disagree"));
    }
    if fs.filesize.is_some_and(|s| s != fs.blocksizes.iter().sum::<u64>()) {
        return Err(NodeError("filesize is not the sum of blocksizes"));
    }
    node.links
        .iter()
        .zip(fs.blocksizes)
        .map(|(l, size)| {
            let cid = l.hash.as_deref().and_then(Cid::from_multihash).ok_or(NodeError("link is not a CIDv0"))?;
            Ok((cid, size))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(FileNode::Inner)
}

/// The CID of `data` as a file (all in memory; for tests and small inputs).
pub fn cid_of_file(data: &[u8]) -> Cid {
    let mut b = DagBuilder::new(Discard);
    // Discard never fails.
    let _ = b.push(data);
    b.finish().map(|(root, _)| root.cid).unwrap_or(Cid([0; 32]))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[derive(Default)]
    struct Keep(HashMap<Cid, Vec<u8>>);

    impl BlockSink for Keep {
        fn put(&mut self, cid: &Cid, block: &[u8]) -> std::io::Result<()> {
            self.0.insert(*cid, block.to_vec());
            Ok(())
        }
    }

    fn read(blocks: &HashMap<Cid, Vec<u8>>, cid: &Cid, out: &mut Vec<u8>) -> usize {
        match decode_file_node(&blocks[cid]).expect("file node") {
            FileNode::Leaf(d) => {
                out.extend(d);
                0
            }
            FileNode::Inner(children) => {
                assert!(children.len() <= MAX_LINKS);
                1 + children.iter().map(|(c, _)| read(blocks, c, out)).max().unwrap_or(0)
            }
        }
    }

    #[test]
    fn well_known_cids() {
        assert_eq!(cid_of_file(b"").to_string(), "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH");
        assert_eq!(leaf_block(b""), [0x0a, 0x04, 0x08, 0x02, 0x18, 0x00]);
        // `ipfs add` of a file holding "hello world\n".
        assert_eq!(cid_of_file(b"hello world\n").to_string(), "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o");
    }

    #[test]
    fn cid_strings_round_trip_and_refuse_others() {
        let cid = cid_of_file(b"x");
        assert_eq!(cid.to_string().parse::<Cid>(), Ok(cid));
        for bad in ["", "Qm", "bafybeif7ztnhq65lumvvtr4ekcwd2ifwgm3awq4zfr3srh462rwyinlb4y", "../../etc/passwd"] {
            assert!(bad.parse::<Cid>().is_err(), "{bad}");
        }
        // Right length and prefix, wrong alphabet (0 is not base58).
        assert!("Qm0000000000000000000000000000000000000000000000".parse::<Cid>().is_err());
    }

    #[test]
    fn layout_is_balanced_and_reads_back() {
        let cases: [(usize, usize); 6] = [
            (1, 0),
            (CHUNK_SIZE, 0),
            (CHUNK_SIZE + 1, 1),
            (CHUNK_SIZE * MAX_LINKS, 1),
            (CHUNK_SIZE * MAX_LINKS + 1, 2),
            (CHUNK_SIZE * MAX_LINKS * 2 + 5, 2),
        ];
        for (len, depth) in cases {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8 ^ (i >> 18) as u8).collect();
            let mut b = DagBuilder::new(Keep::default());
            for piece in data.chunks(100_003) {
                b.push(piece).expect("push");
            }
            let (root, Keep(blocks)) = b.finish().expect("finish");
            assert_eq!(root.filesize, len as u64);
            assert_eq!(root.tsize, blocks.values().map(|b| b.len() as u64).sum::<u64>(), "tsize of {len}");
            let mut back = Vec::new();
            assert_eq!(read(&blocks, &root.cid, &mut back), depth, "depth of {len}");
            assert!(back == data, "content of {len}");
            assert_eq!(root.cid, cid_of_file(&data), "the CID does not depend on how bytes arrive");
        }
    }

    #[test]
    fn refuses_inconsistent_nodes() {
        assert!(decode_file_node(b"\xff\xff").is_err());
        let bad = UnixFs { kind: UNIXFS_FILE, data: Some(vec![1, 2]), filesize: Some(3), blocksizes: vec![] };
        assert_eq!(
            decode_file_node(&encode_node(&[], &bad.encode_to_vec())),
            Err(NodeError("leaf size does not match its data"))
        );
        let dir = UnixFs { kind: 1, data: None, filesize: None, blocksizes: vec![] };
        assert_eq!(decode_file_node(&encode_node(&[], &dir.encode_to_vec())), Err(NodeError("not a file")));
    }
}
