//! Integration tests of the protocol crate.

mod merkle_vector;
mod siwe_vectors;
