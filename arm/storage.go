package arm

import (
	"net/http"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
)

// storageVersions are Microsoft.Storage's api-versions, up to the newest
// of the armstorage SDK.
func storageVersions() []string {
	return []string{
		"2015-06-15", "2016-01-01", "2016-05-01", "2016-12-01",
		"2017-06-01", "2017-10-01",
		"2018-02-01", "2018-07-01", "2018-11-01",
		"2019-04-01", "2019-06-01",
		"2021-01-01", "2021-02-01", "2021-04-01", "2021-06-01", "2021-08-01", "2021-09-01",
		"2022-05-01", "2022-09-01",
		"2023-01-01", "2023-04-01", "2023-05-01",
		"2024-01-01", "2025-01-01",
	}
}

// StorageAccount is Microsoft.Storage/storageAccounts: one of tripcap's
// storage accounts, whose blob endpoint is the account's URL.
type StorageAccount struct {
	ID         string                   `json:"id"`
	Name       string                   `json:"name"`
	Type       string                   `json:"type"`
	Location   string                   `json:"location"`
	Kind       string                   `json:"kind"`
	SKU        StorageSKU               `json:"sku"`
	Properties StorageAccountProperties `json:"properties"`
}

// StorageSKU is a storage account's SKU.
type StorageSKU struct {
	Name string `json:"name"`
	Tier string `json:"tier"`
}

// StorageAccountProperties are a storage account's properties.
type StorageAccountProperties struct {
	ProvisioningState string           `json:"provisioningState"`
	CreationTime      time.Time        `json:"creationTime"`
	PrimaryLocation   string           `json:"primaryLocation"`
	StatusOfPrimary   string           `json:"statusOfPrimary"`
	PrimaryEndpoints  StorageEndpoints `json:"primaryEndpoints"`
}

// StorageEndpoints are a storage account's endpoints.
type StorageEndpoints struct {
	Blob string `json:"blob"`
}

const storageType = "Microsoft.Storage/storageAccounts"

// storageAccountOf is a storage account (redacted: its URL has no
// secret) as the resource id, in the server's subscription and resource
// group, and location.
func storageAccountOf(a *tripcap.StorageAccount, id, location string) *StorageAccount {
	blob := a.URL
	if !strings.HasSuffix(blob, "/") {
		blob += "/"
	}
	return &StorageAccount{
		ID: id, Name: a.Name, Type: storageType, Location: location, Kind: "StorageV2",
		SKU: StorageSKU{Name: "Standard_LRS", Tier: "Standard"},
		Properties: StorageAccountProperties{ProvisioningState: "Succeeded", CreationTime: a.CreatedAt.UTC(),
			PrimaryLocation: location, StatusOfPrimary: "available", PrimaryEndpoints: StorageEndpoints{Blob: blob}},
	}
}

// registerStorage serves Microsoft.Storage read-only: tripcap's storage
// accounts, all in the server's subscription and resource group (so a
// capture's storageId is the id these answers give). They are added with
// `tripcap storage add`, which takes a backend URL ARM has no word for.
func registerStorage(a *API, svc Services) {
	if svc.Control == nil {
		return
	}
	c := svc.Control
	p := a.Provider("Microsoft.Storage", storageVersions()...)
	const (
		sub      = "/subscriptions/{subscriptionId}"
		group    = sub + "/resourceGroups/{resourceGroupName}"
		accounts = "/providers/Microsoft.Storage/storageAccounts"
	)
	// inScope lists the accounts when the path's subscription (and group,
	// when given) are the server's; none otherwise.
	inScope := func(r *Request) ([]*StorageAccount, error) {
		all, err := c.FindStorageAccounts(r.Context())
		if err != nil {
			return nil, err
		}
		cfg := c.Config()
		if !strings.EqualFold(r.Param("subscriptionId"), cfg.SubscriptionID) {
			return nil, nil
		}
		if g := r.Param("resourceGroupName"); g != "" && !strings.EqualFold(g, cfg.ResourceGroup) {
			return nil, nil
		}
		out := make([]*StorageAccount, len(all))
		for i, a := range all {
			out[i] = storageAccountOf(a, c.StorageAccountResourceID(a.Name), cfg.DefaultLocation)
		}
		return out, nil
	}
	list := func(w http.ResponseWriter, r *Request) error {
		all, err := inScope(r)
		if err != nil {
			return err
		}
		page, next, err := Paginate(r, all)
		if err != nil {
			return err
		}
		return WritePage(w, r, page, next)
	}
	p.Handle(http.MethodGet, sub+accounts, "StorageAccounts_List", list)
	p.Handle(http.MethodGet, group+accounts, "StorageAccounts_ListByResourceGroup", list)
	p.Handle(http.MethodGet, group+accounts+"/{accountName}", "StorageAccounts_GetProperties", func(w http.ResponseWriter, r *Request) error {
		all, err := inScope(r)
		if err != nil {
			return err
		}
		name := r.Param("accountName")
		var found *StorageAccount
		for _, a := range all {
			if a.Name == name || found == nil && strings.EqualFold(a.Name, name) {
				found = a
			}
		}
		if found == nil {
			return notFound(storageType, name, r.Param("resourceGroupName"))
		}
		return WriteJSON(w, http.StatusOK, found)
	})
}
