package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/sqldoc"
)

// CreateStorageAccount stores a. ECONFLICT when the name is taken.
func (s *Store) CreateStorageAccount(ctx context.Context, a *tripcap.StorageAccount) error {
	if err := sqldoc.CheckStorageAccount(a, utcNow()); err != nil {
		return err
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO storage_accounts (name, url, created_at) VALUES (?, ?, ?)`, a.Name, a.URL, formatTime(a.CreatedAt))
		return err
	})
	if c := constraint(err); c == "primarykey" || c == "unique" {
		return sqldoc.StorageAccountTaken(a.Name)
	}
	if err != nil {
		return fmt.Errorf("create storage account %s: %w", a.Name, err)
	}
	return nil
}

// FindStorageAccounts lists accounts ordered by name.
func (s *Store) FindStorageAccounts(ctx context.Context) ([]*tripcap.StorageAccount, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT name, url, created_at FROM storage_accounts ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("find storage accounts: %w", err)
	}
	defer rows.Close()
	var out []*tripcap.StorageAccount
	for rows.Next() {
		var a tripcap.StorageAccount
		if err := rows.Scan(&a.Name, &a.URL, timeText{&a.CreatedAt}); err != nil {
			return nil, fmt.Errorf("find storage accounts: %w", err)
		}
		out = append(out, &a)
	}
	return out, rows.Err()
}

// DeleteStorageAccount removes an account. ENOTFOUND when unknown.
func (s *Store) DeleteStorageAccount(ctx context.Context, name string) error {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM storage_accounts WHERE name = ?`, name)
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("delete storage account %s: %w", name, err)
	}
	if n == 0 {
		return sqldoc.StorageAccountNotFound(name)
	}
	return nil
}
