-- Media: files pinned for rooms (by CID), and the references that keep them pinned. A file
-- stays pinned while at least one reference names it; each reference counts its file's size
-- against its uploader's and its room's quota.
CREATE TABLE media (
    cid         TEXT PRIMARY KEY,
    size        INTEGER NOT NULL,
    mime        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE media_refs (
    cid         TEXT NOT NULL REFERENCES media (cid),
    room        BLOB NOT NULL REFERENCES rooms (id),
    uploader    BLOB NOT NULL,
    size        INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (cid, room, uploader)
);
CREATE INDEX media_refs_room ON media_refs (room);
CREATE INDEX media_refs_uploader ON media_refs (uploader);
CREATE INDEX media_refs_created ON media_refs (created_at);
