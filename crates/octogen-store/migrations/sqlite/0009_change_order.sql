-- Leaner product indexes: a publish inserts into every index of `products` at
-- random places, and at 1M products that insert work was most of the publish
-- (BENCHMARKS.md §5).
--
-- The change feed was ordered by (seq, uuid): all of a publish's rows share
-- its seq, so each insert landed at a random place among them. Each write now
-- also gets `change_order`, counting up within its publish, and the feed is
-- ordered by (seq, change_order): the index only ever appends.
ALTER TABLE products ADD COLUMN change_order BIGINT NOT NULL DEFAULT 0;
-- Unique within each seq for the rows already there.
UPDATE products SET change_order = rowid;
DROP INDEX products_by_seq;
CREATE INDEX products_by_change ON products (seq, change_order);

-- A product's uuid is derived from its catalog and normalized URL
-- (`octogen_core::product::product_uuid`), so a lookup by URL is a lookup by
-- uuid (the primary key), and this second unique index only cost writes.
DROP INDEX products_by_url;
