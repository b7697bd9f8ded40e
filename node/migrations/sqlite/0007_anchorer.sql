-- MessageAnchor keys anchors by (anchorer, root) and has no batch ids: a batch is anchored once
-- the account that anchored it is recorded here, with its transaction and block. batch_id is
-- only set on batches anchored in the earlier contract, which had ids.
ALTER TABLE anchor_batches ADD COLUMN anchorer BLOB;
