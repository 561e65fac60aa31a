package arm

import "net/http"

// resourcesVersions are the api-versions of Microsoft.Resources'
// subscriptions that the SDKs and Az PowerShell send.
func resourcesVersions() []string {
	return []string{"2014-04-01", "2015-01-01", "2016-06-01", "2018-06-01", "2019-06-01", "2019-11-01", "2020-01-01", "2021-01-01", "2022-12-01"}
}

// subscriptionJSON is a subscription as ARM lists it. Az PowerShell's
// Connect-AzAccount and Get-AzSubscription read tenantId (the server's).
type subscriptionJSON struct {
	ID             string `json:"id"`
	SubscriptionID string `json:"subscriptionId"`
	TenantID       string `json:"tenantId,omitempty"`
	DisplayName    string `json:"displayName"`
	State          string `json:"state"`
}

// registerSubscriptions serves GET /subscriptions and
// /subscriptions/{subscriptionId}: the subscriptions the control plane
// serves that the caller may see (controlplane.Service.Subscriptions; the
// framework answers 404 SubscriptionNotFound for another, as Azure does
// for one the caller has no access to), which a client such as Az
// PowerShell lists when it signs in.
func registerSubscriptions(a *API, svc Services) {
	if svc.Control == nil {
		return
	}
	p := a.Provider("Microsoft.Resources", resourcesVersions()...)
	var tenant string
	if svc.Identity != nil {
		tenant = svc.Identity.TenantID()
	}
	of := func(id string) subscriptionJSON {
		return subscriptionJSON{ID: "/subscriptions/" + id, SubscriptionID: id, TenantID: tenant, DisplayName: "tripcap " + id, State: "Enabled"}
	}
	p.Handle(http.MethodGet, "/subscriptions", "Subscriptions_List", func(w http.ResponseWriter, r *Request) error {
		subs, err := svc.Control.Subscriptions(r.Context())
		if err != nil {
			return err
		}
		out := make([]subscriptionJSON, 0, len(subs))
		for _, s := range subs {
			out = append(out, of(s))
		}
		page, next, err := Paginate(r, out)
		if err != nil {
			return err
		}
		return WritePage(w, r, page, next)
	})
	p.Handle(http.MethodGet, "/subscriptions/{subscriptionId}", "Subscriptions_Get", func(w http.ResponseWriter, r *Request) error {
		// The framework has checked that it exists.
		return WriteJSON(w, http.StatusOK, of(r.Param("subscriptionId")))
	})
}
