-- Leaner product indexes; see the SQLite migration of the same number.
ALTER TABLE products ADD COLUMN change_order BIGINT NOT NULL DEFAULT 0;
UPDATE products p SET change_order = ordered.n
FROM (SELECT uuid, row_number() OVER (PARTITION BY seq ORDER BY uuid) AS n FROM products) AS ordered
WHERE p.uuid = ordered.uuid;
DROP INDEX products_by_seq;
CREATE INDEX products_by_change ON products (seq, change_order);
DROP INDEX products_by_url;
