package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/sqldoc"
)

// CreateStorageAccount stores a. ECONFLICT when the name is taken.
func (s *Store) CreateStorageAccount(ctx context.Context, a *tripcap.StorageAccount) error {
	if err := sqldoc.CheckStorageAccount(a, utcNow()); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO storage_accounts (name, url, created_at) VALUES ($1, $2, $3)`, a.Name, a.URL, a.CreatedAt)
	if uniqueViolation(err) != "" {
		return sqldoc.StorageAccountTaken(a.Name)
	}
	if err != nil {
		return fmt.Errorf("create storage account %s: %w", a.Name, err)
	}
	return nil
}

// FindStorageAccounts lists accounts ordered by name.
func (s *Store) FindStorageAccounts(ctx context.Context) ([]*tripcap.StorageAccount, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, url, created_at FROM storage_accounts ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("find storage accounts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tripcap.StorageAccount, error) {
		var a tripcap.StorageAccount
		err := r.Scan(&a.Name, &a.URL, &a.CreatedAt)
		a.CreatedAt = a.CreatedAt.UTC()
		return &a, err
	})
	if err != nil {
		return nil, fmt.Errorf("find storage accounts: %w", err)
	}
	return out, nil
}

// DeleteStorageAccount removes an account. ENOTFOUND when unknown.
func (s *Store) DeleteStorageAccount(ctx context.Context, name string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM storage_accounts WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("delete storage account %s: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return sqldoc.StorageAccountNotFound(name)
	}
	return nil
}
