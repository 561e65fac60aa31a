package http_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/identity"
	"github.com/tripcap/tripcap/metricwire"
)

// The route × identity matrix: every operation of the server's route
// table (its OpenAPI document, which is built from the table that
// registers the handlers), and POST /api/functions/{responder}, is called
// by every identity, and the status of each answer is asserted. A route
// without an entry in accessMatrix fails the test, so a new route cannot
// ship without saying who may call it.
//
// The identities: anonymous, the bootstrap admin token, agent A (naming
// agent B's captures and files where a route takes one), a responder's
// function key, a join token, service principals holding each role at
// each scope (by their client-credentials JWT) and a user's login token,
// and JWTs that must be refused: expired, tampered with, for another
// audience.

// mreq is one request of the matrix.
type mreq struct {
	method, path, body string
	hdr                []string
}

// access is who may call a route.
type access int

const (
	// manage: a principal holding perm (at the host "on" names); agents
	// are refused (403).
	manage access = iota
	// agentOnly: agents only; everyone else is refused (403).
	agentOnly
	// joinOnly: a join token only (enrollment).
	joinOnly
	// functionOnly: a responder's function key only.
	functionOnly
	// anyCaller: anyone authenticated.
	anyCaller
	// public: anyone, with or without a credential (login, the token
	// endpoint, the key documents); a credential sent is not looked at.
	public
	// self: a user or service principal about itself; the bootstrap token
	// and agents are no such principal (400), other credentials are not
	// bearer credentials (401).
	self
)

type matrixEntry struct {
	access access
	perm   tripcap.Permission
	// also is a permission needed at "*" besides perm, which the route's
	// summary mentions: writing a responder or its keys needs
	// captures/write too, since a responder captures wherever its alerts
	// point.
	also tripcap.Permission
	// jwt is the status of a caller authenticated by a client-credentials
	// JWT (0: as any other caller): it may not create API tokens.
	jwt int
	// on is the host the call acts on ("a", "b"), "" when it acts on no
	// host's resource, or "list" for a listing filtered to what the caller
	// may read.
	on string
	// ok overrides the documented success status for a caller that is
	// authorized, where this fixture makes the call fail after that
	// (documented beside the entry).
	ok int
	// agentA is agent A's status on an agent route naming agent B's
	// resources (0: the success status).
	agentA int
	// after, when set, sees an authorized call's answer (the rotated admin
	// token is the fixture's from then on).
	after func(t *testing.T, resp *http.Response)
	// hidden is the status for a caller that may not read the host: 404
	// (it does not exist for it) unless set.
	hidden int
	req    func(t *testing.T) mreq
}

// mintRoleToken makes a service principal holding grants and returns its
// client-credentials JWT, from the token endpoint.
func mintRoleToken(t *testing.T, m *matrixFixture, name string, grants []tripcap.RoleAssignment) string {
	t.Helper()
	sp := m.principal(t, "sp-"+name, grants)
	tok, err := m.anon.ClientCredentialsToken(t.Context(), sp.ID, sp.ClientSecret, "")
	if err != nil {
		t.Fatalf("client credentials of %s: %v", name, err)
	}
	return tok.AccessToken
}

