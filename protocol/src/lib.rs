#![doc = include_str!("../README.md")]

pub mod attestation;
pub mod control;
pub mod delegation;
pub mod e2e;
pub mod envelope;
pub mod ids;
pub mod media;
pub mod merkle;
pub mod room;
pub mod search;
pub mod siwe;
pub mod social;
pub mod token;
pub mod wire;

pub use alloy_primitives::{Address, B256};
pub use delegation::{Delegation, DelegationError};
pub use envelope::{Body, Bounds, Envelope, EnvelopeError, Kind};
pub use ids::RoomId;
pub use siwe::{SiweError, SiweMessage, VerifyOpts};

/// Seconds since the Unix epoch, the clock every check in this crate takes as input.
pub type UnixSeconds = i64;
