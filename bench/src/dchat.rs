//! What a dchat client does before and while it chats: sign in (SIWE with a delegated device
//! key), create rooms, and post signed envelopes.

use alloy::signers::local::PrivateKeySigner;
use bytes::Bytes;
use dchat_node::{
    client::{Client, SignIn, seal_text},
    store::RoomKind,
};
use dchat_protocol::{RoomId, envelope::EnvelopeJson};
use ed25519_dalek::SigningKey;
use eyre::{WrapErr, eyre};
use futures::{StreamExt, TryStreamExt};

/// A wallet with a delegated device key and a session.
pub(crate) struct User {
    pub(crate) wallet: PrivateKeySigner,
    pub(crate) device: SigningKey,
    pub(crate) token: String,
}

/// Signs `n` new wallets in at `base`, `concurrency` at a time.
pub(crate) async fn sign_in(base: &str, n: usize, concurrency: usize) -> eyre::Result<Vec<User>> {
    futures::stream::iter(0..n)
        .map(|_| async {
            let wallet = PrivateKeySigner::random();
            let device = SigningKey::from_bytes(&rand::random());
            let mut client = Client::new(base);
            let s = SignIn { wallet: &wallet, device: Some(&device), box_key: None, ttl_secs: 3600, chain_id: None };
            client.sign_in(&s).await.map_err(|e| eyre!("sign-in: {e}"))?;
            let token = client.token().ok_or_else(|| eyre!("no token"))?.to_string();
            Ok::<_, eyre::Report>(User { wallet, device, token })
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await
}

/// Creates `rooms` public channels; room `r` is owned by user `r * per_room` and has the next
/// `per_room - 1` users as members from the start.
pub(crate) async fn create_rooms(
    base: &str,
    users: &[User],
    rooms: usize,
    per_room: usize,
) -> eyre::Result<Vec<RoomId>> {
    futures::stream::iter(0..rooms)
        .map(|r| async move {
            let owner = &users[r * per_room];
            let members: Vec<_> =
                users[r * per_room + 1..(r + 1) * per_room].iter().map(|u| u.wallet.address()).collect();
            let client = Client::new(base).with_token(owner.token.clone());
            let view = client
                .create_room(&owner.wallet, &owner.device, &format!("bench-{r}"), RoomKind::Channel, &members)
                .await
                .map_err(|e| eyre!("create room: {e}"))?;
            Ok::<_, eyre::Report>(view.id)
        })
        .buffered(8)
        .try_collect()
        .await
}

/// A post ready to send: `POST /v1/rooms/{room}/messages` with this JSON body as `user`.
pub(crate) struct Post {
    pub(crate) room: usize,
    pub(crate) user: usize,
    pub(crate) body: Bytes,
}

/// Signs the text envelope of each `(seq, room, user, lamport)`, spread over the CPUs.
pub(crate) fn seal_posts(
    users: &[User],
    rooms: &[RoomId],
    plan: &[(u64, usize, usize, u64)],
    size: usize,
) -> eyre::Result<Vec<Post>> {
    let threads = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let chunk = plan.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = plan
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|&(seq, room, user, lamport)| {
                            let u = &users[user];
                            let env = seal_text(&rooms[room], &u.wallet, &u.device, lamport, &text(seq, size));
                            let body = serde_json::to_vec(&EnvelopeJson::from(&env))?;
                            Ok(Post { room, user, body: body.into() })
                        })
                        .collect::<eyre::Result<Vec<_>>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(plan.len());
        for h in handles {
            out.extend(h.join().map_err(|_| eyre!("sealing thread panicked"))??);
        }
        Ok::<_, eyre::Report>(out)
    })
    .wrap_err("sealing envelopes")
}

/// A benchmark message's text: its sequence number, then padding up to `size` bytes.
pub(crate) fn text(seq: u64, size: usize) -> String {
    let mut t = format!("{seq} ");
    while t.len() < size {
        t.push('x');
    }
    t
}
