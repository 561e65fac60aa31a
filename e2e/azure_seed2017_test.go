//go:build linux

package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"
)

// seed2017 is the 2017 seed's C# function (HttpTrigger-CSharp), ported to
// Go request for request: what its ADAL AcquireToken and HttpWebRequests
// put on the wire, and what its classes read back. Only the endpoint and
// the credentials differ from the seed.
type seed2017 struct {
	t *testing.T
	// login and endpoint replace "https://login.windows.net/" and
	// "https://management.azure.com"; client trusts the server's CA.
	login, endpoint string
	client          *http.Client
	tenantID        string
	clientID        string
	secret          string
	// what the run saw, for the test
	deleteStatus, putStatus int
	putBody                 []byte
	putRequest              []byte
}

// webhookInputParameters is the seed's WebhookInputParameters.
type webhookInputParameters struct {
	SubscriptionID              string `json:"subscriptionId"`
	NetworkWatcherResourceGroup string `json:"networkWatcherResourceGroup"`
	NetworkWatcherName          string `json:"networkWatcherName"`
	PacketCaptureName           string `json:"packetCaptureName"`
	StorageID                   string `json:"storageID"`
	TimeLimit                   int32  `json:"timeLimit"`
	TargetVM                    string `json:"targetVM"`
}

// The seed's PacketCaptureResponseBody, with its C# types: Json.NET fails
// the run if a number does not fit the int it declares.
type pcResponseBody struct {
	Name       string `json:"name"`
	ID         string `json:"id"`
	Etag       string `json:"etag"`
	Properties struct {
		ProvisioningState       string `json:"provisioningState"`
		Target                  string `json:"target"`
		BytesToCapturePerPacket int32  `json:"bytesToCapturePerPacket"`
		TotalBytesPerSession    int32  `json:"totalBytesPerSession"`
		TimeLimitInSeconds      int32  `json:"timeLimitInSeconds"`
		StorageLocation         struct {
			StorageID   string `json:"storageId"`
			StoragePath string `json:"storagePath"`
			FilePath    string `json:"filePath"`
		} `json:"storageLocation"`
		Filters             []json.RawMessage `json:"filters"`
		CaptureStartTime    *string           `json:"captureStartTime"`
		PacketCaptureStatus *string           `json:"packetCaptureStatus"`
		PacketCaptureError  []any             `json:"packetCaptureError"`
	} `json:"properties"`
}

// requestBody is the exact text Json.NET writes for the seed's
// PacketCaptureRequestBody with NullValueHandling.Ignore and
// Formatting.Indented: its property names as the seed spells them
// ("bytestToCapturePerPacket" included), declaration order, two-space
// indent, Windows line ends (the 2017 Functions host ran on Windows), the
// two ints it never sets as 0, filePath and storagePath (null) left out,
// and the empty filters list.
func (inParams webhookInputParameters) requestBody() string {
	lines := []string{
		`{`,
		`  "properties": {`,
		`    "target": ` + jsonString(inParams.TargetVM) + `,`,
		`    "bytestToCapturePerPacket": 0,`,
		`    "totalBytesPerSession": 0,`,
		`    "timeLimitInSeconds": ` + strconv.Itoa(int(inParams.TimeLimit)) + `,`,
		`    "storageLocation": {`,
		`      "storageId": ` + jsonString(inParams.StorageID),
		`    },`,
		`    "filters": []`,
		`  }`,
		`}`,
	}
	return strings.Join(lines, "\r\n")
}

