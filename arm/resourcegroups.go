package arm

import (
	"net/http"

	"github.com/tripcap/tripcap"
)

// resourceGroupVersions are the api-versions of Microsoft.Resources'
// resourceGroups the SDKs, Az PowerShell and the Azure CLI send
// (armresources v1 2021-04-01, v3 2025-04-01), beside resourcesVersions.
func resourceGroupVersions() []string {
	return []string{"2019-05-01", "2019-10-01", "2020-06-01", "2021-04-01", "2022-09-01", "2023-07-01", "2024-03-01", "2024-07-01", "2024-11-01", "2025-04-01"}
}

// resourceGroupJSON is a resource group as ARM answers it.
type resourceGroupJSON struct {
	ID         string                  `json:"id"`
	Name       string                  `json:"name"`
	Type       string                  `json:"type"`
	Location   string                  `json:"location"`
	Properties resourceGroupProperties `json:"properties"`
}

type resourceGroupProperties struct {
	ProvisioningState string `json:"provisioningState"`
}

func resourceGroupOf(g tripcap.ResourceGroup) resourceGroupJSON {
	return resourceGroupJSON{ID: "/subscriptions/" + g.SubscriptionID + "/resourceGroups/" + g.Name, Name: g.Name,
		Type: "Microsoft.Resources/resourceGroups", Location: g.Location,
		Properties: resourceGroupProperties{ProvisioningState: string(tripcap.ProvisioningSucceeded)}}
}

// registerResourceGroups serves ResourceGroups_List and ResourceGroups_Get
// (Get-AzResourceGroup, az group list/show): the groups that hold the
// subscription's hosts, watchers and storage accounts the caller may read
// (controlplane.Service.ResourceGroups).
func registerResourceGroups(a *API, svc Services) {
	if svc.Control == nil {
		return
	}
	p := a.Provider("Microsoft.Resources", resourceGroupVersions()...)
	p.Handle(http.MethodGet, "/subscriptions/{subscriptionId}/resourcegroups", "ResourceGroups_List", func(w http.ResponseWriter, r *Request) error {
		gs, err := svc.Control.ResourceGroups(r.Context(), r.Param("subscriptionId"))
		if err != nil {
			return err
		}
		out := make([]resourceGroupJSON, 0, len(gs))
		for _, g := range gs {
			out = append(out, resourceGroupOf(g))
		}
		page, next, err := Paginate(r, out)
		if err != nil {
			return err
		}
		return WritePage(w, r, page, next)
	})
	p.Handle(http.MethodGet, "/subscriptions/{subscriptionId}/resourcegroups/{resourceGroupName}", "ResourceGroups_Get", func(w http.ResponseWriter, r *Request) error {
		g, err := svc.Control.FindResourceGroup(r.Context(), r.Param("subscriptionId"), r.Param("resourceGroupName"))
		if err != nil {
			return Recode(err, tripcap.ENOTFOUND, "ResourceGroupNotFound")
		}
		return WriteJSON(w, http.StatusOK, resourceGroupOf(*g))
	})
}
