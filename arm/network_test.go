package arm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azarm "github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	armruntime "github.com/Azure/azure-sdk-for-go/sdk/azcore/arm/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/arm"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/filestore"
	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/identity"
	"github.com/tripcap/tripcap/sqlite"
	"github.com/tripcap/tripcap/storetest"
)

const (
	sub      = "00000000-0000-0000-0000-000000000000" // the control plane's default
	location = "local"
	watcher  = "NetworkWatcher_local"
	group    = "NetworkWatcherRG"
)

// staticToken is an azcore.TokenCredential handing out a tripcap token:
// the SDK sends it as the bearer, as it would an Azure AD one.
type staticToken string

func (s staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(s), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

type netFixture struct {
	ts    *httptest.Server
	svc   *controlplane.Service
	ids   *identity.Service
	admin context.Context
	token string
	host  *tripcap.Host
	opts  *azarm.ClientOptions
}

// newNetFixture serves the control plane (SQLite, file storage) with the
// ARM surface over TLS, with one enrolled host whose agent protocol is
// driven by agentLoop.
func newNetFixture(t *testing.T, armOpts ...arm.Option) *netFixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	store.SetSealer(storetest.NewSealer(t))
	t.Cleanup(func() { store.Close() })
	blobs, err := filestore.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := controlplane.New(store, controlplane.Config{Storage: map[string]tripcap.BlobStore{"local": blobs}, DefaultStorage: "local"}, log)
	go func() { _ = svc.Run(ctx) }()
	token, err := svc.EnsureAdmin(ctx, filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	ids, err := identity.New(store, identity.Config{Issuer: ts.URL, Password: identity.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}}, log)
	if err != nil {
		t.Fatal(err)
	}
	svc.SetIdentities(ids)
	ts.Config.Handler = tchttp.NewServer(svc, log, tchttp.WithIdentity(ids), tchttp.WithARM(arm.New(log, arm.Services{Control: svc, Identity: ids}, armOpts...)))

	admin := tripcap.NewContextWithPrincipal(ctx, &tripcap.Principal{Kind: tripcap.PrincipalSystem, Name: "test", Assignments: tripcap.OwnerEverywhere()})
	jt, err := svc.CreateJoinToken(admin, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	enrolled, err := svc.Enroll(ctx, tripcap.EnrollRequest{JoinToken: jt.Token, Name: "vm1"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.Authenticate(ctx, enrolled.Credential)
	if err != nil {
		t.Fatal(err)
	}
	agentCtx := tripcap.NewContextWithPrincipal(ctx, p)
	if _, err := svc.Heartbeat(agentCtx, tripcap.Heartbeat{}); err != nil {
		t.Fatal(err)
	}
	go agentLoop(agentCtx, svc)
	f := &netFixture{ts: ts, svc: svc, ids: ids, admin: admin, token: token, host: enrolled.Host}
	f.opts = &azarm.ClientOptions{
		ClientOptions: policy.ClientOptions{
			Cloud: cloud.Configuration{Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				cloud.ResourceManager: {Endpoint: ts.URL, Audience: "https://management.azure.com/"},
			}},
			Transport: ts.Client(),
			Retry:     policy.RetryOptions{MaxRetries: -1},
		},
		DisableRPRegistration: true,
	}
	return f
}

// agentLoop answers the host's assignments through the agent protocol as
// an agent would: it starts what should run and stops what should not.
func agentLoop(ctx context.Context, svc *controlplane.Service) {
	var known int64
	for ctx.Err() == nil {
		a, err := svc.Assignments(ctx, known, 200*time.Millisecond)
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		known = a.Revision
		now := time.Now()
		var reports []tripcap.SessionReport
		for _, as := range a.Assignments {
			switch {
			case as.Desired == tripcap.DesiredRunning && as.Status == tripcap.StatusNotStarted:
				// As tripcap's agent does, no start time until the end.
				reports = append(reports, tripcap.SessionReport{CaptureID: as.ID, Status: tripcap.StatusRunning})
			case as.Desired != tripcap.DesiredRunning && !as.Status.Terminal():
				reason := tripcap.StopManuallyStopped
				if as.Desired == tripcap.DesiredDeleted {
					reason = tripcap.StopSessionDeleted
				}
				reports = append(reports, tripcap.SessionReport{CaptureID: as.ID, Status: tripcap.StatusStopped, StopReason: reason, StopTime: &now})
			}
		}
		if len(reports) > 0 {
			_, _ = svc.Report(ctx, reports)
		}
	}
}

func (f *netFixture) captures(t *testing.T, policies ...policy.Policy) *armnetwork.PacketCapturesClient {
	t.Helper()
	return f.capturesAs(t, f.token, policies...)
}

func (f *netFixture) capturesAs(t *testing.T, token string, policies ...policy.Policy) *armnetwork.PacketCapturesClient {
	t.Helper()
	opts := *f.opts
	opts.PerCallPolicies = policies
	c, err := armnetwork.NewPacketCapturesClient(sub, staticToken(token), &opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *netFixture) watchers(t *testing.T, subscription string) *armnetwork.WatchersClient {
	t.Helper()
	c, err := armnetwork.NewWatchersClient(subscription, staticToken(f.token), f.opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *netFixture) vmID() string { return f.host.ResourceID() }

func captureParams(target string) armnetwork.PacketCapture {
	return armnetwork.PacketCapture{Properties: &armnetwork.PacketCaptureParameters{
		Target:             new(target),
		TimeLimitInSeconds: new(int32(30)),
		// A file on the VM: a storage account is named by its resource id,
		// which the control plane resolves (Microsoft.Storage's provider).
		StorageLocation: &armnetwork.PacketCaptureStorageLocation{FilePath: new("/var/captures/" + tripcap.NewID() + ".cap")},
		Filters:         []*armnetwork.PacketCaptureFilter{{Protocol: new(armnetwork.PcProtocolTCP), RemotePort: new("80;443;")}},
	}}
}

// stripHeaders removes polling headers from the answers, so the SDK picks
// another poller (Location without Azure-AsyncOperation; the body poller
// without either).
type stripHeaders []string

func (s stripHeaders) Do(req *policy.Request) (*http.Response, error) {
	resp, err := req.Next()
	if resp != nil {
		for _, h := range s {
			resp.Header.Del(h)
		}
	}
	return resp, err
}

func respErr(t *testing.T, err error, status int, code string) {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != status || re.ErrorCode != code {
		t.Fatalf("error %v; want %d %s", err, status, code)
	}
}

func poll() *runtime.PollUntilDoneOptions {
	return &runtime.PollUntilDoneOptions{Frequency: time.Second}
}

// TestPacketCaptureLifecycle runs the whole lifecycle with the official
// armnetwork client, each long-running operation through each poller the
// SDK chooses from the answers: Azure-AsyncOperation, Location, the body.
func TestPacketCaptureLifecycle(t *testing.T) {
	f := newNetFixture(t)
	ctx := t.Context()
	for _, c := range []struct {
		name  string
		strip stripHeaders
	}{
		{"AzureAsyncOperation", nil},
		{"Location", stripHeaders{"Azure-AsyncOperation"}},
		{"Body", stripHeaders{"Azure-AsyncOperation", "Location"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			client := f.captures(t, c.strip)
			name := "pc-" + strings.ToLower(c.name)
			poller, err := client.BeginCreate(ctx, group, watcher, name, captureParams(f.vmID()), nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := poller.PollUntilDone(ctx, poll())
			if err != nil {
				t.Fatal(err)
			}
			pr := res.Properties
			if res.Name == nil || *res.Name != name || res.Etag == nil || pr == nil || *pr.ProvisioningState != armnetwork.ProvisioningStateSucceeded ||
				*pr.TotalBytesPerSession != tripcap.DefaultTotalBytesPerSession || *pr.BytesToCapturePerPacket != 0 || *pr.TimeLimitInSeconds != 30 ||
				pr.StorageLocation == nil || pr.StorageLocation.FilePath == nil || !strings.HasPrefix(*pr.StorageLocation.FilePath, "/var/captures/") ||
				len(pr.Filters) != 1 || *pr.Filters[0].RemotePort != "80;443;" {
				t.Fatalf("created %s", mustJSON(res))
			}
			wantID := "/subscriptions/" + sub + "/resourceGroups/" + group + "/providers/Microsoft.Network/networkWatchers/" + watcher + "/packetCaptures/" + name
			if *res.ID != wantID {
				t.Errorf("id %s, want %s", *res.ID, wantID)
			}
			got, err := client.Get(ctx, group, watcher, name, nil)
			if err != nil || *got.Etag != *res.Etag && *got.Properties.ProvisioningState != armnetwork.ProvisioningStateSucceeded {
				t.Fatalf("get: %v %s", err, mustJSON(got))
			}
			if c.strip != nil && c.strip[len(c.strip)-1] == "Location" {
				// DELETE and POST with neither header answer 202 without a
				// polling URL, which the SDK refuses, as ARM's spec says.
				return
			}
			st, err := client.BeginGetStatus(ctx, group, watcher, name, nil)
			if err != nil {
				t.Fatal(err)
			}
			status, err := st.PollUntilDone(ctx, poll())
			if err != nil || *status.PacketCaptureStatus != armnetwork.PcStatusRunning || status.CaptureStartTime == nil {
				t.Fatalf("query status: %v %s", err, mustJSON(status))
			}
			stop, err := client.BeginStop(ctx, group, watcher, name, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := stop.PollUntilDone(ctx, poll()); err != nil {
				t.Fatal(err)
			}
			st, err = client.BeginGetStatus(ctx, group, watcher, name, nil)
			if err != nil {
				t.Fatal(err)
			}
			status, err = st.PollUntilDone(ctx, poll())
			if err != nil || *status.PacketCaptureStatus != armnetwork.PcStatusStopped || *status.StopReason != tripcap.StopManuallyStopped {
				t.Fatalf("status after stop: %v %s", err, mustJSON(status))
			}
			// Stopping a stopped capture answers 200 at once.
			stop, err = client.BeginStop(ctx, group, watcher, name, nil)
			if err != nil || !stop.Done() {
				t.Fatalf("second stop: %v, done %v", err, stop != nil && stop.Done())
			}
			del, err := client.BeginDelete(ctx, group, watcher, name, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := del.PollUntilDone(ctx, poll()); err != nil {
				t.Fatal(err)
			}
			_, err = client.Get(ctx, group, watcher, name, nil)
			respErr(t, err, 404, "PacketCaptureNotFound")
			_, err = client.BeginDelete(ctx, group, watcher, name, nil)
			respErr(t, err, 404, "PacketCaptureNotFound")
		})
	}
}

// TestPacketCaptureListWhole: the SDK's capture and watcher lists do not
// follow nextLink, so they come whole however small the API's pages are.
func TestPacketCaptureListWhole(t *testing.T) {
	f := newNetFixture(t, arm.WithPageSize(1))
	ctx := t.Context()
	client := f.captures(t)
	for _, n := range []string{"a1", "a2", "a3"} {
		p, err := client.BeginCreate(ctx, group, watcher, n, captureParams(f.vmID()), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.PollUntilDone(ctx, poll()); err != nil {
			t.Fatal(err)
		}
	}
	pager := client.NewListPager(group, watcher, nil)
	var names []string
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page.Value {
			names = append(names, *c.Name)
		}
	}
	if strings.Join(names, ",") != "a1,a2,a3" {
		t.Errorf("listed %v", names)
	}
}

// TestPacketCaptureErrors: not found, conflicts and bad properties, as the
// SDK reports them (status and ARM error code).
func TestPacketCaptureErrors(t *testing.T) {
	f := newNetFixture(t)
	ctx := t.Context()
	client := f.captures(t)
	_, err := client.Get(ctx, group, watcher, "nope", nil)
	respErr(t, err, 404, "PacketCaptureNotFound")
	_, err = client.Get(ctx, group, "NetworkWatcher_nowhere", "nope", nil)
	respErr(t, err, 404, "NotFound")
	_, err = client.Get(ctx, "OtherRG", watcher, "nope", nil)
	respErr(t, err, 404, "NotFound")

	p, err := client.BeginCreate(ctx, group, watcher, "dup", captureParams(f.vmID()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.PollUntilDone(ctx, poll()); err != nil {
		t.Fatal(err)
	}
	_, err = client.BeginCreate(ctx, group, watcher, "dup", captureParams(f.vmID()), nil)
	respErr(t, err, 409, "Conflict")

	for _, c := range []struct {
		name   string
		edit   func(p *armnetwork.PacketCaptureParameters)
		code   string
		target string
	}{
		{"time limit", func(p *armnetwork.PacketCaptureParameters) { p.TimeLimitInSeconds = new(int32(18001)) }, "InvalidRequestFormat", "properties.timeLimitInSeconds"},
		{"bytes per packet", func(p *armnetwork.PacketCaptureParameters) { p.BytesToCapturePerPacket = new(int64(4294967296)) }, "InvalidRequestFormat", "properties.bytesToCapturePerPacket"},
		{"total bytes", func(p *armnetwork.PacketCaptureParameters) { p.TotalBytesPerSession = new(int64(-1)) }, "InvalidRequestFormat", "properties.totalBytesPerSession"},
		{"file count", func(p *armnetwork.PacketCaptureParameters) {
			p.ContinuousCapture = new(true)
			p.CaptureSettings = &armnetwork.PacketCaptureSettings{FileCount: new(int32(10001))}
		}, "InvalidRequestFormat", "properties.captureSettings.fileCount"},
		{"file path", func(p *armnetwork.PacketCaptureParameters) {
			p.StorageLocation = &armnetwork.PacketCaptureStorageLocation{FilePath: new("/etc/passwd.cap")}
		}, "InvalidRequestFormat", "properties.storageLocation.filePath"},
		{"no storage", func(p *armnetwork.PacketCaptureParameters) {
			p.StorageLocation = &armnetwork.PacketCaptureStorageLocation{}
		}, "InvalidRequestFormat", "properties.storageLocation"},
		{"storageId a name", func(p *armnetwork.PacketCaptureParameters) {
			p.StorageLocation = &armnetwork.PacketCaptureStorageLocation{StorageID: new("local")}
		}, "LinkedInvalidPropertyId", "properties.storageLocation.storageId"},
		{"storageId not an account", func(p *armnetwork.PacketCaptureParameters) {
			p.StorageLocation = &armnetwork.PacketCaptureStorageLocation{StorageID: new(f.vmID())}
		}, "LinkedInvalidPropertyId", "properties.storageLocation.storageId"},
		{"storageId of no account", func(p *armnetwork.PacketCaptureParameters) {
			p.StorageLocation = &armnetwork.PacketCaptureStorageLocation{StorageID: new("/subscriptions/" + sub + "/resourceGroups/tripcap/providers/Microsoft.Storage/storageAccounts/nope")}
		}, "InvalidRequestFormat", "properties.storageLocation.storageId"},
		{"malformed target", func(p *armnetwork.PacketCaptureParameters) { p.Target = new("vm1") }, "LinkedInvalidPropertyId", "properties.target"},
		{"target not a VM", func(p *armnetwork.PacketCaptureParameters) {
			p.Target = new("/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/x")
		}, "InvalidRequestFormat", "properties.target"},
		{"unknown VM", func(p *armnetwork.PacketCaptureParameters) {
			p.Target = new("/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/nope")
		}, "InvalidRequestFormat", "properties.target"},
		{"filter protocol", func(p *armnetwork.PacketCaptureParameters) {
			p.Filters = []*armnetwork.PacketCaptureFilter{{Protocol: new(armnetwork.PcProtocol("ICMP"))}}
		}, "InvalidRequestFormat", ""},
	} {
		params := captureParams(f.vmID())
		c.edit(params.Properties)
		_, err := client.BeginCreate(ctx, group, watcher, "bad", params, nil)
		var re *azcore.ResponseError
		if !errors.As(err, &re) || re.StatusCode != 400 || re.ErrorCode != c.code {
			t.Errorf("%s: %v; want 400 %s", c.name, err, c.code)
			continue
		}
		if c.target != "" {
			var body arm.ErrorBody
			if err := json.NewDecoder(re.RawResponse.Body).Decode(&body); err != nil || body.Error.Target != c.target {
				t.Errorf("%s: target %+v, want %s", c.name, body.Error, c.target)
			}
		}
	}
	// A name Azure would refuse.
	_, err = client.BeginCreate(ctx, group, watcher, "bad*name", captureParams(f.vmID()), nil)
	respErr(t, err, 400, "InvalidResourceName")
}

// TestNetworkWatchers: the watcher of each location of a subscription, in
// NetworkWatcherRG; watchers a user creates, one per location; another
// subscription's are not found.
func TestNetworkWatchers(t *testing.T) {
	f := newNetFixture(t)
	ctx := t.Context()
	wc := f.watchers(t, sub)
	w, err := wc.Get(ctx, group, watcher, nil)
	if err != nil || *w.Location != location || *w.Type != "Microsoft.Network/networkWatchers" || *w.Properties.ProvisioningState != armnetwork.ProvisioningStateSucceeded {
		t.Fatalf("get: %v %s", err, mustJSON(w))
	}
	created, err := wc.CreateOrUpdate(ctx, "Ops", "mine", armnetwork.Watcher{Location: new("West US 2"), Tags: map[string]*string{"team": new("net")}}, nil)
	if err != nil || *created.Location != "westus2" || *created.Tags["team"] != "net" {
		t.Fatalf("create: %v %s", err, mustJSON(created))
	}
	updated, err := wc.CreateOrUpdate(ctx, "Ops", "mine", armnetwork.Watcher{Location: new("westus2")}, nil)
	if err != nil || len(updated.Tags) != 0 || *updated.ID != *created.ID {
		t.Fatalf("update: %v %s", err, mustJSON(updated))
	}
	_, err = wc.CreateOrUpdate(ctx, "Ops", "second", armnetwork.Watcher{Location: new("westus2")}, nil)
	respErr(t, err, 400, "NetworkWatcherCountLimitReached")
	_, err = wc.CreateOrUpdate(ctx, "Ops", "mine", armnetwork.Watcher{Location: new("eastus")}, nil)
	respErr(t, err, 400, "InvalidRequestFormat")
	_, err = wc.UpdateTags(ctx, "Ops", "mine", armnetwork.TagsObject{Tags: map[string]*string{"env": new("prod")}}, nil)
	if err != nil {
		t.Fatal(err)
	}

	var all []string
	for pager := wc.NewListAllPager(nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range page.Value {
			all = append(all, *w.Name)
		}
	}
	if strings.Join(all, ",") != watcher+",mine" {
		t.Errorf("list all: %v", all)
	}
	var inGroup []string
	for pager := wc.NewListPager("ops", nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range page.Value {
			inGroup = append(inGroup, *w.Name+"="+*w.Tags["env"])
		}
	}
	if strings.Join(inGroup, ",") != "mine=prod" {
		t.Errorf("list in group: %v", inGroup)
	}

	del, err := wc.BeginDelete(ctx, "Ops", "mine", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := del.PollUntilDone(ctx, poll()); err != nil {
		t.Fatal(err)
	}
	_, err = wc.Get(ctx, "Ops", "mine", nil)
	respErr(t, err, 404, "NotFound")
	// The location's watcher has captures on record once one ran: it stays.
	p, err := f.captures(t).BeginCreate(ctx, group, watcher, "keep", captureParams(f.vmID()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.PollUntilDone(ctx, poll()); err != nil {
		t.Fatal(err)
	}
	_, err = wc.BeginDelete(ctx, group, watcher, nil)
	respErr(t, err, 409, "Conflict")

	_, err = f.watchers(t, "00000000-0000-0000-0000-0000000000ff").Get(ctx, group, watcher, nil)
	respErr(t, err, 404, "SubscriptionNotFound")
}

// raw sends one request as a hand-written client would.
func (f *netFixture) raw(t *testing.T, method, path, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, f.ts.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+f.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: %d, not JSON: %s", method, path, resp.StatusCode, b)
		}
	}
	return resp, out
}

func code(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// TestPacketCaptureEveryAPIVersion: the 2017 seed's request (api-version
// 2016-03-30, its own property names, zeros it never set, an empty filter
// list, indented) is created with the defaults, and every api-version
// Microsoft.Network accepts serves the capture; others are refused.
func TestPacketCaptureEveryAPIVersion(t *testing.T) {
	f := newNetFixture(t)
	base := "/subscriptions/" + sub + "/resourceGroups/" + group + "/providers/Microsoft.Network/networkWatchers/" + watcher + "/packetCaptures/"
	seed := `{
  "properties": {
    "target": "` + f.vmID() + `",
    "bytestToCapturePerPacket": 0,
    "totalBytesPerSession": 0,
    "timeLimitInSeconds": 10,
    "storageLocation": {
      "filePath": "/var/captures/seed.cap"
    },
    "filters": []
  }
}`
	resp, _ := f.raw(t, "DELETE", base+"PSAzureFunction?api-version=2016-03-30", "")
	if resp.StatusCode != 404 {
		t.Fatalf("delete of a capture not there: %d", resp.StatusCode)
	}
	resp, body := f.raw(t, "PUT", base+"PSAzureFunction?api-version=2016-03-30", seed)
	if resp.StatusCode != 201 {
		t.Fatalf("seed PUT: %d %v", resp.StatusCode, body)
	}
	props := body["properties"].(map[string]any)
	loc := props["storageLocation"].(map[string]any)
	if props["totalBytesPerSession"] != float64(tripcap.DefaultTotalBytesPerSession) || props["bytesToCapturePerPacket"] != float64(0) ||
		props["timeLimitInSeconds"] != float64(10) || loc["filePath"] != "/var/captures/seed.cap" {
		t.Fatalf("seed PUT answered %v", body)
	}
	if !strings.HasPrefix(resp.Header.Get("Azure-AsyncOperation"), f.ts.URL+"/subscriptions/"+sub+"/providers/Microsoft.Network/locations/local/operations/") ||
		!strings.Contains(resp.Header.Get("Azure-AsyncOperation"), "api-version=2016-03-30") {
		t.Errorf("Azure-AsyncOperation %q", resp.Header.Get("Azure-AsyncOperation"))
	}
	// The seed deletes and recreates at once, under the same name.
	resp, _ = f.raw(t, "DELETE", base+"PSAzureFunction?api-version=2016-03-30", "")
	if resp.StatusCode != 202 || resp.Header.Get("Location") == "" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("seed DELETE: %d %v", resp.StatusCode, resp.Header)
	}
	resp, body = f.raw(t, "PUT", base+"PSAzureFunction?api-version=2016-03-30", seed)
	if resp.StatusCode != 201 {
		t.Fatalf("seed PUT again: %d %v", resp.StatusCode, body)
	}

	for _, v := range []string{"2016-03-30", "2017-09-01", "2018-08-01", "2019-11-01", "2020-11-01", "2022-05-01", "2023-09-01", "2024-05-01", "2025-05-01"} {
		resp, body := f.raw(t, "GET", base+"PSAzureFunction?api-version="+v, "")
		if resp.StatusCode != 200 || body["name"] != "PSAzureFunction" {
			t.Errorf("GET api-version %s: %d %v", v, resp.StatusCode, body)
		}
	}
	for _, c := range []struct{ query, code string }{
		{"", "MissingApiVersionParameter"},
		{"?api-version=2099-01-01", "InvalidApiVersionParameter"},
		{"?api-version=2016-03-31", "InvalidApiVersionParameter"},
		{"?api-version=bogus", "InvalidApiVersionParameter"},
	} {
		resp, body := f.raw(t, "GET", base+"PSAzureFunction"+c.query, "")
		if resp.StatusCode != 400 || code(body) != c.code {
			t.Errorf("GET %q: %d %v; want 400 %s", c.query, resp.StatusCode, body, c.code)
		}
	}
	for _, c := range []struct {
		path   string
		status int
		code   string
	}{
		{"/subscriptions/not-a-guid/resourceGroups/" + group + "/providers/Microsoft.Network/networkWatchers/" + watcher + "?api-version=2024-05-01", 400, "InvalidSubscriptionId"},
		{"/subscriptions/" + sub + "/resourceGroups/bad%20group!/providers/Microsoft.Network/networkWatchers/" + watcher + "?api-version=2024-05-01", 400, "InvalidResourceGroup"},
		{"/subscriptions/" + sub + "/resourceGroups/" + group + "/providers/Microsoft.Network/networkWatchers/" + watcher + "/packetCaptures/a%20b?api-version=2024-05-01", 400, "InvalidResourceName"},
		{"/subscriptions/" + sub + "/resourceGroups/" + group + "/providers/Microsoft.Network/networkWatchers/" + watcher + "/nothing?api-version=2024-05-01", 400, "InvalidResourceType"},
		{"/subscriptions/" + sub + "/resourceGroups/" + group + "/providers/Microsoft.Nothing/things?api-version=2024-05-01", 400, "NoRegisteredProviderFound"},
	} {
		resp, body := f.raw(t, "GET", c.path, "")
		if resp.StatusCode != c.status || code(body) != c.code {
			t.Errorf("GET %s: %d %v; want %d %s", c.path, resp.StatusCode, body, c.status, c.code)
		}
	}
	resp, body = f.raw(t, "PUT", base+"broken?api-version=2024-05-01", `{"properties": {"target": 5}}`)
	if resp.StatusCode != 400 || code(body) != "InvalidRequestFormat" {
		t.Errorf("malformed body: %d %v", resp.StatusCode, body)
	}
}

// TestPacketCaptureAuthorization: the services' checks answer as ARM's:
// a Reader reads but may not create or delete (403 AuthorizationFailed),
// and a caller without a credential, or with a wrong one, is 401.
func TestPacketCaptureAuthorization(t *testing.T) {
	f := newNetFixture(t)
	ctx := t.Context()
	p, err := f.captures(t).BeginCreate(ctx, group, watcher, "owned", captureParams(f.vmID()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.PollUntilDone(ctx, poll()); err != nil {
		t.Fatal(err)
	}
	sp, err := f.ids.CreateServicePrincipal(f.admin, "reader")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ids.AssignRole(f.admin, sp.ID, tripcap.RoleReader, tripcap.ScopeAll); err != nil {
		t.Fatal(err)
	}
	tok, err := f.ids.CreateToken(f.admin, sp.ID, "arm", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	reader := f.capturesAs(t, tok.Token)
	if _, err := reader.Get(ctx, group, watcher, "owned", nil); err != nil {
		t.Fatalf("reader get: %v", err)
	}
	_, err = reader.BeginCreate(ctx, group, watcher, "nope", captureParams(f.vmID()), nil)
	respErr(t, err, 403, "AuthorizationFailed")
	var re *azcore.ResponseError
	errors.As(err, &re)
	if msg := re.Error(); !strings.Contains(msg, "'Microsoft.Network/networkWatchers/packetCaptures/write'") || !strings.Contains(msg, "over scope '/subscriptions/"+sub+"/resourceGroups/"+group+"/providers/Microsoft.Network/networkWatchers/"+watcher+"/packetCaptures/nope'") ||
		!strings.Contains(msg, "'reader'") {
		t.Errorf("the refusal does not name the client, the action and the scope: %s", msg)
	}
	// Watchers are changed with captures/write over their group, as in
	// Azure; outside the caller's scopes a watcher is refused, there or not.
	wr, err := armnetwork.NewWatchersClient(sub, staticToken(tok.Token), f.opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = wr.CreateOrUpdate(ctx, "Ops", "mine", armnetwork.Watcher{Location: new("eastus")}, nil)
	respErr(t, err, 403, "AuthorizationFailed")
	narrow, err := f.ids.CreateServicePrincipal(f.admin, "narrow")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ids.AssignRole(f.admin, narrow.ID, tripcap.RoleNetworkContributor, tripcap.Scope("/subscriptions/"+sub+"/resourceGroups/Ops")); err != nil {
		t.Fatal(err)
	}
	ntok, err := f.ids.CreateToken(f.admin, narrow.ID, "arm", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	nw, err := armnetwork.NewWatchersClient(sub, staticToken(ntok.Token), f.opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nw.CreateOrUpdate(ctx, "ops", "mine", armnetwork.Watcher{Location: new("eastus")}, nil); err != nil {
		t.Fatalf("a Network Contributor of the group creating a watcher there: %v", err)
	}
	if _, err := nw.Get(ctx, "Ops", "mine", nil); err != nil {
		t.Fatalf("and reading it: %v", err)
	}
	_, err = nw.Get(ctx, "Ops", "nothing", nil)
	respErr(t, err, 404, "NotFound")
	_, err = nw.Get(ctx, group, watcher, nil)
	respErr(t, err, 403, "AuthorizationFailed")
	_, err = f.capturesAs(t, ntok.Token).BeginCreate(ctx, group, watcher, "narrow", captureParams(f.vmID()), nil)
	respErr(t, err, 403, "AuthorizationFailed")
	_, err = reader.BeginDelete(ctx, group, watcher, "owned", nil)
	respErr(t, err, 403, "AuthorizationFailed")
	_, err = f.capturesAs(t, "tc_wrong").Get(ctx, group, watcher, "owned", nil)
	respErr(t, err, 401, "InvalidAuthenticationToken")
	resp, err := f.ts.Client().Get(f.ts.URL + "/subscriptions/" + sub + "/resourceGroups/" + group + "/providers/Microsoft.Network/networkWatchers/" + watcher + "?api-version=2024-05-01")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != "" || resp.Header.Get("x-ms-request-id") == "" {
		t.Errorf("no credential: %d %v", resp.StatusCode, resp.Header)
	}
}

// TestSubscriptionsPaged: the subscriptions list pages with an absolute
// nextLink, followed by the SDK's pager runtime as generated clients do.
func TestSubscriptionsPaged(t *testing.T) {
	f := newNetFixture(t, arm.WithPageSize(1))
	ctx := t.Context()
	const other = "11111111-1111-1111-1111-111111111111"
	jt, err := f.svc.CreateJoinToken(f.admin, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Enroll(ctx, tripcap.EnrollRequest{JoinToken: jt.Token, Name: "vm2", Labels: map[string]string{tripcap.LabelSubscription: other}}); err != nil {
		t.Fatal(err)
	}
	pl, err := armruntime.NewPipeline("tripcap-test", "v0", staticToken(f.token), runtime.PipelineOptions{}, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	type page struct {
		Value []struct {
			SubscriptionID string `json:"subscriptionId"`
			State          string `json:"state"`
		} `json:"value"`
		NextLink *string `json:"nextLink"`
	}
	pager := runtime.NewPager(runtime.PagingHandler[page]{
		More: func(p page) bool { return p.NextLink != nil && *p.NextLink != "" },
		Fetcher: func(ctx context.Context, prev *page) (page, error) {
			u := f.ts.URL + "/subscriptions?api-version=2022-12-01"
			if prev != nil {
				if !strings.HasPrefix(*prev.NextLink, f.ts.URL+"/subscriptions?") {
					t.Errorf("nextLink %q is not absolute", *prev.NextLink)
				}
				u = *prev.NextLink
			}
			req, err := runtime.NewRequest(ctx, http.MethodGet, u)
			if err != nil {
				return page{}, err
			}
			resp, err := pl.Do(req)
			if err != nil {
				return page{}, err
			}
			if !runtime.HasStatusCode(resp, http.StatusOK) {
				return page{}, runtime.NewResponseError(resp)
			}
			var p page
			return p, runtime.UnmarshalAsJSON(resp, &p)
		},
	})
	var got []string
	for pages := 0; pager.More(); pages++ {
		if pages > 3 {
			t.Fatal("paging does not end")
		}
		p, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range p.Value {
			got = append(got, v.SubscriptionID+"="+v.State)
		}
	}
	if strings.Join(got, ",") != sub+"=Enabled,"+other+"=Enabled" {
		t.Errorf("subscriptions %v", got)
	}
	resp, body := f.raw(t, "GET", "/subscriptions/"+other+"?api-version=2016-06-01", "")
	if resp.StatusCode != 200 || body["subscriptionId"] != other {
		t.Errorf("get: %d %v", resp.StatusCode, body)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
