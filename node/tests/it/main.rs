//! Integration tests: a real node on port 0, driven over HTTP and WebSocket with real signers.

mod anchor;
mod auth;
mod cli;
mod common;
mod crash;
mod dapp;
mod deploy;
mod durability;
mod erc1271;
mod forgery;
mod gates;
mod log;
mod lying_peer;
mod media;
mod messages;
mod network;
mod registry;
mod rooms;
mod social;
mod tips;
mod ws;
