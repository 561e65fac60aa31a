package controlplane

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/tripcap/tripcap"
)

// storageAccounts holds the open storage backends: those configured at start
// (Config.Storage) and those added at run time, kept in the database so that
// every replica finds them (opened on first use).
type storageAccounts struct {
	mu   sync.Mutex
	open map[string]tripcap.BlobStore
}

// blobStore returns the backend of a storage account, named by its name
// or its resource id (storageAccountName).
func (s *Service) blobStore(ctx context.Context, ref string) (tripcap.BlobStore, error) {
	name, err := s.storageAccountName(ctx, ref)
	if err != nil {
		return nil, err
	}
	if b, ok := s.cfg.Storage[name]; ok {
		return b, nil
	}
	s.storage.mu.Lock()
	b, ok := s.storage.open[name]
	s.storage.mu.Unlock()
	if ok {
		return b, nil
	}
	accounts, err := s.store.FindStorageAccounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("find storage accounts: %w", err)
	}
	for _, a := range accounts {
		if a.Name != name {
			continue
		}
		if s.cfg.OpenStorage == nil {
			return nil, tripcap.Errorf(tripcap.EUNAVAILABLE, "storage account %s: this server cannot open storage URLs", name)
		}
		b, err := s.cfg.OpenStorage(ctx, a.URL)
		if err != nil {
			return nil, fmt.Errorf("open storage account %s: %w", name, err)
		}
		s.storage.mu.Lock()
		defer s.storage.mu.Unlock()
		if prev, ok := s.storage.open[name]; ok {
			return prev, nil
		}
		s.storage.open[name] = b
		return b, nil
	}
	return nil, tripcap.Errorf(tripcap.EINVALID, "storageLocation.storageId: no storage account %q (see `tripcap storage list`)", name)
}

// StorageAccountResourceID is the Azure resource id of the storage account
// name: storage accounts are in the server's subscription and resource
// group (Config.SubscriptionID, Config.ResourceGroup).
func (s *Service) StorageAccountResourceID(name string) string {
	return tripcap.StorageAccountResourceID(s.cfg.SubscriptionID, s.cfg.ResourceGroup, name)
}

// storageAccountName is the name of the storage account ref names: ref
// itself, or the name in a Microsoft.Storage/storageAccounts resource id
// (StorageAccountResourceID), matched regardless of case as ARM matches
// names. An id of another subscription or resource group, or of no
// account, is an EINVALID naming storageLocation.storageId.
func (s *Service) storageAccountName(ctx context.Context, ref string) (string, error) {
	if !strings.HasPrefix(ref, "/") {
		return ref, nil
	}
	sub, group, name, ok := tripcap.ParseStorageAccountResourceID(ref)
	if !ok {
		return "", tripcap.Errorf(tripcap.EINVALID, "storageLocation.storageId: %q is neither a storage account's name nor its resource id (/subscriptions/S/resourceGroups/G/providers/Microsoft.Storage/storageAccounts/NAME)", ref)
	}
	if !strings.EqualFold(sub, s.cfg.SubscriptionID) || !strings.EqualFold(group, s.cfg.ResourceGroup) {
		return "", tripcap.Errorf(tripcap.EINVALID, "storageLocation.storageId: %q: this server's storage accounts are in subscription %s, resource group %s (%s)",
			ref, s.cfg.SubscriptionID, s.cfg.ResourceGroup, s.StorageAccountResourceID(name))
	}
	names := slices.Collect(maps.Keys(s.cfg.Storage))
	added, err := s.store.FindStorageAccounts(ctx)
	if err != nil {
		return "", fmt.Errorf("find storage accounts: %w", err)
	}
	for _, a := range added {
		names = append(names, a.Name)
	}
	if slices.Contains(names, name) {
		return name, nil
	}
	for _, n := range names {
		if strings.EqualFold(n, name) {
			return n, nil
		}
	}
	return "", tripcap.Errorf(tripcap.EINVALID, "storageLocation.storageId: no storage account %q (see `tripcap storage list`)", name)
}

// AddStorageAccount opens url (so that a wrong URL or wrong credentials fail
// now, not at the first capture) and records it under name.
func (s *Service) AddStorageAccount(ctx context.Context, name, url string) (*tripcap.StorageAccount, error) {
	if err := tripcap.Authorize(ctx, tripcap.PermStorageWrite, nil); err != nil {
		return nil, err
	}
	if err := tripcap.ValidateName("name", name); err != nil {
		return nil, err
	}
	if _, ok := s.cfg.Storage[name]; ok {
		return nil, tripcap.Errorf(tripcap.ECONFLICT, "storage account %q is configured with --storage on the server", name)
	}
	if s.cfg.OpenStorage == nil {
		return nil, tripcap.Errorf(tripcap.EUNAVAILABLE, "this server cannot open storage URLs")
	}
	b, err := s.cfg.OpenStorage(ctx, url)
	if err != nil {
		return nil, err
	}
	a := &tripcap.StorageAccount{Name: name, URL: url, CreatedAt: s.now()}
	if err := s.store.CreateStorageAccount(ctx, a); err != nil {
		return nil, err
	}
	s.storage.mu.Lock()
	s.storage.open[name] = b
	s.storage.mu.Unlock()
	return a.Redacted(), nil
}

// FindStorageAccounts lists the configured and the added storage
// accounts. They are in the server's subscription and resource group
// (StorageAccountResourceID): reading them needs read at a scope covering
// that group ("*", the subscription or the group), as in Azure.
func (s *Service) FindStorageAccounts(ctx context.Context) ([]*tripcap.StorageAccount, error) {
	p, err := tripcap.AuthorizeSome(ctx, tripcap.PermRead)
	if err != nil {
		return nil, err
	}
	if !p.CanInGroup(tripcap.PermRead, s.cfg.SubscriptionID, s.cfg.ResourceGroup) {
		return nil, tripcap.Errorf(tripcap.EFORBIDDEN, "storage accounts are in subscription %s, resource group %s: reading them needs read at a scope covering that group, or at *",
			s.cfg.SubscriptionID, s.cfg.ResourceGroup)
	}
	added, err := s.store.FindStorageAccounts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*tripcap.StorageAccount, 0, len(s.cfg.Storage)+len(added))
	for name, b := range s.cfg.Storage {
		out = append(out, &tripcap.StorageAccount{Name: name, URL: strings.TrimSuffix(b.URL(""), "/"), CreatedAt: s.started})
	}
	out = append(out, added...)
	for i, a := range out {
		out[i] = a.Redacted()
	}
	slices.SortFunc(out, func(a, b *tripcap.StorageAccount) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// DeleteStorageAccount forgets an added storage account; its files stay where they are.
func (s *Service) DeleteStorageAccount(ctx context.Context, name string) error {
	if err := tripcap.Authorize(ctx, tripcap.PermStorageWrite, nil); err != nil {
		return err
	}
	if _, ok := s.cfg.Storage[name]; ok {
		return tripcap.Errorf(tripcap.EINVALID, "storage account %q is configured with --storage on the server; change the server's flags instead", name)
	}
	if err := s.store.DeleteStorageAccount(ctx, name); err != nil {
		return err
	}
	s.storage.mu.Lock()
	delete(s.storage.open, name)
	s.storage.mu.Unlock()
	return nil
}
