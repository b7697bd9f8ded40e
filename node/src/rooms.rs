//! The node's default public channel ("team" unless configured otherwise): created once, on
//! first start, by the node's own wallet, so a new node has somewhere to talk from the first
//! sign-in. Clients find it in `GET /v1/channels` (`default: true`) and join it like any channel.

use alloy::signers::{SignerSync, local::PrivateKeySigner};
use dchat_protocol::{
    Body, Delegation, Envelope, Kind,
    delegation::SIGN_PREFIX,
    envelope::VERSION,
    room::{CreateRoom, RoomKind},
    siwe::{Fields, format_time},
};
use ed25519_dalek::SigningKey;
use eyre::WrapErr;
use prost::Message as _;

use crate::{
    api::AppState,
    ingest::{Origin, ingest_verified},
};

/// `node_meta` key holding the default channel's id.
pub const DEFAULT_CHANNEL_KEY: &str = "default_channel";

/// The node's wallet (it owns the default channel), kept in `data_dir/node-wallet.key`.
fn node_wallet(state: &AppState) -> eyre::Result<PrivateKeySigner> {
    let path = state.config.data_dir.join("node-wallet.key");
    match std::fs::read(&path) {
        Ok(bytes) => PrivateKeySigner::from_slice(&bytes)
            .map_err(|_| eyre::eyre!("{} is not a secp256k1 key; remove it to make a new one", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(&state.config.data_dir)?;
            let wallet = PrivateKeySigner::random();
            crate::write_private(&path, wallet.to_bytes().as_slice())?;
            Ok(wallet)
        }
        Err(e) => Err(e).wrap_err_with(|| format!("reading {}", path.display())),
    }
}

/// Creates the default channel if this node has not yet done so.
pub async fn ensure_default_channel(state: &AppState) -> eyre::Result<()> {
    let Some(name) = state.config.rooms.default_channel.as_deref().map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(());
    };
    if state.store.meta(DEFAULT_CHANNEL_KEY).await?.is_some() {
        return Ok(());
    }
    let wallet = node_wallet(state)?;
    let device = SigningKey::from_bytes(&rand::random());
    // The node delegates a one-off device key to itself, exactly as a user's wallet would.
    let now = time::OffsetDateTime::now_utc();
    let text = Fields {
        domain: state.domain.clone(),
        address: wallet.address().to_checksum(None),
        statement: Some("dchat node: create the default channel".into()),
        uri: state.public_url.clone(),
        version: "1".into(),
        chain_id: state.config.chain_ids.first().copied().unwrap_or(1),
        nonce: hex::encode(rand::random::<[u8; 8]>()),
        issued_at: format_time(now),
        expiration_time: Some(format_time(now + time::Duration::days(1))),
        resources: vec![format!("{SIGN_PREFIX}{}", hex::encode(device.verifying_key().as_bytes()))],
        ..Fields::default()
    }
    .to_text();
    let signature = wallet.sign_message_sync(text.as_bytes())?.as_bytes();
    let skew = time::Duration::seconds(state.config.auth.clock_skew_secs);
    let delegation = Delegation::verify(&text, &signature, now, skew)?;
    state.store.put_delegation(&delegation, state.now()).await?;

    let (room, payload) = CreateRoom::new(&wallet.address(), name, RoomKind::Channel, &[]);
    let body = Body {
        version: VERSION,
        room: room.as_bytes().to_vec(),
        sender: wallet.address().to_vec(),
        device_key: device.verifying_key().to_bytes().to_vec(),
        timestamp_ms: state.now_ms(),
        lamport: 0,
        kind: Kind::CreateRoom as i32,
        payload: payload.encode_to_vec(),
        ..Body::default()
    };
    let v = Envelope::seal(&body, &device).open(&state.config.limits.envelope, state.now_ms())?;
    let envelope = v.envelope.clone();
    ingest_verified(state, v, None, Origin::Client).await.map_err(|e| eyre::eyre!("{}: {}", e.code, e.message))?;
    state.store.set_meta(DEFAULT_CHANNEL_KEY, &room.to_string()).await?;
    state.relay(&room, &envelope).await;
    tracing::info!(target: "node::rooms", %room, name, "created the default channel");
    Ok(())
}
