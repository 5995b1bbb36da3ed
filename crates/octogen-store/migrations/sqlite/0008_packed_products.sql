-- Product records are stored zstd-compressed (a product's JSON is ~3 KB and
-- compresses ~3×; the import benchmark is bound by the bytes SQLite writes).
-- Rows written before this migration keep their JSON in `data`; rows written
-- since keep '' there and the compressed JSON in `packed`. Readers take
-- `packed` when it is set.
ALTER TABLE products ADD COLUMN packed BLOB;

-- Runs no longer stage products in the database: a run keeps what it read in
-- a file on its node until it publishes (see octogen-server's indexing::staging).
DROP TABLE staged_products;
