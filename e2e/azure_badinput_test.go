//go:build linux

package e2e

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"
)

// TestAzureBadInput: what Azure answers to bad requests, the server
// answers: an unknown or missing api-version, malformed resource ids in
// the path and in the body, out-of-range properties, a subscription that
// is not the server's, and unknown resource types; each a 4xx with Azure's
// error body naming what is wrong, the request id headers, and never a
// WWW-Authenticate challenge.
func TestAzureBadInput(t *testing.T) {
	a := newAzureLab(t, nil)
	a.addHost("h1")
	s := a.as("automation", "Contributor", "/subscriptions/"+azSubscription)
	token := armToken(t, s.cred, armAudience)
	storageID := a.storageAccountID("local")
	pc := watcherID() + "/packetCaptures/bad"
	good := func(props map[string]any) []byte {
		p := map[string]any{"target": vmID("h1"), "storageLocation": map[string]any{"storageId": storageID}}
		for k, v := range props {
			p[k] = v
		}
		b, _ := json.Marshal(map[string]any{"properties": p})
		return b
	}
	for _, c := range []struct {
		name, method, path string
		body               []byte
		status             int
		// codes are the Azure error codes Azure answers this with; mention
		// is what the message must name.
		codes   []string
		mention string
		// alt is another status Azure may answer with (0: none).
		alt int
	}{
		{"unknown api-version", "GET", watcherID() + "/packetCaptures?api-version=2015-01-01", nil, 400, []string{"InvalidApiVersionParameter", "NoRegisteredProviderFound"}, "2015-01-01", 0},
		{"api-version not a date", "GET", watcherID() + "/packetCaptures?api-version=latest", nil, 400, []string{"InvalidApiVersionParameter", "NoRegisteredProviderFound"}, "latest", 0},
		{"no api-version", "GET", watcherID() + "/packetCaptures", nil, 400, []string{"MissingApiVersionParameter"}, "api-version", 0},
		{"malformed subscription id", "GET", "/subscriptions/not-a-guid/providers/Microsoft.Network/networkWatchers?api-version=2024-05-01", nil, 400, []string{"InvalidSubscriptionId"}, "not-a-guid", 0},
		{"another subscription", "GET", "/subscriptions/11111111-2222-3333-4444-555555555555/providers/Microsoft.Network/networkWatchers?api-version=2024-05-01", nil, 404, []string{"SubscriptionNotFound"}, "11111111-2222-3333-4444-555555555555", 0},
		{"another subscription's capture", "GET", strings.Replace(pc, azSubscription, "11111111-2222-3333-4444-555555555555", 1) + "?api-version=2024-05-01", nil, 404, []string{"SubscriptionNotFound"}, "11111111-2222-3333-4444-555555555555", 0},
		{"unknown resource type", "GET", "/subscriptions/" + azSubscription + "/resourceGroups/" + azGroup + "/providers/Microsoft.Network/networkWidgets/w1?api-version=2024-05-01", nil, 400, []string{"InvalidResourceType", "NoRegisteredProviderFound"}, "networkWidgets", 404},
		{"unknown provider", "GET", "/subscriptions/" + azSubscription + "/resourceGroups/" + azGroup + "/providers/Microsoft.Nowhere/things/t1?api-version=2024-05-01", nil, 400, []string{"InvalidResourceNamespace", "NoRegisteredProviderFound"}, "Microsoft.Nowhere", 0},
		{"PUT body not JSON", "PUT", pc + "?api-version=2024-05-01", []byte(`{"properties":`), 400, []string{"InvalidRequestFormat", "InvalidRequestContent"}, "", 0},
		{"target not a resource id", "PUT", pc + "?api-version=2024-05-01", good(map[string]any{"target": "h1"}), 400, []string{"LinkedInvalidPropertyId", "InvalidRequestFormat", "InvalidResourceId"}, "target", 0},
		{"target a VM that is not there", "PUT", pc + "?api-version=2024-05-01", good(map[string]any{"target": vmID("no-such-vm")}), 404, nil, "no-such-vm", 400},
		{"storageId malformed", "PUT", pc + "?api-version=2024-05-01", good(map[string]any{"storageLocation": map[string]any{"storageId": "local"}}), 400, []string{"LinkedInvalidPropertyId", "InvalidRequestFormat", "InvalidResourceId"}, "storageId", 0},
		{"no storage location", "PUT", pc + "?api-version=2024-05-01", good(map[string]any{"storageLocation": map[string]any{}}), 400, nil, "storage", 0},
		{"time limit above 18000", "PUT", pc + "?api-version=2024-05-01", good(map[string]any{"timeLimitInSeconds": 18001}), 400, nil, "timeLimitInSeconds", 0},
		{"negative bytes per packet", "PUT", pc + "?api-version=2024-05-01", good(map[string]any{"bytesToCapturePerPacket": -1}), 400, nil, "bytesToCapturePerPacket", 0},
		{"total bytes above 4294967295", "PUT", pc + "?api-version=2024-05-01", good(map[string]any{"totalBytesPerSession": 4294967296}), 400, nil, "totalBytesPerSession", 0},
		{"filePath not .cap under /var/captures", "PUT", pc + "?api-version=2024-05-01", good(map[string]any{"storageLocation": map[string]any{"filePath": "/etc/passwd"}}), 400, nil, "filePath", 0},
		{"unknown protocol", "PUT", pc + "?api-version=2024-05-01", good(map[string]any{"filters": []any{map[string]any{"protocol": "ICMP"}}}), 400, nil, "protocol", 0},
		{"bad port range", "PUT", pc + "?api-version=2024-05-01", good(map[string]any{"filters": []any{map[string]any{"protocol": "TCP", "localPort": "80-85;443"}}}), 400, nil, "localPort", 0},
		{"bad target type", "PUT", pc + "?api-version=2024-05-01", good(map[string]any{"targetType": "AzureToaster"}), 400, nil, "targetType", 0},
		{"capture name with a slash", "PUT", watcherID() + "/packetCaptures/a%2Fb?api-version=2024-05-01", good(nil), 400, nil, "", 404},
		{"capture of a watcher that is not there", "GET", "/subscriptions/" + azSubscription + "/resourceGroups/" + azWatcherGroup + "/providers/Microsoft.Network/networkWatchers/nope/packetCaptures/x?api-version=2024-05-01", nil, 404, nil, "nope", 0},
	} {
		resp, body, e := a.rawARM(c.method, c.path, token, c.body)
		if resp.StatusCode != c.status && (c.alt == 0 || resp.StatusCode != c.alt) {
			t.Errorf("%s: %s %s: %d, want %d: %s", c.name, c.method, c.path, resp.StatusCode, c.status, body)
			continue
		}
		if e.Error.Code == "" || e.Error.Message == "" {
			t.Errorf("%s: not Azure's error body: %s", c.name, body)
			continue
		}
		if len(c.codes) > 0 && !slicesContains(c.codes, e.Error.Code) {
			t.Errorf("%s: code %q, want one of %q: %s", c.name, e.Error.Code, c.codes, body)
		}
		if c.mention != "" && !strings.Contains(strings.ToLower(e.Error.Message+" "+e.Error.Target), strings.ToLower(c.mention)) {
			t.Errorf("%s: the error does not name %q: %s", c.name, c.mention, body)
		}
		if resp.Header.Get("x-ms-request-id") == "" || resp.Header.Get("WWW-Authenticate") != "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s: headers %v", c.name, resp.Header)
		}
	}
	// None of the refused PUTs made a capture.
	resp, body, _ := a.rawARM("GET", pc+"?api-version=2024-05-01", token, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("after the refused PUTs, GET %s: %d %s", pc, resp.StatusCode, body)
	}
}

