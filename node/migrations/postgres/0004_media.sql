-- Media: files pinned for rooms (by CID), and the references that keep them pinned. A file
-- stays pinned while at least one reference names it; each reference counts its file's size
-- against its uploader's and its room's quota.
CREATE TABLE media (
    cid         TEXT PRIMARY KEY,
    size        BIGINT NOT NULL,
    mime        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE media_refs (
    cid         TEXT NOT NULL REFERENCES media (cid),
    room        BYTEA NOT NULL REFERENCES rooms (id),
    uploader    BYTEA NOT NULL,
    size        BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (cid, room, uploader)
);
CREATE INDEX media_refs_room ON media_refs (room);
CREATE INDEX media_refs_uploader ON media_refs (uploader);
CREATE INDEX media_refs_created ON media_refs (created_at);
