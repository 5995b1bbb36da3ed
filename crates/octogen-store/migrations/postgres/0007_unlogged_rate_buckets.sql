-- Every /v1 request updates its organization's bucket. As a logged table each
-- of those commits waited for a WAL flush while holding the bucket's row lock,
-- which capped one organization at a few thousand requests per second across
-- all nodes. A bucket is worth nothing after a crash (it refills within a
-- minute; an empty table means full buckets), so it needs no WAL: commits that
-- touch only unlogged tables do not wait for a flush.
ALTER TABLE rate_buckets SET UNLOGGED;
