-- Storage accounts added at run time (tripcap storage add). Numbered 00003
-- so that it sorts after the alerting tables.

-- +goose Up
CREATE TABLE storage_accounts (
	name       TEXT PRIMARY KEY,
	url        TEXT NOT NULL,
	created_at TEXT NOT NULL
);

-- +goose Down
DROP TABLE storage_accounts;
