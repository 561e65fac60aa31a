package tripcap

import (
	"context"
	"fmt"
	"time"
)

// StorageAccount is a named storage backend that captures' storageId refers
// to: file://DIR, s3://BUCKET/PREFIX?…, or azblob://ACCOUNT/CONTAINER?….
// Credentials never appear here: the server takes them from its environment
// or configuration.
type StorageAccount struct {
	Name      string    `json:"name"`
	URL       string    `json:"url"`
	CreatedAt time.Time `json:"createdAt"`
}

// StorageAccountResourceID builds the Azure resource id of a storage
// account (Microsoft.Storage/storageAccounts), which a capture's storageId
// may be instead of the account's name.
func StorageAccountResourceID(subscription, group, name string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Storage/storageAccounts/%s", subscription, group, name)
}

// ParseStorageAccountResourceID splits a storage account's resource id,
// case-insensitively.
func ParseStorageAccountResourceID(id string) (subscription, group, name string, ok bool) {
	return ParseResourceID(id, "Microsoft.Storage", "storageAccounts")
}

// StorageAccountStore persists storage accounts added at run time, so every
// replica sees them.
type StorageAccountStore interface {
	// CreateStorageAccount stores a. ECONFLICT when the name is taken.
	CreateStorageAccount(ctx context.Context, a *StorageAccount) error
	// FindStorageAccounts lists accounts ordered by name.
	FindStorageAccounts(ctx context.Context) ([]*StorageAccount, error)
	// DeleteStorageAccount removes an account. ENOTFOUND when unknown.
	DeleteStorageAccount(ctx context.Context, name string) error
}
