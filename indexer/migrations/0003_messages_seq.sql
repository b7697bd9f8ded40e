-- Public full-text search ranks the newest matches (see Store::search_public): for a common
-- word the planner walks messages from the newest down instead of reading every match.
CREATE INDEX messages_seq ON messages (seq);

-- User search matches names case-insensitively: index the lowercase name, so a name fragment
-- is found through the trigram index instead of a scan of every user.
CREATE INDEX users_lower_name_trgm ON users USING GIN (lower(name) gin_trgm_ops);
