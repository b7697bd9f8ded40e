-- dchat gateway: links in progress, profiles (with unlink tombstones for the feed) and the
-- attestations the gateway signed. Forward-only: never edit once released; add a new file.

-- A started link: what the callback needs to finish it. Single use: the callback deletes it.
CREATE TABLE link_states (
    -- SHA-256 (hex) of the `state` parameter; the value itself is not stored.
    state_hash TEXT PRIMARY KEY,
    -- EIP-55 address of the wallet session that started the link.
    wallet TEXT NOT NULL,
    nonce TEXT NOT NULL,
    -- PKCE code verifier, when PKCE is on.
    code_verifier TEXT,
    -- SHA-256 (hex) of the browser-binding cookie, when browser binding is on.
    browser_hash TEXT,
    -- When the wallet session (node access token) ends, Unix seconds.
    session_expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX link_states_wallet ON link_states (wallet);
CREATE INDEX link_states_expires ON link_states (expires_at);

-- Every attestation the gateway signed. The signed JSON is kept while it is current and
-- cleared when it is revoked, so an unlinked profile's data does not stay behind.
CREATE TABLE attestations (
    id BIGSERIAL PRIMARY KEY,
    -- EIP-712 digest, 0x hex.
    digest TEXT NOT NULL UNIQUE,
    wallet TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expiry BIGINT NOT NULL,
    -- The SignedAttestation JSON text; NULL once revoked.
    body TEXT,
    revoked_at BIGINT,
    -- unlinked | superseded | moved
    revoked_reason TEXT
);
CREATE INDEX attestations_wallet ON attestations (wallet);

-- One row per wallet that ever linked. An unlinked wallet keeps a tombstone (linked = false,
-- profile fields NULL) so the feed can tell readers to drop it.
CREATE TABLE profiles (
    wallet TEXT PRIMARY KEY,
    linked BOOLEAN NOT NULL,
    -- keccak256 of the provider subject, 0x hex; one linked wallet per subject.
    subject_hash TEXT,
    name TEXT,
    picture TEXT,
    email_domain TEXT,
    attestation_id BIGINT REFERENCES attestations (id),
    linked_at BIGINT,
    -- Unix milliseconds, strictly increasing in commit order (assigned under an advisory
    -- lock), so `updated_after` is an exact feed cursor.
    updated_at BIGINT NOT NULL UNIQUE
);
CREATE UNIQUE INDEX profiles_linked_subject ON profiles (subject_hash) WHERE linked;