// jsonString quotes as Json.NET does by default (it leaves '/' alone).
func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// run is the seed's Run: the function's answer text.
func (f *seed2017) run(jsonContent string) string {
	var inParams webhookInputParameters
	if err := json.Unmarshal([]byte(jsonContent), &inParams); err != nil {
		f.t.Fatalf("the seed's input: %v", err)
	}
	token := f.getAuthorizationToken()
	packetCaptureRequestURI := fmt.Sprintf("%s/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/networkWatchers/%s/packetCaptures/%s?api-version=2016-03-30",
		f.endpoint, inParams.SubscriptionID, inParams.NetworkWatcherResourceGroup, inParams.NetworkWatcherName, inParams.PacketCaptureName)
	// Errors from delete (404 not found) mean the capture did not exist.
	del := f.request(packetCaptureRequestURI, token, "Delete", nil)
	f.deleteStatus = del.status
	body := inParams.requestBody()
	f.putRequest = []byte(body)
	put := f.request(packetCaptureRequestURI, token, "Put", &body)
	f.putStatus, f.putBody = put.status, put.body
	if put.err == nil && put.status == http.StatusCreated {
		var pcrbObj pcResponseBody
		if err := json.Unmarshal(put.body, &pcrbObj); err != nil {
			// Json.NET throws: the function fails with a 500.
			f.t.Errorf("the seed cannot read the PUT's answer into its classes: %v\n%s", err, put.body)
			return ""
		}
		return "Packet Capture successfully created and will upload to StoragePath: " + pcrbObj.Properties.StorageLocation.StoragePath
	}
	return "Error creating packet capture"
}

type seedResponse struct {
	status int
	header http.Header
	body   []byte
	err    error
}

