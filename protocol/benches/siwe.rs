//! SIWE verification throughput against its floor: recovering the signer of the same
//! signatures over the same text with nothing else (EIP-191 hash + secp256k1 recovery).
//! `scripts/bench siwe` runs this and prints the ratio.

#![allow(missing_docs)] // criterion_group! generates an undocumented public function.

use alloy::signers::{SignerSync, local::PrivateKeySigner};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dchat_protocol::{
    Address, SiweMessage, VerifyOpts,
    siwe::{Fields, format_time},
};
use std::hint::black_box;
use time::{Duration, OffsetDateTime};

const N: usize = 64;

fn corpus() -> Vec<(String, Vec<u8>, Address)> {
    let now = OffsetDateTime::now_utc();
    (0..N)
        .map(|i| {
            let wallet = PrivateKeySigner::random();
            let text = Fields {
                domain: "localhost:8480".into(),
                address: wallet.address().to_checksum(None),
                statement: Some("Sign in to dchat".into()),
                uri: "http://localhost:8480".into(),
                version: "1".into(),
                chain_id: 1,
                nonce: format!("nonce{i:08}abc"),
                issued_at: format_time(now),
                expiration_time: Some(format_time(now + Duration::hours(1))),
                resources: vec![format!("urn:dchat:sign:{}", hex::encode([i as u8; 32]))],
                ..Fields::default()
            }
            .to_text();
            let sig = wallet.sign_message_sync(text.as_bytes()).expect("sign").as_bytes().to_vec();
            (text, sig, wallet.address())
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let corpus = corpus();
    let now = OffsetDateTime::now_utc();
    let chain_ids = [1u64, 31337];
    let mut group = c.benchmark_group("siwe");
    group.throughput(Throughput::Elements(N as u64));

    group.bench_function("raw_recover", |b| {
        b.iter(|| {
            for (text, sig, addr) in &corpus {
                let hash = alloy::primitives::eip191_hash_message(text.as_bytes());
                let sig = alloy::primitives::Signature::from_raw(sig).expect("sig");
                let got = sig.recover_address_from_prehash(&hash).expect("recovers");
                assert_eq!(&got, addr);
            }
        })
    });

    group.bench_function("siwe_verify", |b| {
        b.iter(|| {
            for (text, sig, _) in &corpus {
                let msg = SiweMessage::parse(black_box(text)).expect("parses");
                msg.check(&VerifyOpts {
                    domain: Some("localhost:8480"),
                    scheme: Some("http"),
                    uri_origin: Some("http://localhost:8480"),
                    chain_ids: Some(&chain_ids),
                    nonce: None,
                    now,
                    skew: Duration::seconds(60),
                    reject_future_issued_at: true,
                })
                .expect("valid");
                msg.verify_signature(sig).expect("verifies");
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
