//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/storage/armstorage"

	"github.com/tripcap/tripcap"
)

// The Azure identity the lab's server gives its hosts; a subscription id
// other than the server's default, so nothing passes by assuming zeros.
const (
	azSubscription = "5c3ed6e4-7a6f-4a55-9d3b-2a4d8f0c1e27"
	// azTenant is the server's tenant, pinned as its admin would (--tenant-id).
	azTenant   = "8f2d4c1b-3e6a-4b7d-9c0e-1a2b3c4d5e6f"
	azGroup    = "rg-web"
	azLocation = "westeurope"
	// Azure names the watcher of a location so, in this group.
	azWatcherGroup = "NetworkWatcherRG"
	azWatcher      = "NetworkWatcher_" + azLocation

	// armAudience is what the SDK's users put in cloud.Configuration;
	// armCoreAudience is the twin Az PowerShell (AzureCloud's
	// ActiveDirectoryServiceEndpointResourceId) asks tokens for.
	armAudience     = "https://management.azure.com/"
	armCoreAudience = "https://management.core.windows.net/"
)

// azureLab is a lab whose server speaks Azure: its tenant id and the
// service principals a test signs in as.
type azureLab struct {
	*lab
	tenant string
	// owner is the principal setting things up, made when first needed.
	owner *signIn
}

// newAzureLab starts a lab with the Azure identity above (setup may add flags).
func newAzureLab(t *testing.T, setup func(l *lab)) *azureLab {
	t.Helper()
	l := newLabWith(t, func(l *lab) {
		l.serverArgs = append(l.serverArgs, "--subscription", azSubscription, "--resource-group", azGroup, "--tenant-id", azTenant)
		if setup != nil {
			setup(l)
		}
	})
	return &azureLab{lab: l, tenant: azTenant}
}

// servicePrincipal creates a service principal holding role at scope
// (Azure's names: "Contributor", "Reader", …) and returns its client id and secret.
func (a *azureLab) servicePrincipal(name, role string, scope tripcap.Scope) (clientID, secret string) {
	a.t.Helper()
	var sp tripcap.PrincipalRecord
	if err := json.Unmarshal(a.cli(nil, "principal", "create-service", name), &sp); err != nil || sp.ClientID == "" || sp.ClientSecret == "" {
		a.t.Fatalf("service principal %s: %v %+v", name, err, sp)
	}
	if role != "" {
		a.cli(nil, "role", "assign", name, role, "--scope", string(scope))
	}
	return sp.ClientID, sp.ClientSecret
}

// cloud points the SDK at the server: its token endpoints are the
// authority, its ARM surface the Resource Manager endpoint.
func (a *azureLab) cloud(audience string) cloud.Configuration {
	return cloud.Configuration{
		ActiveDirectoryAuthorityHost: a.apiURL + "/",
		Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			cloud.ResourceManager: {Endpoint: a.apiURL, Audience: audience},
		},
	}
}

// credential is azidentity's ClientSecretCredential against the server.
func (a *azureLab) credential(clientID, secret, audience string) *azidentity.ClientSecretCredential {
	a.t.Helper()
	cred, err := azidentity.NewClientSecretCredential(a.tenant, clientID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions:            azcore.ClientOptions{Cloud: a.cloud(audience), Transport: a.httpClient()},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		a.t.Fatal(err)
	}
	return cred
}

// armOptions are the SDK clients' options: the server's cloud, a transport
// trusting its CA, no provider registration, and rec (if any) seeing
// every response on the wire.
func (a *azureLab) armOptions(audience string, rec *recorder) *arm.ClientOptions {
	o := &arm.ClientOptions{
		ClientOptions:         policy.ClientOptions{Cloud: a.cloud(audience), Transport: a.httpClient()},
		DisableRPRegistration: true,
	}
	if rec != nil {
		o.PerRetryPolicies = []policy.Policy{rec}
	}
	return o
}

// signIn is a principal's credential and client options, for the SDK's clients.
type signIn struct {
	cred azcore.TokenCredential
	opts *arm.ClientOptions
	rec  *recorder
}

// as creates a service principal with role at scope and signs it in with
// the SDK's audience.
func (a *azureLab) as(name, role string, scope tripcap.Scope) signIn {
	a.t.Helper()
	id, secret := a.servicePrincipal(name, role, scope)
	rec := &recorder{}
	return signIn{cred: a.credential(id, secret, armAudience), opts: a.armOptions(armAudience, rec), rec: rec}
}

// storageAccountID is the resource id ARM gives a tripcap storage
// account, as the person setting things up reads it (an Owner at "*"; what
// a subscription's Reader sees is TestAzureSDKVirtualMachines').
func (a *azureLab) storageAccountID(name string) string {
	a.t.Helper()
	if a.owner == nil {
		s := a.as("portal-user", "Owner", "*")
		a.owner = &s
	}
	c, err := armstorage.NewAccountsClient(azSubscription, a.owner.cred, a.owner.opts)
	if err != nil {
		a.t.Fatal(err)
	}
	var ids []string
	for p := c.NewListPager(nil); p.More(); {
		page, err := p.NextPage(a.t.Context())
		if err != nil {
			a.t.Fatalf("listing storage accounts: %v", err)
		}
		for _, acc := range page.Value {
			ids = append(ids, deref(acc.ID))
			if strings.EqualFold(deref(acc.Name), name) {
				return deref(acc.ID)
			}
		}
	}
	a.t.Fatalf("no storage account %q among %q", name, ids)
	return ""
}