// TestAzureAuthErrors: tokens and roles as Azure checks them. No token,
// a malformed one, and one for an audience the server does not serve are
// 401 with ARM's codes and no challenge; the token endpoints refuse another audience and a
// wrong secret as Azure AD does (AADSTS codes); a Reader reads and is
// refused writes with 403 AuthorizationFailed naming the action and the
// scope; a Contributor of the subscription writes there.
func TestAzureAuthErrors(t *testing.T) {
	a := newAzureLab(t, nil)
	a.addHost("h1")
	list := watcherID() + "/packetCaptures?api-version=2024-05-01"
	for _, c := range []struct {
		name, token string
		codes       []string
	}{
		{"no token", "", []string{"AuthenticationFailed"}},
		{"not a JWT", "not-a-token", []string{"InvalidAuthenticationToken", "AuthenticationFailed"}},
		{"a JWT signed by someone else", "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJodHRwczovL21hbmFnZW1lbnQuYXp1cmUuY29tLyIsImV4cCI6NDEwMjQ0NDgwMH0.c2lnbmF0dXJl", []string{"InvalidAuthenticationToken", "AuthenticationFailed"}},
	} {
		resp, body, e := a.rawARM("GET", list, c.token, nil)
		if resp.StatusCode != http.StatusUnauthorized || !slicesContains(c.codes, e.Error.Code) || resp.Header.Get("WWW-Authenticate") != "" {
			t.Errorf("%s: %d %v %s, want 401 %q without WWW-Authenticate", c.name, resp.StatusCode, resp.Header, body, c.codes)
		}
	}

	clientID, secret := a.servicePrincipal("automation", "Contributor", "/subscriptions/"+azSubscription)

	// The token endpoints: another audience, a wrong secret.
	// aad checks a refusal: status, error and AADSTS code, each one of
	// the given ("|"-separated) where Azure AD's answer and a deliberate
	// one both fit what the SDK does (it fails either way).
	aad := func(what, path string, form url.Values, status int, errCode string, aadsts string) {
		t.Helper()
		oneOf := func(got, want string) bool { return slicesContains(strings.Split(want, "|"), got) }
		resp, err := a.httpClient().PostForm(a.apiURL+"/"+a.tenant+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var e struct {
			Error            string `json:"error"`
			ErrorDescription string `json:"error_description"`
			ErrorCodes       []int  `json:"error_codes"`
			Timestamp        string `json:"timestamp"`
			TraceID          string `json:"trace_id"`
			CorrelationID    string `json:"correlation_id"`
		}
		_ = json.Unmarshal(b, &e)
		code, _, _ := strings.Cut(e.ErrorDescription, ":")
		if resp.StatusCode != status && !(errCode == "unauthorized_client|invalid_client" && resp.StatusCode == http.StatusUnauthorized) ||
			!oneOf(e.Error, errCode) || !oneOf(code, aadsts) || len(e.ErrorCodes) == 0 ||
			e.Timestamp == "" || e.TraceID == "" || e.CorrelationID == "" || resp.Header.Get("WWW-Authenticate") != "" {
			t.Errorf("%s: %d %s, want %d %s %s… with error_codes, timestamp, trace_id, correlation_id", what, resp.StatusCode, b, status, errCode, aadsts)
		}
		if strings.Contains(string(b), secret) {
			t.Errorf("%s: the answer holds the secret", what)
		}
	}
	cc := func(extra ...string) url.Values {
		v := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return v
	}
	aad("v2, scope of another audience", "/oauth2/v2.0/token", cc("scope", "https://vault.azure.net/.default"), 400, "invalid_resource", "AADSTS500011")
	aad("v1, resource of another audience", "/oauth2/token", cc("resource", "https://graph.microsoft.com/"), 400, "invalid_resource", "AADSTS500011")
	aad("v2, wrong secret", "/oauth2/v2.0/token", cc("scope", armAudience+"/.default", "client_secret", "not-the-secret"), 401, "invalid_client", "AADSTS7000215")
	// Azure AD says an unknown client id is unknown (AADSTS700016); not
	// telling it from a wrong secret (AADSTS7000215, 401) is as good.
	aad("v1, unknown client", "/oauth2/token", cc("resource", armAudience, "client_id", "00000000-1111-2222-3333-444444444444"), 400, "unauthorized_client|invalid_client", "AADSTS700016|AADSTS7000215")

	// The SDK's credential for another audience fails as azidentity reports Azure AD's refusals.
	cred := a.credential(clientID, secret, armAudience)
	_, err := cred.GetToken(ctxFor(t, 30*time.Second), policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) || afe.RawResponse == nil || afe.RawResponse.StatusCode != http.StatusBadRequest {
		t.Errorf("azidentity asking for another audience: %v", err)
	}
	// Both of ARM's audiences work.
	for _, aud := range []string{armAudience, armCoreAudience} {
		tok := armToken(t, a.credential(clientID, secret, aud), aud)
		if r, body, _ := a.rawARM("GET", list, tok, nil); r.StatusCode != http.StatusOK {
			t.Errorf("a token for %s: %d %s", aud, r.StatusCode, body)
		}
	}

	// A Reader reads, and may not write.
	reader := a.as("auditor", "Reader", "/subscriptions/"+azSubscription)
	pcs, err := armnetwork.NewPacketCapturesClient(azSubscription, reader.cred, reader.opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pcs.NewListPager(azWatcherGroup, azWatcher, nil).NextPage(ctxFor(t, 30*time.Second)); err != nil {
		t.Errorf("a Reader listing captures: %v", err)
	}
	_, err = pcs.BeginCreate(ctxFor(t, 30*time.Second), azWatcherGroup, azWatcher, "nope", armnetwork.PacketCapture{Properties: &armnetwork.PacketCaptureParameters{
		Target: ptr(vmID("h1")), StorageLocation: &armnetwork.PacketCaptureStorageLocation{FilePath: ptr("/var/captures/nope.cap")},
	}}, nil)
	if err == nil {
		t.Fatal("a Reader created a capture")
	}
	status, code, errBody := armError(t, "a Reader creating a capture", err)
	if status != http.StatusForbidden || code != "AuthorizationFailed" || !strings.Contains(errBody, "Microsoft.Network/networkWatchers/packetCaptures/write") ||
		!strings.Contains(strings.ToLower(errBody), strings.ToLower(watcherID()+"/packetCaptures/nope")) {
		t.Errorf("a Reader creating a capture: %d %s %s, want 403 AuthorizationFailed naming the action and the scope", status, code, errBody)
	}
	nw, err := armnetwork.NewWatchersClient(azSubscription, reader.cred, reader.opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = nw.CreateOrUpdate(ctxFor(t, 30*time.Second), azGroup, "nw-eastus", armnetwork.Watcher{Location: ptr("eastus")}, nil)
	wantARMError(t, "a Reader creating a watcher", err, http.StatusForbidden, "AuthorizationFailed")

	// A Contributor of another resource group may not capture on h1 (in
	// rg-web); the Contributor of the subscription may.
	narrow := a.as("web-team", "Contributor", "/subscriptions/"+azSubscription+"/resourceGroups/rg-other")
	npcs, err := armnetwork.NewPacketCapturesClient(azSubscription, narrow.cred, narrow.opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = npcs.BeginCreate(ctxFor(t, 30*time.Second), azWatcherGroup, azWatcher, "narrow", armnetwork.PacketCapture{Properties: &armnetwork.PacketCaptureParameters{
		Target: ptr(vmID("h1")), StorageLocation: &armnetwork.PacketCaptureStorageLocation{FilePath: ptr("/var/captures/narrow.cap")},
	}}, nil)
	wantARMError(t, "a Contributor of another resource group capturing on h1", err, http.StatusForbidden, "AuthorizationFailed")
	cpcs, err := armnetwork.NewPacketCapturesClient(azSubscription, a.credential(clientID, secret, armAudience), a.armOptions(armAudience, nil))
	if err != nil {
		t.Fatal(err)
	}
	p, err := cpcs.BeginCreate(ctxFor(t, 30*time.Second), azWatcherGroup, azWatcher, "allowed", armnetwork.PacketCapture{Properties: &armnetwork.PacketCaptureParameters{
		Target: ptr(vmID("h1")), StorageLocation: &armnetwork.PacketCaptureStorageLocation{FilePath: ptr("/var/captures/allowed.cap")}, TimeLimitInSeconds: ptr[int32](5),
	}}, nil)
	if err == nil {
		_, err = p.PollUntilDone(ctxFor(t, 60*time.Second), pollFast)
	}
	if err != nil {
		t.Errorf("a Contributor of the subscription creating a capture: %v", err)
	}

	// A token for an audience the server no longer serves (restarted with
	// --arm-audience management.azure.com only) is one for another audience.
	coreToken := armToken(t, a.credential(clientID, secret, armCoreAudience), armCoreAudience)
	a.stopServer()
	a.startServer("--arm-audience", armAudience)
	r, body, e := a.rawARM("GET", list, coreToken, nil)
	if r.StatusCode != http.StatusUnauthorized || e.Error.Code != "InvalidAuthenticationTokenAudience" || r.Header.Get("WWW-Authenticate") != "" ||
		!strings.Contains(e.Error.Message, armAudience) {
		t.Errorf("a token for %s at a server serving %s only: %d %v %s, want 401 InvalidAuthenticationTokenAudience naming the audience allowed, no challenge",
			armCoreAudience, armAudience, r.StatusCode, r.Header, body)
	}
	aad("v1, an audience no longer served", "/oauth2/token", cc("resource", armCoreAudience), 400, "invalid_resource", "AADSTS500011")
	if r, body, _ := a.rawARM("GET", list, armToken(t, a.credential(clientID, secret, armAudience), armAudience), nil); r.StatusCode != http.StatusOK {
		t.Errorf("a token for %s after the restart: %d %s", armAudience, r.StatusCode, body)
	}
}
