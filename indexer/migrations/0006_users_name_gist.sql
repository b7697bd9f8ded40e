-- User search finds the best name matches without scoring every one (see Store::best_names):
-- a GiST trigram index over lowercase names answers "the nearest names to q" (KNN, `<->`) and
-- "every name at least this similar" (`%` under a raised threshold) from the index. Larger
-- signatures (256 bytes) keep its inner pages selective. It replaces the GIN over lowercase
-- names.
CREATE INDEX users_name_gist ON users USING GIST (lower(name) gist_trgm_ops (siglen = 256))
    WHERE name IS NOT NULL;
DROP INDEX users_lower_name_trgm;
