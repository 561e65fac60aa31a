package http_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup/webhooktest"
	"github.com/tripcap/tripcap/arm"
	"github.com/tripcap/tripcap/audit"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/filestore"
	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/identity"
	"github.com/tripcap/tripcap/responder"
	"github.com/tripcap/tripcap/sqlite"
	"github.com/tripcap/tripcap/storetest"
	"github.com/tripcap/tripcap/tlscert"
)

type fixture struct {
	url    string
	admin  *tchttp.Client
	agent  *tchttp.Client
	host   *tripcap.Host
	token  string
	server *tchttp.Server
	store  tripcap.Store
	ids    *identity.Service
	// With newFixtureWith(…, true): the recorder, and the secrets of the
	// enrollment, which no log may hold.
	rec        *audit.Recorder
	joinToken  *tripcap.JoinToken
	credential string
}

// testPassword is a cheap argon2id cost, for tests only.
var testPassword = identity.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, fixtureOptions{})
}

// fixtureOptions vary the test server.
type fixtureOptions struct {
	// log is where the server logs (nil: nowhere).
	log *slog.Logger
	// audited keeps the audit log.
	audited bool
	// limits, when set, makes the server run its own Serve (timeouts,
	// per-address limits) on a loopback listener.
	limits *tchttp.Limits
	// arm serves the ARM surface too.
	arm bool
	// tls serves HTTPS (HTTP/2 by ALPN) with a test CA the clients trust;
	// it implies the server's own Serve.
	tls bool
}

