//go:build linux

package e2e

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/tripcap/tripcap"
	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/tlscert"
)

// TestAADTokenEndpointsOfTheBinary: the server's flags shape the Azure
// AD-shaped endpoints: azidentity's ClientSecretCredential gets a token for
// a configured ARM audience (and is refused one not configured), ADAL v1's
// form post works, the tenant id (published in the OpenID configuration)
// is the same after a restart and the token still accepted, and
// --tenant-id pins it (the old tenant is then unknown: AADSTS90002).
func TestAADTokenEndpointsOfTheBinary(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--public-url", "https://tripcap.test:8443", "--arm-audience", "https://management.azure.com/,https://management.usgovcloudapi.net/"}
	base, stop := startLoopbackServer(t, dir, "server", args...)
	tokenFile := filepath.Join(dir, "server", "admin.token")
	waitFile(t, tokenFile)
	pool, err := tlscert.LoadPool(filepath.Join(dir, "server", "tls", tlscert.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	httpc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlscert.ClientConfig(pool), ForceAttemptHTTP2: true}, Timeout: 30 * time.Second}
	b, _ := os.ReadFile(tokenFile)
	admin, err := tchttp.NewClient(base, strings.TrimSpace(string(b)), tchttp.WithTLSConfig(tlscert.ClientConfig(pool)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	sp, err := admin.CreateServicePrincipal(ctx, "automation")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.AssignRole(ctx, sp.ID, tripcap.RoleContributor, tripcap.ScopeAll); err != nil {
		t.Fatal(err)
	}
	tenantOf := func(base string) string {
		t.Helper()
		resp, err := httpc.Get(base + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var d struct {
			TenantID string `json:"tenant_id"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&d); err != nil || len(d.TenantID) != 36 {
			t.Fatalf("tenant id %q: %v", d.TenantID, err)
		}
		return d.TenantID
	}
	tenant := tenantOf(base)
	getToken := func(base, tenant, scope string) (string, error) {
		cred, err := azidentity.NewClientSecretCredential(tenant, sp.ClientID, sp.ClientSecret, &azidentity.ClientSecretCredentialOptions{
			ClientOptions:            azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: base}, Transport: httpc, Retry: policy.RetryOptions{MaxRetries: -1}},
			DisableInstanceDiscovery: true,
		})
		if err != nil {
			return "", err
		}
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
		return tok.Token, err
	}
	api := func(base, token string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/api/v1/hosts", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := httpc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	gov, err := getToken(base, tenant, "https://management.usgovcloudapi.net/.default")
	if err != nil {
		t.Fatal(err)
	}
	if st := api(base, gov); st != 200 {
		t.Fatalf("the token on the API: %d", st)
	}
	_, err = getToken(base, tenant, "https://management.core.windows.net//.default")
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) || !strings.Contains(err.Error(), "AADSTS500011") {
		t.Fatalf("an audience not configured: %v", err)
	}
	// ADAL v1, as the 2017 seed's code sends it.
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {sp.ClientID}, "client_secret": {sp.ClientSecret}, "resource": {"https://management.azure.com/"}}
	resp, err := httpc.PostForm(base+"/"+tenant+"/oauth2/token", form)
	if err != nil {
		t.Fatal(err)
	}
	var v1 map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&v1)
	resp.Body.Close()
	if resp.StatusCode != 200 || v1["resource"] != "https://management.azure.com/" || v1["expires_on"] == nil {
		t.Fatalf("v1: %d %v", resp.StatusCode, v1)
	}
	if st := api(base, v1["access_token"].(string)); st != 200 {
		t.Fatalf("the v1 token on the API: %d", st)
	}

	// A restart (another port, the same public URL): the same tenant, and
	// the token issued before still accepted.
	stop()
	base, stop = startLoopbackServer(t, dir, "restarted", args...)
	if got := tenantOf(base); got != tenant {
		t.Fatalf("tenant after a restart: %s, was %s", got, tenant)
	}
	if st := api(base, gov); st != 200 {
		t.Fatalf("the token after a restart: %d", st)
	}

	// --tenant-id pins it.
	stop()
	pinned := "0b8a4f7e-3c2d-4e1f-9a6b-5c4d3e2f1a0b"
	base, _ = startLoopbackServer(t, dir, "pinned", append(args, "--tenant-id", strings.ToUpper(pinned))...)
	if got := tenantOf(base); got != pinned {
		t.Fatalf("pinned tenant: %s", got)
	}
	if _, err := getToken(base, pinned, "https://management.azure.com/.default"); err != nil {
		t.Fatalf("a token of the pinned tenant: %v", err)
	}
	if _, err := getToken(base, tenant, "https://management.azure.com/.default"); err == nil || !strings.Contains(err.Error(), "AADSTS90002") {
		t.Fatalf("the old tenant once pinned: %v", err)
	}
}
