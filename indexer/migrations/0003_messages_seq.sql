-- Public full-text search ranks the newest matches (see Store::search_public): for a common
-- word the planner walks messages from the newest down instead of reading every match.
CREATE INDEX messages_seq ON messages (seq);
