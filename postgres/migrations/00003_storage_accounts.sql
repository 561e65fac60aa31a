-- Storage accounts added at run time (tripcap storage add).

-- +goose Up
CREATE TABLE storage_accounts (
	name       TEXT COLLATE "C" PRIMARY KEY,
	url        TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE storage_accounts;