// request is the seed's Request + getHttpResponse: HttpWebRequest with a
// bearer token and Content-Type application/json, the body (if any) with
// its Content-Length. .NET's HttpWebRequest writes a known verb given as
// "Delete" or "Put" in upper case (KnownHttpVerb.Parse ignores case).
// GetResponse throws on a non-2xx status, which the seed logs and turns into null.
func (f *seed2017) request(requestURI, token, requestType string, requestContent *string) seedResponse {
	var body io.Reader
	if requestContent != nil {
		body = strings.NewReader(*requestContent)
	}
	req, err := http.NewRequestWithContext(f.t.Context(), strings.ToUpper(requestType), requestURI, body)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	if requestContent != nil {
		req.ContentLength = int64(len(*requestContent))
		// ServicePointManager.Expect100Continue is true by default.
		req.Header.Set("Expect", "100-continue")
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return seedResponse{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	f.t.Logf("seed 2017: %s %s → %d %s", req.Method, requestURI, resp.StatusCode, b)
	return seedResponse{status: resp.StatusCode, header: resp.Header, body: b, err: err}
}

// getAuthorizationToken is ADAL v1's AcquireToken(resource:
// "https://management.azure.com/", ClientCredential): a form POST to
// {authority}/oauth2/token with the client credentials grant and the
// resource, and ADAL's reading of the answer (expires_in and expires_on
// may be strings, as Azure AD v1 writes them).
func (f *seed2017) getAuthorizationToken() string {
	authContextURL := f.login + f.tenantID
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {f.clientID},
		"client_secret": {f.secret},
		"resource":      {"https://management.azure.com/"},
	}
	req, err := http.NewRequestWithContext(f.t.Context(), http.MethodPost, authContextURL+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("x-client-SKU", "PCL.Desktop")
	req.Header.Set("x-client-Ver", "2.28.3.860")
	req.Header.Set("client-request-id", "0f3a8c2e-5b2d-4a51-9c8e-7d6b1e2f3a4b")
	req.Header.Set("return-client-request-id", "true")
	resp, err := f.client.Do(req)
	if err != nil {
		f.t.Fatalf("ADAL token request: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var tok struct {
		TokenType   string          `json:"token_type"`
		AccessToken string          `json:"access_token"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
		ExpiresOn   json.RawMessage `json:"expires_on"`
		Resource    string          `json:"resource"`
	}
	if err := json.Unmarshal(b, &tok); err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		f.t.Fatalf("Failed to obtain the JWT token: %d %v %s", resp.StatusCode, err, b)
	}
	if !strings.EqualFold(tok.TokenType, "Bearer") || tok.Resource != "https://management.azure.com/" {
		f.t.Errorf("ADAL v1 token answer: token_type %q resource %q, want Bearer and the resource asked for", tok.TokenType, tok.Resource)
	}
	in, on := adalNumber(tok.ExpiresIn), adalNumber(tok.ExpiresOn)
	if in <= 0 || on <= time.Now().Unix() || on > time.Now().Add(25*time.Hour).Unix() {
		f.t.Errorf("ADAL v1 token answer: expires_in %s expires_on %s (ADAL needs both: seconds, and Unix seconds)", tok.ExpiresIn, tok.ExpiresOn)
	}
	return tok.AccessToken
}

// dotNetFrameworkClient speaks HTTP as .NET Framework's HttpWebRequest
// does: HTTP/1.1 only, waiting up to 350 ms for a 100 Continue.
func dotNetFrameworkClient(c *http.Client) *http.Client {
	tr := c.Transport.(*http.Transport).Clone()
	tr.ForceAttemptHTTP2 = false
	tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	tr.ExpectContinueTimeout = 350 * time.Millisecond
	return &http.Client{Transport: tr, Timeout: 100 * time.Second}
}

// adalNumber reads a number Azure AD v1 may write as a string.
func adalNumber(raw json.RawMessage) int64 {
	s := strings.Trim(string(raw), `"`)
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// TestAzureSeed2017CSharpFunction: the 2017 seed's C# sequence, unmodified
// but for the endpoint and credentials: an ADAL v1 token, DELETE (a 404
// when there is nothing to delete) and PUT of the packet capture with
// api-version=2016-03-30 and the body its classes serialize. The PUT is
// 201, the storagePath the seed reports is where the file lands (capinfos),
// and the zeros it never set are the defaults: whole packets, 1 GiB a
// session. Run again while the first capture runs, its DELETE removes it
// and its PUT creates the capture anew.
func TestAzureSeed2017CSharpFunction(t *testing.T) {
	a := newAzureLab(t, nil)
	h1, h2 := a.addHost("h1"), a.addHost("h2")
	a.link(h1, h2)
	// The seed's service principal, Contributor on the subscription as its
	// setup (New-AzRoleAssignment -RoleDefinitionName Contributor) makes it.
	clientID, secret := a.servicePrincipal("seed-2017", "Contributor", "/subscriptions/"+azSubscription)
	s := a.as("checker", "Reader", "/subscriptions/"+azSubscription)
	storageID := a.storageAccountID("local")
	f := &seed2017{t: t, login: a.apiURL + "/", endpoint: a.apiURL, client: dotNetFrameworkClient(a.httpClient()), tenantID: a.tenant, clientID: clientID, secret: secret}
	input, _ := json.Marshal(webhookInputParameters{
		SubscriptionID: azSubscription, NetworkWatcherResourceGroup: azWatcherGroup, NetworkWatcherName: azWatcher,
		PacketCaptureName: "AlertTriggered", StorageID: storageID, TimeLimit: 10, TargetVM: vmID("h2"),
	})

	answer := f.run(string(input))
	if f.deleteStatus != http.StatusNotFound && f.deleteStatus != http.StatusNoContent {
		t.Errorf("DELETE of a capture that is not there: %d, want 404 (what the seed expects) or 204", f.deleteStatus)
	}
	if f.putStatus != http.StatusCreated {
		t.Fatalf("PUT of the seed's body: %d, want 201:\n%s\nbody sent:\n%s", f.putStatus, f.putBody, f.putRequest)
	}
	const prefix = "Packet Capture successfully created and will upload to StoragePath: "
	storagePath := strings.TrimPrefix(answer, prefix)
	if !strings.HasPrefix(answer, prefix) || storagePath == "" {
		t.Fatalf("the seed answered %q", answer)
	}
	var body pcResponseBody
	_ = json.Unmarshal(f.putBody, &body)
	if body.Name != "AlertTriggered" || body.Etag == "" || !strings.EqualFold(body.Properties.Target, vmID("h2")) ||
		body.Properties.TimeLimitInSeconds != 10 || body.Properties.TotalBytesPerSession != 1073741824 || body.Properties.BytesToCapturePerPacket != 0 {
		t.Errorf("PUT answer: the seed's zeros must mean the defaults (whole packets, 1073741824 bytes), the time limit 10: %s", f.putBody)
	}

	// The capture runs on h2 for the 10 s the alert asked; the file lands at the path given.
	pcs, err := armnetwork.NewPacketCapturesClient(azSubscription, s.cred, s.opts)
	if err != nil {
		t.Fatal(err)
	}
	a.eventually("AlertTriggered Running", 20*time.Second, func() bool {
		p, err := pcs.BeginGetStatus(ctxFor(t, 30*time.Second), azWatcherGroup, azWatcher, "AlertTriggered", nil)
		if err != nil {
			t.Fatalf("queryStatus: %v", err)
		}
		r, err := p.PollUntilDone(ctxFor(t, 30*time.Second), pollFast)
		return err == nil && deref(r.PacketCaptureStatus) == armnetwork.PcStatusRunning
	})
	a.sendSized(h1, h2, 7501, 200, 1400, 1)
	file := a.waitStored(storagePath, 60*time.Second)
	if n := packets(t, file); n < 200 {
		t.Errorf("%d packets in %s, want the 200 sent at least (no filter)", n, storagePath)
	}
	if !fullLength(t, file) {
		t.Errorf("frames in %s are truncated: bytestToCapturePerPacket 0 is whole packets", storagePath)
	}
	if got := stampedSeqs(t, file, 1); len(got) != 200 {
		t.Errorf("%d of the 200 datagrams in the file", len(got))
	}

	// Again, while a capture of that name exists: its DELETE takes it away,
	// its PUT right after is 201.
	f2 := *f
	input2, _ := json.Marshal(webhookInputParameters{
		SubscriptionID: azSubscription, NetworkWatcherResourceGroup: azWatcherGroup, NetworkWatcherName: azWatcher,
		PacketCaptureName: "AlertTriggered", StorageID: storageID, TimeLimit: 30, TargetVM: vmID("h1"),
	})
	answer = f2.run(string(input2))
	if f2.deleteStatus != http.StatusAccepted && f2.deleteStatus != http.StatusOK && f2.deleteStatus != http.StatusNoContent {
		t.Errorf("DELETE of the existing capture: %d, want 202, 200 or 204", f2.deleteStatus)
	}
	if f2.putStatus != http.StatusCreated || !strings.HasPrefix(answer, prefix) {
		t.Fatalf("PUT right after the DELETE: %d %s", f2.putStatus, f2.putBody)
	}
	if next := strings.TrimPrefix(answer, prefix); next == storagePath {
		t.Errorf("the new capture has the old one's storagePath %s", next)
	}
	got, err := pcs.Get(ctxFor(t, 30*time.Second), azWatcherGroup, azWatcher, "AlertTriggered", nil)
	if err != nil || got.Properties == nil || !strings.EqualFold(deref(got.Properties.Target), vmID("h1")) || deref(got.Properties.TimeLimitInSeconds) != 30 {
		t.Errorf("after the second run: %v %s", err, describe(got.PacketCaptureResult))
	}
}

// TestAzureApiVersions: the packet capture surface answers every
// api-version from the seed's 2016-03-30 to the SDK's newest.
func TestAzureApiVersions(t *testing.T) {
	a := newAzureLab(t, nil)
	a.addHost("h1")
	s := a.as("automation", "Contributor", "/subscriptions/"+azSubscription)
	token := armToken(t, s.cred, armAudience)
	for _, v := range []string{"2016-03-30", "2016-09-01", "2017-06-01", "2018-08-01", "2019-11-01", "2020-11-01", "2021-08-01", "2022-07-01", "2023-09-01", "2024-05-01", "2025-05-01"} {
		resp, body, _ := a.rawARM(http.MethodGet, watcherID()+"/packetCaptures?api-version="+v, token, nil)
		if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"value"`)) {
			t.Errorf("list captures with api-version %s: %d %s", v, resp.StatusCode, body)
		}
	}
}