func newFixtureWith(t testing.TB, o fixtureOptions) *fixture {
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
	log := o.log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var rec *audit.Recorder
	if o.audited {
		rec = audit.New(store, log, audit.Config{})
		t.Cleanup(func() { rec.Close() })
	}
	svc := controlplane.New(store, controlplane.Config{Storage: map[string]tripcap.BlobStore{"local": blobs}, DefaultStorage: "local"}, log)
	go func() { _ = svc.Run(ctx) }()
	token, err := svc.EnsureAdmin(ctx, filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	// The monitor's and responders' routes are served too, so every test
	// below covers them.
	deps := svc.ResponderDeps()
	if rec != nil {
		deps.Audit = rec
	}
	rsp, err := responder.New(deps, log, responder.Config{PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = rsp.Run(ctx) }()
	mon, err := controlplane.NewMonitor(store, log, controlplane.MonitorConfig{Responder: rsp, WebhookTargets: webhooktest.Targets()})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = mon.Run(ctx) }()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + l.Addr().String()
	var clientOpts []tchttp.ClientOption
	var serverOpts []tchttp.Option
	if o.tls {
		pki, err := tlscert.OpenAuthority(filepath.Join(dir, "tls"), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AddCert(pki.Anchor())
		base, clientOpts = "https://"+l.Addr().String(), []tchttp.ClientOption{tchttp.WithTLSConfig(tlscert.ClientConfig(pool))}
		if o.limits == nil {
			o.limits = &tchttp.Limits{}
		}
		serverOpts = append(serverOpts, tchttp.WithTLS(tlscert.ServerConfig(pki)))
	}
	ids, err := identity.New(store, identity.Config{Issuer: base, Password: testPassword}, log)
	if err != nil {
		t.Fatal(err)
	}
	svc.SetIdentities(ids)
	opts := append(serverOpts, tchttp.WithMonitor(mon), tchttp.WithResponders(rsp), tchttp.WithIdentity(ids))
	if rec != nil {
		opts = append(opts, tchttp.WithAudit(rec))
	}
	if o.arm {
		opts = append(opts, tchttp.WithARM(arm.New(log, arm.Services{Control: svc, Monitor: mon, Identity: ids, Responders: rsp})))
	}
	if o.limits != nil {
		opts = append(opts, tchttp.WithLimits(*o.limits))
		srv := tchttp.NewServer(svc, log, opts...)
		done := make(chan struct{})
		go func() { defer close(done); _ = srv.Serve(ctx, l) }()
		t.Cleanup(func() { cancel(); <-done })
		return enrolledFixture(t, ctx, base, token, srv, &fixture{store: store, ids: ids, rec: rec}, clientOpts...)
	}
	srv := tchttp.NewServer(svc, log, opts...)
	ts := httptest.NewUnstartedServer(srv)
	ts.Listener.Close()
	ts.Listener = l
	ts.Start()
	t.Cleanup(ts.Close)
	return enrolledFixture(t, ctx, base, token, srv, &fixture{store: store, ids: ids, rec: rec})
}

// enrolledFixture completes f: the admin client of the server at base, and
// web1 enrolled.
func enrolledFixture(t testing.TB, ctx context.Context, base, token string, srv *tchttp.Server, f *fixture, opts ...tchttp.ClientOption) *fixture {
	t.Helper()
	admin, err := tchttp.NewClient(base, token, opts...)
	if err != nil {
		t.Fatal(err)
	}
	jt, err := admin.CreateJoinToken(ctx, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := admin.Enroll(ctx, tripcap.EnrollRequest{JoinToken: jt.Token, Name: "web1"})
	if err != nil {
		t.Fatal(err)
	}
	f.url, f.admin, f.agent, f.host, f.token, f.server = base, admin, admin.WithToken(resp.Credential), resp.Host, token, srv
	f.joinToken, f.credential = jt, resp.Credential
	return f
}

func (f *fixture) request(t *testing.T, method, path, token string, body io.Reader, hdr ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, f.url+path, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func errorBody(t *testing.T, resp *http.Response) tchttp.ErrorDetail {
	t.Helper()
	var eb tchttp.ErrorBody
	if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
		t.Fatalf("%s: not an error body {\"error\":{\"code\",\"message\"}}: %v", resp.Status, err)
	}
	return eb.Error
}

var pathParam = regexp.MustCompile(`\{[a-zA-Z]+\}`)

// TestOpenAPIMatchesRoutes asks the server for every operation its OpenAPI
// document lists: each must reach a handler (not the mux's 404/405), and
// each must refuse a caller without a credential.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	f := newFixture(t)
	resp := f.request(t, "GET", "/api/v1/openapi.json", f.token, nil)
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" || len(doc.Paths) < 10 {
		t.Fatalf("openapi %q with %d paths", doc.OpenAPI, len(doc.Paths))
	}
	ops := 0
	for p, methods := range doc.Paths {
		concrete := pathParam.ReplaceAllString(p, "zz-nonexistent")
		for m, op := range methods {
			ops++
			method := strings.ToUpper(m)
			r := f.request(t, method, concrete, f.token, strings.NewReader("{}"))
			b, _ := io.ReadAll(r.Body)
			if r.StatusCode == 405 || (r.StatusCode == 404 && !bytes.Contains(b, []byte(`"error"`))) {
				t.Errorf("%s %s: the documented operation has no handler (%s)", method, p, r.Status)
			}
			// An operation documented with no security is open to anyone
			// (login, the token endpoint, the key documents).
			if sec, ok := op["security"].([]any); p == "/api/v1/openapi.json" || ok && len(sec) == 0 {
				continue
			}
			r = f.request(t, method, concrete, "", strings.NewReader("{}"))
			if r.StatusCode != 401 {
				t.Errorf("%s %s without a credential: %s, want 401", method, p, r.Status)
				continue
			}
			errorBody(t, r)
		}
	}
	// And the other way: an undocumented operation is not served.
	if r := f.request(t, "PUT", "/api/v1/hosts", f.token, nil); r.StatusCode != 405 {
		t.Errorf("PUT /api/v1/hosts: %s, want 405", r.Status)
	}
	t.Logf("%d operations checked", ops)
}

func TestOnlyHealthzIsOpen(t *testing.T) {
	f := newFixture(t)
	if r := f.request(t, "GET", "/api/v1/openapi.json", "", nil); r.StatusCode != 401 {
		t.Fatalf("openapi.json without credential: %s", r.Status)
	}
	if r := f.request(t, "GET", "/healthz", "", nil); r.StatusCode != 200 {
		t.Fatalf("healthz: %s", r.Status)
	}
	r := f.request(t, "GET", "/metrics", f.token, nil)
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != 200 || !bytes.Contains(b, []byte("tripcap_agent_polls_waiting")) || !bytes.Contains(b, []byte("tripcap_http_request_duration_seconds")) {
		t.Fatalf("metrics: %s without tripcap's series", r.Status)
	}
	if r := f.request(t, "GET", "/metrics", "", nil); r.StatusCode != 401 {
		t.Fatalf("metrics without credential: %s", r.Status)
	}
}

func TestAgentCannotUseAdminRoutes(t *testing.T) {
	f := newFixture(t)
	_, err := f.agent.ListHosts(context.Background())
	if tripcap.ErrorCode(err) != tripcap.EFORBIDDEN {
		t.Fatalf("agent listing hosts: %v", err)
	}
	_, err = f.admin.Assignments(context.Background(), -1, 0)
	if tripcap.ErrorCode(err) != tripcap.EFORBIDDEN {
		t.Fatalf("admin polling assignments: %v", err)
	}
}

func TestBadBodiesNameTheField(t *testing.T) {
	f := newFixture(t)
	cases := map[string]string{
		`{"name":"x","parameters":{"target":"web1","timeLimitInSeconds":"30"}}`:  "parameters.timeLimitInSeconds",
		`{"name":"x","parameters":{"target":"web1"},"bogus":1}`:                  `"bogus"`,
		`{"name":"x","parameters":{"target":"web1","timeLimitInSeconds":99999}}`: "timeLimitInSeconds",
		`{"name":"x",`: "malformed JSON",
		``:             "empty",
		`{"name":"bad name!","parameters":{"target":"web1"}}`: "name",
	}
	for body, want := range cases {
		r := f.request(t, "POST", "/api/v1/captures", f.token, strings.NewReader(body), "Content-Type", "application/json")
		if r.StatusCode != 400 {
			t.Errorf("%s: %s, want 400", body, r.Status)
			continue
		}
		if e := errorBody(t, r); !strings.Contains(e.Message, want) || e.Code != tripcap.EINVALID {
			t.Errorf("%s: error %+v does not mention %s", body, e, want)
		}
	}
	big := `{"name":"` + strings.Repeat("a", tchttp.MaxJSONBody) + `"}`
	if r := f.request(t, "POST", "/api/v1/captures", f.token, strings.NewReader(big)); r.StatusCode != 400 {
		t.Errorf("oversized body: %s", r.Status)
	}
}

func TestCaptureETagsAndConflict(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	body := tchttp.CreateCaptureBody{Name: "x", Parameters: tripcap.PacketCaptureParameters{Target: "web1"}}
	c, err := f.admin.CreateCapture(ctx, body)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.admin.CreateCapture(ctx, body)
	if tripcap.ErrorCode(err) != tripcap.ECONFLICT || !strings.Contains(tripcap.ErrorMessage(err), `"x"`) {
		t.Fatalf("duplicate create: %v", err)
	}
	r := f.request(t, "GET", "/api/v1/captures/x", f.token, nil)
	etag := r.Header.Get("ETag")
	if etag != c.ETag() {
		t.Fatalf("ETag %q, want %q", etag, c.ETag())
	}
	if r := f.request(t, "GET", "/api/v1/captures/x", f.token, nil, "If-None-Match", etag); r.StatusCode != 304 {
		t.Fatalf("If-None-Match: %s", r.Status)
	}
	if r := f.request(t, "POST", "/api/v1/captures/x/stop", f.token, nil, "If-Match", `W/"999"`); r.StatusCode != 412 {
		t.Fatalf("stale If-Match: %s", r.Status)
	}
	if r := f.request(t, "POST", "/api/v1/captures/x/stop", f.token, nil, "If-Match", etag); r.StatusCode != 200 {
		t.Fatalf("If-Match: %s", r.Status)
	}
	st, err := f.admin.CaptureStatus(ctx, "", "x")
	if err != nil || st.PacketCaptureState != tripcap.StatusStopped || st.StopReason != tripcap.StopManuallyStopped {
		t.Fatalf("status %+v %v", st, err)
	}
}

func TestListPagination(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for i := range 5 {
		if _, err := f.admin.CreateCapture(ctx, tchttp.CreateCaptureBody{Name: fmt.Sprint("c", i), Parameters: tripcap.PacketCaptureParameters{Target: "web1"}}); err != nil {
			t.Fatal(err)
		}
	}
	r := f.request(t, "GET", "/api/v1/captures?limit=2", f.token, nil)
	var page tchttp.List[*tripcap.PacketCapture]
	if err := json.NewDecoder(r.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	if len(page.Value) != 2 || page.NextLink == "" {
		t.Fatalf("first page: %d items, nextLink %q", len(page.Value), page.NextLink)
	}
	all, err := f.admin.ListCaptures(ctx, "", "")
	if err != nil || len(all) != 5 {
		t.Fatalf("all pages: %d %v", len(all), err)
	}
	if r := f.request(t, "GET", "/api/v1/captures?limit=0", f.token, nil); r.StatusCode != 400 || !strings.Contains(errorBody(t, r).Message, "limit") {
		t.Fatalf("limit=0: %s", r.Status)
	}
}

func TestUploadThenRangeDownload(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c, err := f.admin.CreateCapture(ctx, tchttp.CreateCaptureBody{Name: "x", Parameters: tripcap.PacketCaptureParameters{Target: "web1"}})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789"), 10000)
	sum := sha256.Sum256(data)
	if _, err := f.agent.Upload(ctx, c.ID, "x.cap", hex.EncodeToString(sum[:]), bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	d, err := f.admin.DownloadFile(ctx, "", "x", "", 50000)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Body.Close()
	rest, _ := io.ReadAll(d.Body)
	if d.Offset != 50000 || !bytes.Equal(rest, data[50000:]) || d.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("range download: offset %d, %d bytes, sha %s", d.Offset, len(rest), d.SHA256)
	}
}
