-- A catalog's URL alias rules (`octogen_core::url_alias`): other URLs its
-- merchant serves a product at, declared by the mapping of its latest
-- successful import (a CSV mapping's `url` aliases), as a JSON array of
-- {alias, target}. Lookups read them only when a URL matched nothing else.
CREATE TABLE catalog_url_aliases (
    catalog_id TEXT PRIMARY KEY REFERENCES catalogs (id),
    rules TEXT NOT NULL
);
