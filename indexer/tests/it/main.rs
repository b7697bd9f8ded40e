//! Integration tests: the indexer against a real dchat node (in process) and PostgreSQL, all on
//! loopback.

mod access;
mod chain;
mod common;
mod follow;
mod search;
