-- Search at scale (see Store::newest_public_matches and Store::search_users).
--
-- Public full-text search ranks the newest matches of a query. It walks messages newest first
-- in buckets of 4,096 seqs: one GIN index keyed by a message's bucket (seq >> 12) and by its
-- words answers "the matches in these buckets" from the index alone, so the heap rows of
-- older matches are never read. It also answers plain word queries, so it replaces the GIN
-- over the tsvector alone.
CREATE EXTENSION IF NOT EXISTS btree_gin;
CREATE INDEX messages_window_tsv ON messages USING GIN ((seq >> 12), tsv);
DROP INDEX messages_tsv;

-- User search matches lowercase names (users_lower_name_trgm); the index over names as written
-- serves no query.
DROP INDEX users_name_trgm;
