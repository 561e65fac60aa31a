package sqlstore

import (
	"time"

	"github.com/tripcap/tripcap"
)

// CheckStorageAccount checks an account before it is stored and fills its creation time.
func CheckStorageAccount(a *tripcap.StorageAccount, now time.Time) error {
	if err := tripcap.ValidateName("name", a.Name); err != nil {
		return err
	}
	if err := checkText("url", a.URL); err != nil {
		return err
	}
	if a.URL == "" {
		return tripcap.Errorf(tripcap.EINVALID, "url: required")
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = now
	}
	return nil
}

// StorageAccountTaken is the ECONFLICT of an account name in use.
func StorageAccountTaken(name string) error {
	return tripcap.Errorf(tripcap.ECONFLICT, "a storage account named %q already exists", name)
}

// StorageAccountNotFound is the ENOTFOUND of an unknown account.
func StorageAccountNotFound(name string) error {
	return tripcap.Errorf(tripcap.ENOTFOUND, "no storage account %q", name)
}