// principal makes a service principal holding grants.
func (m *matrixFixture) principal(t *testing.T, name string, grants []tripcap.RoleAssignment) *tripcap.PrincipalRecord {
	t.Helper()
	sp, err := m.admin.CreateServicePrincipal(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range grants {
		if _, err := m.admin.AssignRole(t.Context(), sp.ID, g.Role, g.Scope); err != nil {
			t.Fatal(err)
		}
	}
	return sp
}

// roleColumns are the role identities, each a service principal.
var roleColumns = map[string][]tripcap.RoleAssignment{
	"readerAll":  {{Role: tripcap.RoleReader, Scope: tripcap.ScopeAll}},
	"readerA":    {{Role: tripcap.RoleReader, Scope: "label:team=a"}},
	"netA":       {{Role: tripcap.RoleNetworkContributor, Scope: "label:team=a"}},
	"netB":       {{Role: tripcap.RoleNetworkContributor, Scope: "label:team=b"}},
	"monAll":     {{Role: tripcap.RoleMonitoringContributor, Scope: tripcap.ScopeAll}},
	"contribAll": {{Role: tripcap.RoleContributor, Scope: tripcap.ScopeAll}},
	"contribA":   {{Role: tripcap.RoleContributor, Scope: "label:team=a"}},
	"filesXloc":  {{Role: tripcap.RoleCaptureFileReader, Scope: "location:xloc"}},
	"ownerTeamB": {{Role: tripcap.RoleOwner, Scope: "label:team=b"}},
	"noRole":     nil,
}

// matrixFixture is a server with two agents' hosts, a (team=a, location
// westeurope) and b (team=b, location xloc), and b's capture with a
// stored file, a fired alert on b, an alert rule, action group, silence
// and responder with a function key.
type matrixFixture struct {
	*fixture
	hostA, hostB   *tripcap.Host
	agentA, agentB *tchttp.Client
	tokenA         string
	capB           *tripcap.PacketCapture
	fileB          *tripcap.StoredFile
	alertB         *tripcap.Alert
	functionKey    string
	anon           *tchttp.Client
	// user is a user (Reader at label:team=a) and password, other a
	// service principal whose tokens and grants the matrix acts on.
	user, password string
	other          *tripcap.PrincipalRecord
	otherToken     *tripcap.APIToken
	n              atomic.Int64
}

func (m *matrixFixture) unique(prefix string) string { return fmt.Sprintf("%s-%d", prefix, m.n.Add(1)) }

func (m *matrixFixture) enroll(t *testing.T, name, team, location string) (*tripcap.EnrollResponse, *tchttp.Client) {
	t.Helper()
	jt, err := m.admin.CreateJoinToken(t.Context(), time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := m.admin.Enroll(t.Context(), tripcap.EnrollRequest{JoinToken: jt.Token, Name: name, Location: location, Labels: map[string]string{"team": team}})
	if err != nil {
		t.Fatal(err)
	}
	return resp, m.admin.WithToken(resp.Credential)
}

// captureOnB makes a capture on host b, with a stored file when stored is set.
func (m *matrixFixture) captureOnB(t *testing.T, stored bool) (*tripcap.PacketCapture, *tripcap.StoredFile) {
	t.Helper()
	c, err := m.admin.CreateCapture(t.Context(), tchttp.CreateCaptureBody{Name: m.unique("cap"), Parameters: tripcap.PacketCaptureParameters{Target: m.hostB.Name}})
	if err != nil {
		t.Fatal(err)
	}
	if !stored {
		return c, nil
	}
	data := []byte("packets of " + c.Name)
	sum := sha256.Sum256(data)
	if _, err := m.agentB.Upload(t.Context(), c.ID, "f.cap", hex.EncodeToString(sum[:]), bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	files, err := m.admin.ListFiles(t.Context(), tchttp.FileQuery{Capture: c.Name})
	if err != nil || len(files) != 1 {
		t.Fatalf("files of %s: %v, %v", c.Name, files, err)
	}
	return c, files[0]
}

func jsonBody(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func matrixRule(name, host string) *tripcap.AlertRule {
	return &tripcap.AlertRule{Name: name, Scopes: []tripcap.Scope{tripcap.Scope("host:" + host)}, EvaluationFrequency: "PT1S", WindowSize: "PT5S",
		Criteria: tripcap.Criteria{AllOf: []tripcap.Criterion{{Static: &tripcap.StaticCriterion{
			MetricCriterion: tripcap.MetricCriterion{MetricName: "Network Out Total", TimeAggregation: tripcap.AggregationAverage},
			Operator:        tripcap.OperatorGreaterThan, Threshold: 1000}}}},
		Actions: []tripcap.Action{{ActionGroupID: "ops"}}}
}

var matrixHook = []tripcap.WebhookReceiver{{Name: "w", ServiceURI: "http://127.0.0.1:9/hook"}}

func newMatrixFixture(t *testing.T) *matrixFixture {
	t.Helper()
	m := &matrixFixture{fixture: newFixtureWith(t, fixtureOptions{audited: true})}
	ctx := t.Context()
	var respA, respB *tripcap.EnrollResponse
	respA, m.agentA = m.enroll(t, "host-a", "a", "westeurope")
	respB, m.agentB = m.enroll(t, "host-b", "b", "xloc")
	m.hostA, m.hostB, m.tokenA = respA.Host, respB.Host, respA.Credential
	m.capB, m.fileB = m.captureOnB(t, true)

	if _, err := m.admin.CreateActionGroup(ctx, &tripcap.ActionGroup{Name: "ops", WebhookReceivers: matrixHook}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.admin.CreateAlertRule(ctx, matrixRule("rule", "host-b")); err != nil {
		t.Fatal(err)
	}
	// Fire the rule on b as an agent would: points above the threshold.
	var b tripcap.MetricBatch
	start := time.Now().Add(-time.Minute)
	for i := range 10 {
		b.Points = append(b.Points, tripcap.MetricPoint{Metric: tripcap.MetricNetworkOutBytes, Time: start.Add(time.Duration(i) * time.Second), Value: 5000})
	}
	if err := m.agentB.PostMetrics(ctx, b); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); m.alertB == nil; time.Sleep(20 * time.Millisecond) {
		as, err := m.admin.ListAlerts(ctx, controlplane.AlertQuery{Host: "host-b"})
		if err != nil {
			t.Fatal(err)
		}
		if len(as) > 0 {
			m.alertB = as[0]
		} else if time.Now().After(deadline) {
			t.Fatal("the rule on host-b did not fire")
		}
	}
	for _, name := range []string{"pc", "keys"} {
		if _, err := m.admin.CreateResponder(ctx, &tripcap.Responder{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	k, err := m.admin.CreateResponderKey(ctx, "pc", "")
	if err != nil {
		t.Fatal(err)
	}
	m.functionKey = k.Secret
	if _, err := m.admin.CreateResponderKey(ctx, "keys", "rotated"); err != nil {
		t.Fatal(err)
	}

	if m.anon, err = tchttp.NewClient(m.url, ""); err != nil {
		t.Fatal(err)
	}
	m.user, m.password = "alice", "correct horse battery"
	if _, err := m.admin.CreateUser(ctx, m.user, m.password); err != nil {
		t.Fatal(err)
	}
	if _, err := m.admin.AssignRole(ctx, m.user, tripcap.RoleReader, "label:team=a"); err != nil {
		t.Fatal(err)
	}
	m.other = m.principal(t, "other", nil)
	if m.otherToken, err = m.admin.CreateToken(ctx, m.other.ID, "kept", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	return m
}

// foreignJWT signs a token with the server's own keys through another
// identity service over the same store, whose clock or audience differ:
// a token the server must refuse although its signature is good.
func (m *matrixFixture) foreignJWT(t *testing.T, cfg identity.Config) string {
	t.Helper()
	// A Reader everywhere: a token wrongly accepted shows as 200s. (Not an
	// Owner: that would let the admin token be revoked mid-matrix.)
	sp := m.principal(t, m.unique("sp-foreign"), []tripcap.RoleAssignment{{Role: tripcap.RoleReader, Scope: tripcap.ScopeAll}})
	cfg.Issuer, cfg.Password = m.ids.Config().Issuer, testPassword
	ids, err := identity.New(m.store, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ids.Token(t.Context(), identity.TokenRequest{GrantType: "client_credentials", ClientID: sp.ID, ClientSecret: sp.ClientSecret, Audience: cfg.Audience})
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// accessMatrix has an entry per route ID (operationId).
func accessMatrix(m *matrixFixture) map[string]matrixEntry {
	get := func(path string) func(*testing.T) mreq {
		return func(*testing.T) mreq { return mreq{method: "GET", path: path} }
	}
	ifMatchAll := []string{"If-Match", "*"}
	capB := "/api/v1/captures/" + m.capB.ID
	tenant := m.ids.TenantID()
	agentFile := "/api/v1/agent/captures/" + m.capB.ID + "/files/g.cap"
	return map[string]matrixEntry{
		"openapi": {access: anyCaller, req: get("/api/v1/openapi.json")},

		"listHosts": {perm: tripcap.PermRead, on: "list", req: get("/api/v1/hosts")},
		"getHost":   {perm: tripcap.PermRead, on: "b", req: get("/api/v1/hosts/host-b")},
		"deleteHost": {perm: tripcap.PermHostsWrite, on: "b", req: func(t *testing.T) mreq {
			resp, _ := m.enroll(t, m.unique("gone"), "b", "xloc")
			return mreq{method: "DELETE", path: "/api/v1/hosts/" + resp.Host.ID}
		}},

		// No enrollment awaits approval: an authorized approval is 404.
		"approveEnrollment": {perm: tripcap.PermHostsWrite, on: "b", ok: 404, req: func(t *testing.T) mreq {
			return mreq{method: "POST", path: "/api/v1/hosts/host-b/approve-enrollment", body: "{}"}
		}},
		"listPendingEnrollments": {perm: tripcap.PermHostsWrite, req: get("/api/v1/enrollments")},
		// No such enrollment waits: an authorized delete is 404.
		"deletePendingEnrollment": {perm: tripcap.PermHostsWrite, ok: 404, req: func(t *testing.T) mreq {
			return mreq{method: "DELETE", path: "/api/v1/enrollments/" + tripcap.NewID()}
		}},

		"createJoinToken": {perm: tripcap.PermHostsWrite, req: func(t *testing.T) mreq { return mreq{method: "POST", path: "/api/v1/join-tokens", body: "{}"} }},
		"listJoinTokens":  {perm: tripcap.PermHostsWrite, req: get("/api/v1/join-tokens")},
		"deleteJoinToken": {perm: tripcap.PermHostsWrite, req: func(t *testing.T) mreq {
			jt, err := m.admin.CreateJoinToken(t.Context(), time.Hour, 1)
			if err != nil {
				t.Fatal(err)
			}
			return mreq{method: "DELETE", path: "/api/v1/join-tokens/" + jt.ID}
		}},

		"listWatchers": {perm: tripcap.PermRead, on: "list", req: get("/api/v1/watchers")},
		"updateWatcher": {perm: tripcap.PermHostsWrite, req: func(t *testing.T) mreq {
			return mreq{method: "PATCH", path: "/api/v1/watchers/NetworkWatcher_xloc", body: `{"maxCaptures":50}`}
		}},

		"listCaptures": {perm: tripcap.PermRead, on: "list", req: get("/api/v1/captures")},
		// A host the caller may not read is an unknown target: 400.
		"createCapture": {perm: tripcap.PermCaptureWrite, on: "b", hidden: 400, req: func(t *testing.T) mreq {
			return mreq{method: "POST", path: "/api/v1/captures", body: jsonBody(t, tchttp.CreateCaptureBody{Name: m.unique("new"), Parameters: tripcap.PacketCaptureParameters{Target: "host-b"}})}
		}},
		"getCapture":       {perm: tripcap.PermRead, on: "b", req: get(capB)},
		"getCaptureStatus": {perm: tripcap.PermRead, on: "b", req: get(capB + "/status")},
		"stopCapture": {perm: tripcap.PermCaptureWrite, on: "b", req: func(t *testing.T) mreq {
			c, _ := m.captureOnB(t, false)
			return mreq{method: "POST", path: "/api/v1/captures/" + c.ID + "/stop"}
		}},
		"deleteCapture": {perm: tripcap.PermCaptureWrite, on: "b", req: func(t *testing.T) mreq {
			c, _ := m.captureOnB(t, false)
			return mreq{method: "DELETE", path: "/api/v1/captures/" + c.ID}
		}},
		"downloadCaptureFile": {perm: tripcap.PermFileRead, on: "b", req: get(capB + "/file")},

		"listFiles":    {perm: tripcap.PermRead, on: "list", req: get("/api/v1/files")},
		"getFile":      {perm: tripcap.PermRead, on: "b", req: get("/api/v1/files/" + m.fileB.ID)},
		"downloadFile": {perm: tripcap.PermFileRead, on: "b", req: get("/api/v1/files/" + m.fileB.ID + "/content")},
		"deleteFile": {perm: tripcap.PermFileDelete, on: "b", req: func(t *testing.T) mreq {
			_, f := m.captureOnB(t, true)
			return mreq{method: "DELETE", path: "/api/v1/files/" + f.ID}
		}},

		"agentEnroll": {access: joinOnly, req: func(t *testing.T) mreq {
			return mreq{method: "POST", path: "/api/v1/agent/enroll", body: jsonBody(t, tripcap.EnrollRequest{Name: m.unique("joined"), Location: "xloc"})}
		}},
		"agentHeartbeat":   {access: agentOnly, req: func(*testing.T) mreq { return mreq{method: "POST", path: "/api/v1/agent/heartbeat", body: "{}"} }},
		"agentAssignments": {access: agentOnly, req: get("/api/v1/agent/assignments?wait=0s")},
		// B's capture reported by A: answered, listed as unknown, unchanged (checked after the matrix).
		"agentReports": {access: agentOnly, req: func(t *testing.T) mreq {
			return mreq{method: "POST", path: "/api/v1/agent/reports", body: jsonBody(t, []tripcap.SessionReport{{CaptureID: m.capB.ID, Status: tripcap.StatusError, Message: "from agent A"}})}
		}},
		"agentPostMetrics": {access: agentOnly, req: func(*testing.T) mreq {
			return mreq{method: "POST", path: "/api/v1/agent/metrics", body: `{"points":[]}`}
		}},
		// Over the matrix's HTTP/1.1 an agent is told to POST instead (400);
		// http/metricstream_test.go streams over HTTP/2.
		"agentMetricStream": {access: agentOnly, ok: 400, req: func(*testing.T) mreq {
			return mreq{method: "POST", path: "/api/v1/agent/metrics/stream", hdr: []string{"Content-Type", metricwire.ContentType}}
		}},
		"agentUploadTarget": {access: agentOnly, agentA: 404, req: func(*testing.T) mreq { return mreq{method: "POST", path: agentFile + "/target", body: `{"size":4}`} }},
		"agentCompleteUpload": {access: agentOnly, agentA: 404, req: func(*testing.T) mreq {
			return mreq{method: "POST", path: agentFile + "/complete", body: `{"sha256":"","target":{"kind":"server"}}`}
		}},
		"agentUploadFile": {access: agentOnly, agentA: 404, req: func(*testing.T) mreq {
			return mreq{method: "PUT", path: agentFile, body: "pcap", hdr: []string{"Content-Type", "application/octet-stream"}}
		}},

		"listStorageAccounts": {perm: tripcap.PermRead, req: get("/api/v1/storage")},
		// This server opens no storage URLs: an authorized add is 409.
		"addStorageAccount": {perm: tripcap.PermStorageWrite, ok: 409, req: func(t *testing.T) mreq {
			return mreq{method: "POST", path: "/api/v1/storage", body: jsonBody(t, tchttp.StorageAccountBody{Name: m.unique("more"), URL: "file://" + t.TempDir()})}
		}},
		// No account was added: an authorized delete is 404.
		"deleteStorageAccount": {perm: tripcap.PermStorageWrite, ok: 404, req: func(*testing.T) mreq { return mreq{method: "DELETE", path: "/api/v1/storage/" + m.unique("none")} }},

		"listMetricDefinitions": {perm: tripcap.PermRead, on: "list", req: get("/api/v1/metric-definitions")},
		"queryMetrics":          {perm: tripcap.PermRead, on: "b", req: get("/api/v1/hosts/host-b/metrics/network_out_bytes")},

		"createAlertRule": {perm: tripcap.PermMonitoringWrite, req: func(t *testing.T) mreq {
			return mreq{method: "POST", path: "/api/v1/alert-rules", body: jsonBody(t, matrixRule(m.unique("r"), "host-a"))}
		}},
		"listAlertRules": {perm: tripcap.PermRead, req: get("/api/v1/alert-rules")},
		"getAlertRule":   {perm: tripcap.PermRead, req: get("/api/v1/alert-rules/rule")},
		"updateAlertRule": {perm: tripcap.PermMonitoringWrite, req: func(t *testing.T) mreq {
			return mreq{method: "PUT", path: "/api/v1/alert-rules/rule", body: jsonBody(t, matrixRule("rule", "host-b")), hdr: ifMatchAll}
		}},
		"deleteAlertRule": {perm: tripcap.PermMonitoringWrite, req: func(t *testing.T) mreq {
			r, err := m.admin.CreateAlertRule(t.Context(), matrixRule(m.unique("r"), "host-a"))
			if err != nil {
				t.Fatal(err)
			}
			return mreq{method: "DELETE", path: "/api/v1/alert-rules/" + r.ID}
		}},

		"createActionGroup": {perm: tripcap.PermMonitoringWrite, req: func(t *testing.T) mreq {
			return mreq{method: "POST", path: "/api/v1/action-groups", body: jsonBody(t, &tripcap.ActionGroup{Name: m.unique("g"), WebhookReceivers: matrixHook})}
		}},
		"listActionGroups": {perm: tripcap.PermRead, req: get("/api/v1/action-groups")},
		"getActionGroup":   {perm: tripcap.PermRead, req: get("/api/v1/action-groups/ops")},
		"updateActionGroup": {perm: tripcap.PermMonitoringWrite, req: func(t *testing.T) mreq {
			return mreq{method: "PUT", path: "/api/v1/action-groups/ops", body: jsonBody(t, &tripcap.ActionGroup{WebhookReceivers: matrixHook}), hdr: ifMatchAll}
		}},
		"deleteActionGroup": {perm: tripcap.PermMonitoringWrite, req: func(t *testing.T) mreq {
			g, err := m.admin.CreateActionGroup(t.Context(), &tripcap.ActionGroup{Name: m.unique("g"), WebhookReceivers: matrixHook})
			if err != nil {
				t.Fatal(err)
			}
			return mreq{method: "DELETE", path: "/api/v1/action-groups/" + g.ID}
		}},

		"createSilence": {perm: tripcap.PermMonitoringWrite, req: func(t *testing.T) mreq {
			return mreq{method: "POST", path: "/api/v1/silences", body: jsonBody(t, &tripcap.Silence{Rule: "rule", Comment: "matrix", EndsAt: time.Now().Add(time.Hour)})}
		}},
		"listSilences": {perm: tripcap.PermRead, req: get("/api/v1/silences")},
		"expireSilence": {perm: tripcap.PermMonitoringWrite, req: func(t *testing.T) mreq {
			sl, err := m.admin.CreateSilence(t.Context(), &tripcap.Silence{Rule: "rule", Comment: "matrix", EndsAt: time.Now().Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			return mreq{method: "DELETE", path: "/api/v1/silences/" + sl.ID}
		}},

		"listAlerts": {perm: tripcap.PermRead, on: "list", req: get("/api/v1/alerts")},
		"getAlert":   {perm: tripcap.PermRead, on: "b", req: get("/api/v1/alerts/" + m.alertB.ID)},

		"createResponder": {perm: tripcap.PermMonitoringWrite, also: tripcap.PermCaptureWrite, req: func(t *testing.T) mreq {
			return mreq{method: "POST", path: "/api/v1/responders", body: jsonBody(t, &tripcap.Responder{Name: m.unique("rs")})}
		}},
		"listResponders": {perm: tripcap.PermRead, req: get("/api/v1/responders")},
		"getResponder":   {perm: tripcap.PermRead, req: get("/api/v1/responders/pc")},
		"updateResponder": {perm: tripcap.PermMonitoringWrite, also: tripcap.PermCaptureWrite, req: func(t *testing.T) mreq {
			return mreq{method: "PUT", path: "/api/v1/responders/pc", body: jsonBody(t, &tripcap.Responder{}), hdr: ifMatchAll}
		}},
		"deleteResponder": {perm: tripcap.PermMonitoringWrite, req: func(t *testing.T) mreq {
			rs, err := m.admin.CreateResponder(t.Context(), &tripcap.Responder{Name: m.unique("rs")})
			if err != nil {
				t.Fatal(err)
			}
			return mreq{method: "DELETE", path: "/api/v1/responders/" + rs.ID}
		}},
		"listResponderRuns": {perm: tripcap.PermRead, req: get("/api/v1/responders/pc/runs")},
		"createResponderKey": {perm: tripcap.PermMonitoringWrite, also: tripcap.PermCaptureWrite, req: func(t *testing.T) mreq {
			return mreq{method: "POST", path: "/api/v1/responders/keys/keys", body: jsonBody(t, tchttp.ResponderKeyBody{Name: m.unique("k")})}
		}},
		"listResponderKeys": {perm: tripcap.PermRead, req: get("/api/v1/responders/pc/keys")},
		"rotateResponderKey": {perm: tripcap.PermMonitoringWrite, also: tripcap.PermCaptureWrite, req: func(*testing.T) mreq {
			return mreq{method: "POST", path: "/api/v1/responders/keys/keys/rotated/rotate"}
		}},
		"revokeResponderKey": {perm: tripcap.PermMonitoringWrite, req: func(t *testing.T) mreq {
			k, err := m.admin.CreateResponderKey(t.Context(), "keys", m.unique("k"))
			if err != nil {
				t.Fatal(err)
			}
			return mreq{method: "DELETE", path: "/api/v1/responders/keys/keys/" + k.Name}
		}},

		"createPrincipal": {perm: tripcap.PermAccessWrite, req: func(t *testing.T) mreq {
			return mreq{method: "POST", path: "/api/v1/principals", body: jsonBody(t, tchttp.CreatePrincipalBody{Kind: tripcap.PrincipalService, Name: m.unique("made")})}
		}},
		"listPrincipals": {perm: tripcap.PermAccessWrite, req: get("/api/v1/principals")},
		"getPrincipal":   {perm: tripcap.PermAccessWrite, req: get("/api/v1/principals/other")},
		"deletePrincipal": {perm: tripcap.PermAccessWrite, req: func(t *testing.T) mreq {
			sp := m.principal(t, m.unique("gone"), nil)
			return mreq{method: "DELETE", path: "/api/v1/principals/" + sp.ID}
		}},
		"listPrincipalTokens": {perm: tripcap.PermAccessWrite, req: get("/api/v1/principals/other/tokens")},
		"createPrincipalToken": {perm: tripcap.PermAccessWrite, jwt: 403, req: func(t *testing.T) mreq {
			return mreq{method: "POST", path: "/api/v1/principals/other/tokens", body: jsonBody(t, tchttp.CreateTokenBody{Name: m.unique("t"), ExpiresAt: time.Now().Add(time.Hour)})}
		}},
		"listTokens": {access: self, req: get("/api/v1/tokens")},
		"createToken": {access: self, jwt: 403, req: func(t *testing.T) mreq {
			return mreq{method: "POST", path: "/api/v1/tokens", body: jsonBody(t, tchttp.CreateTokenBody{Name: m.unique("mine"), ExpiresAt: time.Now().Add(time.Hour)})}
		}},
		// Another principal's token: only with access/write.
		"revokeToken": {perm: tripcap.PermAccessWrite, req: func(t *testing.T) mreq {
			tok, err := m.admin.CreateToken(t.Context(), m.other.ID, m.unique("t"), time.Now().Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			return mreq{method: "DELETE", path: "/api/v1/tokens/" + tok.ID}
		}},
		"listRoleAssignments": {perm: tripcap.PermAccessWrite, req: get("/api/v1/role-assignments")},
		"createRoleAssignment": {perm: tripcap.PermAccessWrite, req: func(t *testing.T) mreq {
			return mreq{method: "POST", path: "/api/v1/role-assignments", body: jsonBody(t, tchttp.RoleAssignmentBody{Principal: "other", Role: tripcap.RoleReader, Scope: tripcap.Scope("host:" + m.unique("h"))})}
		}},
		"deleteRoleAssignment": {perm: tripcap.PermAccessWrite, req: func(t *testing.T) mreq {
			a, err := m.admin.AssignRole(t.Context(), "other", tripcap.RoleReader, tripcap.Scope("host:"+m.unique("h")))
			if err != nil {
				t.Fatal(err)
			}
			return mreq{method: "DELETE", path: "/api/v1/role-assignments/" + a.ID}
		}},
		// The admin token rotated is the fixture's from then on.
		"rotateAdminToken": {perm: tripcap.PermAccessWrite, req: func(*testing.T) mreq { return mreq{method: "POST", path: "/api/v1/admin-token/rotate"} },
			after: func(t *testing.T, resp *http.Response) {
				var b tchttp.AdminTokenBody
				if err := json.NewDecoder(resp.Body).Decode(&b); err != nil || b.Token == "" || b.Token == m.token {
					t.Fatalf("rotated admin token: %+v, %v", b, err)
				}
				m.token, m.admin = b.Token, m.admin.WithToken(b.Token)
			}},
		// No principal holds Owner at "*": revoking would leave the server
		// unmanageable, so an authorized call is refused (412).
		"revokeAdminToken": {perm: tripcap.PermAccessWrite, ok: 412, req: func(*testing.T) mreq { return mreq{method: "DELETE", path: "/api/v1/admin-token"} }},
		"login": {access: public, req: func(t *testing.T) mreq {
			return mreq{method: "POST", path: "/api/v1/login", body: jsonBody(t, tchttp.LoginBody{User: m.user, Password: m.password})}
		}},
		"oauth2Token": {access: public, req: func(t *testing.T) mreq {
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {m.other.ID}, "client_secret": {m.other.ClientSecret}}
			return mreq{method: "POST", path: "/oauth2/token", body: form.Encode(), hdr: []string{"Content-Type", "application/x-www-form-urlencoded"}}
		}},
		"jwks":                {access: public, req: get("/.well-known/jwks.json")},
		"openidConfiguration": {access: public, req: get("/.well-known/openid-configuration")},
		"aadTokenV1": {access: public, req: func(t *testing.T) mreq {
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {m.other.ID}, "client_secret": {m.other.ClientSecret}, "resource": {"https://management.azure.com/"}}
			return mreq{method: "POST", path: "/" + tenant + "/oauth2/token", body: form.Encode(), hdr: []string{"Content-Type", "application/x-www-form-urlencoded"}}
		}},
		"aadTokenV2": {access: public, req: func(t *testing.T) mreq {
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {m.other.ID}, "client_secret": {m.other.ClientSecret}, "scope": {"https://management.azure.com//.default"}}
			return mreq{method: "POST", path: "/" + tenant + "/oauth2/v2.0/token", body: form.Encode(), hdr: []string{"Content-Type", "application/x-www-form-urlencoded"}}
		}},
		"aadOpenIDConfigurationV2": {access: public, req: get("/" + tenant + "/v2.0/.well-known/openid-configuration")},
		"aadOpenIDConfigurationV1": {access: public, req: get("/" + tenant + "/.well-known/openid-configuration")},
		"aadKeysV2":                {access: public, req: get("/" + tenant + "/discovery/v2.0/keys")},
		"aadAuthorizeV2":           {access: public, req: get("/" + tenant + "/oauth2/v2.0/authorize?client_id=x&response_type=code")},
		"aadAuthorizeV1":           {access: public, req: get("/" + tenant + "/oauth2/authorize")},
		"aadKeysV1":                {access: public, req: get("/" + tenant + "/discovery/keys")},

		"listAuditEvents": {perm: tripcap.PermAuditRead, req: get("/api/v1/audit")},

		"invokeFunction": {access: functionOnly, req: func(t *testing.T) mreq {
			return mreq{method: "POST", path: "/api/functions/pc", body: alertmanagerBody("host-b:9100", m.unique("fp"))}
		}},
	}
}

// matrixRoute is one operation and its documented success status.
type matrixRoute struct {
	id, method, path string
	ok               int
	// perm is the permission the OpenAPI document says the route needs.
	perm    string
	summary string
}

// matrixRoutes lists the server's operations from its OpenAPI document,
// and the function endpoint, which is served beside the table.
func matrixRoutes(t *testing.T, srv *tchttp.Server) []matrixRoute {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string                     `json:"operationId"`
			Responses   map[string]json.RawMessage `json:"responses"`
			Permission  string                     `json:"x-tripcap-permission"`
			Summary     string                     `json:"summary"`
		} `json:"paths"`
	}
	b, err := json.Marshal(srv.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var routes []matrixRoute
	for p, ops := range doc.Paths {
		for method, op := range ops {
			rt := matrixRoute{id: op.OperationID, method: strings.ToUpper(method), path: p, perm: op.Permission, summary: op.Summary}
			for code := range op.Responses {
				if n, err := strconv.Atoi(code); err == nil {
					rt.ok = n
				}
			}
			routes = append(routes, rt)
		}
	}
	routes = append(routes, matrixRoute{id: "invokeFunction", method: "POST", path: "/api/functions/{responder}", ok: http.StatusAccepted})
	slices.SortFunc(routes, func(a, b matrixRoute) int { return strings.Compare(a.id, b.id) })
	return routes
}

// matrixIdentity is a caller of the matrix: its credential for a request
// (fresh where using it spends it), and the status it must get.
type matrixIdentity struct {
	name  string
	token func(t *testing.T) string
	want  func(e matrixEntry, ok int) int
}

func TestAccessMatrix(t *testing.T) {
	m := newMatrixFixture(t)
	entries := accessMatrix(m)
	routes := matrixRoutes(t, m.server)

	fixed := func(s string) func(*testing.T) string { return func(*testing.T) string { return s } }
	// refused is what every credential that is not a bearer credential
	// of this server gets: 401, except where none is needed.
	refused := func(e matrixEntry, ok int) int {
		if e.access == public {
			return ok
		}
		return 401
	}
	identities := []matrixIdentity{
		{"anonymous", fixed(""), refused},
		{"admin", func(*testing.T) string { return m.token }, func(e matrixEntry, ok int) int {
			switch e.access {
			case agentOnly:
				return 403
			case joinOnly, functionOnly:
				return 401
			case self:
				return 400
			}
			return ok
		}},
		{"agentA", fixed(m.tokenA), func(e matrixEntry, ok int) int {
			switch e.access {
			case manage:
				return 403
			case joinOnly, functionOnly:
				return 401
			case self:
				return 400
			case agentOnly:
				if e.agentA != 0 {
					return e.agentA
				}
			}
			return ok
		}},
		{"functionKey", fixed(m.functionKey), func(e matrixEntry, ok int) int {
			if e.access == functionOnly || e.access == public {
				return ok
			}
			return 401
		}},
		{"expiredJWT", fixed(m.foreignJWT(t, identity.Config{Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }})), refused},
		{"otherAudienceJWT", fixed(m.foreignJWT(t, identity.Config{Audience: "https://graph.microsoft.com/"})), refused},
		{"tamperedJWT", fixed(tamper(t, m.foreignJWT(t, identity.Config{}), m.other.ID)), refused},
		{"joinToken", func(t *testing.T) string {
			jt, err := m.admin.CreateJoinToken(t.Context(), time.Hour, 1)
			if err != nil {
				t.Fatal(err)
			}
			return jt.Token
		}, func(e matrixEntry, ok int) int {
			if e.access == joinOnly || e.access == public {
				return ok
			}
			return 401
		}},
	}
	for name, grants := range roleColumns {
		// Each a service principal's client-credentials JWT.
		p := &tripcap.Principal{Assignments: grants, Credential: tripcap.CredentialJWT}
		identities = append(identities, matrixIdentity{name, fixed(mintRoleToken(t, m, name, grants)), func(e matrixEntry, ok int) int {
			return roleWant(p, m, e, ok)
		}})
	}
	// An Azure AD-shaped token for ARM (v1 endpoint), as the 2017 seed has
	// it: a Reader everywhere.
	aadReader := m.principal(t, "sp-aad-reader", []tripcap.RoleAssignment{{Role: tripcap.RoleReader, Scope: tripcap.ScopeAll}})
	aadTok, aadErr := m.ids.AADToken(t.Context(), identity.AADTokenRequest{Tenant: m.ids.TenantID(), GrantType: "client_credentials", ClientID: aadReader.ID, ClientSecret: aadReader.ClientSecret, Resource: "https://management.azure.com/"})
	if aadErr != nil {
		t.Fatal(aadErr)
	}
	aadP := &tripcap.Principal{Assignments: []tripcap.RoleAssignment{{Role: tripcap.RoleReader, Scope: tripcap.ScopeAll}}, Credential: tripcap.CredentialJWT}
	identities = append(identities, matrixIdentity{"aadReaderAll", fixed(aadTok.AccessToken), func(e matrixEntry, ok int) int { return roleWant(aadP, m, e, ok) }})
	// A user's login token (Reader at label:team=a), as the CLI has it.
	login, err := m.anon.Login(t.Context(), m.user, m.password)
	if err != nil {
		t.Fatal(err)
	}
	alice := &tripcap.Principal{Assignments: []tripcap.RoleAssignment{{Role: tripcap.RoleReader, Scope: "label:team=a"}}, Credential: tripcap.CredentialAPIToken}
	identities = append(identities, matrixIdentity{"userReaderA", fixed(login.Token), func(e matrixEntry, ok int) int { return roleWant(alice, m, e, ok) }})

	checked := map[string]bool{}
	for _, rt := range routes {
		e, ok := entries[rt.id]
		if !ok {
			t.Errorf("%s %s (%s) has no entry in the access matrix: say who may call it", rt.method, rt.path, rt.id)
			continue
		}
		checked[rt.id] = true
		// The API's document says what the matrix finds.
		if documented := tripcap.Permission(rt.perm); e.access == manage && documented != e.perm || e.access != manage && documented != "" {
			t.Errorf("%s documents permission %q; the matrix asserts %q", rt.id, documented, e.perm)
		}
		if e.also != "" && !strings.Contains(rt.summary, string(e.also)) {
			t.Errorf("%s needs %s besides %s; its summary does not say so: %q", rt.id, e.also, e.perm, rt.summary)
		}
		success := rt.ok
		if e.ok != 0 {
			success = e.ok
		}
		for _, id := range identities {
			req := e.req(t)
			if req.method != rt.method || !pathMatches(rt.path, req.path) {
				t.Fatalf("%s: the matrix's request %s %s is not this route's %s %s", rt.id, req.method, req.path, rt.method, rt.path)
			}
			hdr := slices.Clone(req.hdr)
			if tok := id.token(t); tok != "" {
				hdr = append(hdr, "Authorization", "Bearer "+tok)
				if e.access == functionOnly {
					hdr = append(hdr, tchttp.FunctionKeyHeader, tok)
				}
			}
			if req.body != "" && !slices.Contains(hdr, "Content-Type") {
				hdr = append(hdr, "Content-Type", "application/json")
			}
			var body io.Reader
			if req.body != "" {
				body = strings.NewReader(req.body)
			}
			resp := m.request(t, req.method, req.path, "", body, hdr...)
			want := id.want(e, success)
			if resp.StatusCode != want {
				b, _ := io.ReadAll(resp.Body)
				t.Errorf("%s %s as %s: %d, want %d (%s)", req.method, req.path, id.name, resp.StatusCode, want, bytes.TrimSpace(b))
			} else if e.after != nil && want == success {
				e.after(t, resp)
			}
		}
	}
	t.Logf("%d routes × %d identities", len(checked), len(identities))
	for id := range entries {
		if !checked[id] {
			t.Errorf("the access matrix has an entry for %s, which the server does not serve", id)
		}
	}

	// Agent A's report on B's capture changed nothing.
	c, err := m.admin.GetCapture(context.Background(), "", m.capB.ID)
	if err != nil || c.Status != tripcap.StatusNotStarted || c.ErrorMessage != "" {
		t.Errorf("agent B's capture after agent A's report: %+v, %v", c, err)
	}
}

// tamper makes a JWT's subject another principal's, keeping its signature.
func tamper(t *testing.T, jwt, subject string) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	claims, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(claims, &c); err != nil {
		t.Fatal(err)
	}
	c["sub"] = subject
	b, _ := json.Marshal(c)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// pathMatches reports whether a concrete path (and query) is one of the pattern's.
func pathMatches(pattern, path string) bool {
	u, err := url.Parse(path)
	if err != nil {
		return false
	}
	ps, cs := strings.Split(pattern, "/"), strings.Split(u.Path, "/")
	if len(ps) != len(cs) {
		return false
	}
	for i := range ps {
		if ps[i] != cs[i] && !(strings.HasPrefix(ps[i], "{") && cs[i] != "") {
			return false
		}
	}
	return true
}

// roleWant is the status a principal holding roles must get: refused
// (403) without the permission anywhere, or without e.also at "*"; for a
// host's resource, as if it did not exist (404, or e.hidden) when it may
// not read that host, and 403 when it reads but may not act there; e.jwt
// when it authenticated with a JWT.
func roleWant(p *tripcap.Principal, m *matrixFixture, e matrixEntry, ok int) int {
	if e.jwt != 0 && p.Credential == tripcap.CredentialJWT {
		return e.jwt
	}
	switch e.access {
	case agentOnly:
		return 403
	case joinOnly, functionOnly:
		return 401
	case anyCaller, public, self:
		return ok
	}
	if !p.CanSome(e.perm) || e.also != "" && !p.Can(e.also, nil) {
		return 403
	}
	var h *tripcap.Host
	switch e.on {
	case "list":
		return ok
	case "a":
		h = m.hostA
	case "b":
		h = m.hostB
	}
	if p.Can(e.perm, h) {
		return ok
	}
	if h != nil && !p.Can(tripcap.PermRead, h) {
		if e.hidden != 0 {
			return e.hidden
		}
		return 404
	}
	return 403
}