// vmID is a host's VM resource id as Azure writes it.
func vmID(name string) string { return tripcap.VMResourceID(azSubscription, azGroup, name) }

// watcherID is the resource id of the lab's network watcher.
func watcherID() string {
	return "/subscriptions/" + azSubscription + "/resourceGroups/" + azWatcherGroup + "/providers/Microsoft.Network/networkWatchers/" + azWatcher
}

// storedFile is the local file a file:// storagePath names.
func storedFile(t *testing.T, storagePath string) string {
	t.Helper()
	u, err := url.Parse(storagePath)
	if err != nil || u.Scheme != "file" {
		t.Fatalf("storagePath %q is not a file:// URL of the lab's file storage", storagePath)
	}
	return u.Path
}

// waitStored waits for the file at a storagePath to exist and stop growing.
func (a *azureLab) waitStored(storagePath string, timeout time.Duration) string {
	a.t.Helper()
	p := storedFile(a.t, storagePath)
	var last int64 = -1
	a.eventually("the capture file at "+storagePath, timeout, func() bool {
		fi, err := os.Stat(p)
		if err != nil {
			return false
		}
		done := fi.Size() > 24 && fi.Size() == last
		last = fi.Size()
		if !done {
			time.Sleep(400 * time.Millisecond)
		}
		return done
	})
	return p
}

// recorder is an SDK pipeline policy keeping every request and answer, so
// a test can check what the SDK hides (status, polling headers, bodies).
type recorder struct {
	mu  sync.Mutex
	got []exchange
}

type exchange struct {
	Method, URL string
	Status      int
	Header      http.Header
	Body        []byte
}

func (r *recorder) Do(req *policy.Request) (*http.Response, error) {
	resp, err := req.Next()
	if err != nil {
		return resp, err
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		return resp, rerr
	}
	r.mu.Lock()
	r.got = append(r.got, exchange{Method: req.Raw().Method, URL: req.Raw().URL.String(), Status: resp.StatusCode, Header: resp.Header.Clone(), Body: body})
	r.mu.Unlock()
	return resp, nil
}

// since returns the exchanges after the first n, and the count now.
func (r *recorder) since(n int) ([]exchange, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]exchange(nil), r.got[n:]...), len(r.got)
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// checkPolling checks the first answer of a long-running operation as the
// SDK's pollers need it: status want, absolute polling URLs on the
// server, and ARM's request id headers.
func (a *azureLab) checkPolling(what string, ex []exchange, want int, header string) {
	a.t.Helper()
	if len(ex) == 0 {
		a.t.Errorf("%s: no request on the wire", what)
		return
	}
	first := ex[0]
	if first.Status != want {
		a.t.Errorf("%s: first answer %d, want %d: %s", what, first.Status, want, first.Body)
	}
	if header != "" {
		v := first.Header.Get(header)
		if !strings.HasPrefix(v, a.apiURL+"/") {
			a.t.Errorf("%s: %s %q is not an absolute URL on %s", what, header, v, a.apiURL)
		}
	}
	for _, e := range ex {
		if e.Header.Get("x-ms-request-id") == "" || e.Header.Get("x-ms-correlation-request-id") == "" {
			a.t.Errorf("%s: %s %s answered without x-ms-request-id / x-ms-correlation-request-id", what, e.Method, e.URL)
			break
		}
		if e.Header.Get("Fake-Poller-Status") != "" {
			a.t.Errorf("%s: the server sent Fake-Poller-Status", what)
		}
	}
}

// armError is an SDK error's status and Azure error code.
func armError(t *testing.T, what string, err error) (int, string, string) {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("%s: %v, want an *azcore.ResponseError", what, err)
	}
	body := ""
	if re.RawResponse != nil && re.RawResponse.Body != nil {
		b, _ := io.ReadAll(re.RawResponse.Body)
		body = string(b)
	}
	return re.StatusCode, re.ErrorCode, body
}

// wantARMError checks an SDK call failed with status and Azure error code.
func wantARMError(t *testing.T, what string, err error, status int, codes ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: succeeded, want %d %v", what, status, codes)
		return
	}
	got, code, body := armError(t, what, err)
	if got != status || len(codes) > 0 && !slicesContains(codes, code) {
		t.Errorf("%s: %d %q, want %d %v (%s)", what, got, code, status, codes, body)
	}
}

// pollFast makes pollers poll every 500 ms unless the server's Retry-After says otherwise.
var pollFast = &runtime.PollUntilDoneOptions{Frequency: 500 * time.Millisecond}

// rawARM sends one request with a bearer token and returns the answer and
// its body decoded as Azure's error (zero when it is not one).
func (a *azureLab) rawARM(method, path, token string, body []byte) (*http.Response, []byte, armErrorBody) {
	a.t.Helper()
	u := path
	if strings.HasPrefix(path, "/") {
		u = a.apiURL + path
	}
	req, err := http.NewRequestWithContext(a.t.Context(), method, u, bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.httpClient().Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e armErrorBody
	_ = json.Unmarshal(b, &e)
	return resp, b, e
}

// armErrorBody is Azure's error body.
type armErrorBody struct {
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Target  string            `json:"target"`
		Details []json.RawMessage `json:"details"`
	} `json:"error"`
}

// armToken gets a token for a principal through the SDK's credential.
func armToken(t *testing.T, cred azcore.TokenCredential, audience string) string {
	t.Helper()
	tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{audience + "/.default"}})
	if err != nil {
		t.Fatalf("token for %s: %v", audience, err)
	}
	return tok.Token
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func ptr[T any](v T) *T { return &v }

// ctxFor bounds one SDK call.
func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func describe(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
