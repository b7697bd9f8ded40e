-- The same schema as migrations/sqlite, in PostgreSQL types.

-- Nonces this node issued for SIWE; single use, with a TTL.
CREATE TABLE nonces (
    nonce       TEXT PRIMARY KEY,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX nonces_expiry ON nonces (expires_at);

-- Device keys wallets delegated through signed SIWE messages. A device may hold several
-- delegations over time (each sign-in makes one); all of one device belong to one wallet, and
-- each stays, so messages signed under an older one can still be checked and relayed.
CREATE TABLE delegations (
    device_key  BYTEA NOT NULL,
    wallet      BYTEA NOT NULL,
    box_key     BYTEA,
    not_before  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    message     TEXT NOT NULL,
    signature   BYTEA NOT NULL,
    revoked_at  BIGINT,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (device_key, not_before, expires_at)
);
CREATE INDEX delegations_wallet ON delegations (wallet);

-- The one wallet a device key belongs to (claimed atomically by the first delegation).
CREATE TABLE device_owners (
    device_key  BYTEA PRIMARY KEY,
    wallet      BYTEA NOT NULL
);

CREATE TABLE rooms (
    id          BYTEA PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('group', 'channel')),
    name        TEXT NOT NULL,
    owner       BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    max_lamport BIGINT NOT NULL DEFAULT 0,
    -- Stored messages and the XOR of their ids: two nodes with equal pairs hold the same set.
    msg_count   BIGINT NOT NULL DEFAULT 0,
    fingerprint BYTEA NOT NULL DEFAULT decode(repeat('00', 32), 'hex')
);

CREATE TABLE members (
    room        BYTEA NOT NULL REFERENCES rooms (id),
    address     BYTEA NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    joined_at   BIGINT NOT NULL,
    PRIMARY KEY (room, address)
);
CREATE INDEX members_address ON members (address);

-- Envelopes as received; display order is (lamport, timestamp_ms, id).
CREATE TABLE messages (
    seq          BIGSERIAL PRIMARY KEY,
    id           BYTEA NOT NULL UNIQUE,
    room         BYTEA NOT NULL REFERENCES rooms (id),
    sender       BYTEA NOT NULL,
    device_key   BYTEA NOT NULL,
    lamport      BIGINT NOT NULL,
    timestamp_ms BIGINT NOT NULL,
    kind         INTEGER NOT NULL,
    envelope     BYTEA NOT NULL,
    received_at  BIGINT NOT NULL
);
CREATE INDEX messages_room_order ON messages (room, lamport, timestamp_ms, id);
