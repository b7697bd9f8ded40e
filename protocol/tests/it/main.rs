//! Integration tests of the protocol crate.

mod siwe_vectors;
