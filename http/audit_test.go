package http_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/internal/logtest"
)

// auditFixture is a server with every service, audited, its log kept.
type auditFixture struct {
	*fixture
	logs    *logtest.Buffer
	secrets []string // every secret the test handled: none may be logged or recorded
	seen    int      // events already checked
}

func newAuditFixture(t *testing.T) *auditFixture {
	t.Helper()
	log, logs := logtest.New()
	f := newFixtureWith(t, fixtureOptions{log: log, audited: true})
	return &auditFixture{fixture: f, logs: logs, secrets: []string{f.token, f.joinToken.Token, f.credential}}
}

// newEvents returns the events recorded since the last call, oldest first.
func (f *auditFixture) newEvents(t *testing.T) []*tripcap.AuditEvent {
	t.Helper()
	all, err := f.admin.ListAuditEvents(t.Context(), tchttp.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	// The listing itself is a GET: it records nothing.
	fresh := all[:len(all)-f.seen]
	f.seen = len(all)
	out := make([]*tripcap.AuditEvent, 0, len(fresh))
	for i := len(fresh) - 1; i >= 0; i-- {
		out = append(out, fresh[i])
	}
	return out
}

// want checks the events since the last check: one each, in order, with
// the given action, principal kind and name, resource, result and status.
func (f *auditFixture) want(t *testing.T, what string, want ...tripcap.AuditEvent) []*tripcap.AuditEvent {
	t.Helper()
	// A streamed answer (a download) reaches the client before its handler
	// returns and the event is recorded: wait for it, bounded. An extra
	// event shows here or at the next check.
	got := f.newEvents(t)
	for deadline := time.Now().Add(5 * time.Second); len(got) < len(want) && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
		got = append(got, f.newEvents(t)...)
	}
	if len(got) != len(want) {
		b, _ := json.Marshal(got)
		t.Fatalf("%s: %d events, want %d: %s", what, len(got), len(want), b)
	}
	for i, w := range want {
		g := got[i]
		if g.Action != w.Action || g.PrincipalKind != w.PrincipalKind || g.PrincipalName != w.PrincipalName ||
			g.Resource != w.Resource || g.Result != w.Result || g.Status != w.Status ||
			(w.HostID != "" && g.HostID != w.HostID) || (w.Detail != "" && !strings.Contains(g.Detail, w.Detail)) {
			b, _ := json.Marshal(g)
			t.Fatalf("%s: event %d:\n got %s\nwant %+v", what, i, b, w)
		}
		if w.Status != 0 && !strings.HasPrefix(g.RemoteAddr, "127.0.0.1:") {
			t.Fatalf("%s: remote address %q", what, g.RemoteAddr)
		}
		if !tripcap.IsID(g.ID) || time.Since(g.Time) > time.Minute {
			t.Fatalf("%s: id %q, time %v", what, g.ID, g.Time)
		}
	}
	return got
}

// checkLogs fails if an event has no log line of its own, or if a secret is
// in the log or the audit log.
func (f *auditFixture) checkLogs(t *testing.T) {
	t.Helper()
	events, err := f.admin.ListAuditEvents(t.Context(), tchttp.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]map[string]any{}
	for _, m := range f.logs.Records() {
		if m["msg"] == "audit" {
			if m["component"] != "audit" {
				t.Fatalf("audit line without component=audit: %v", m)
			}
			lines[m["id"].(string)] = m
		}
	}
	for _, e := range events {
		l := lines[e.ID]
		if l == nil || l["action"] != e.Action || l["principal"] != e.PrincipalName || l["resource"] != e.Resource ||
			l["result"] != string(e.Result) || l["remoteAddr"] != e.RemoteAddr || l["status"] != float64(e.Status) {
			t.Fatalf("event %+v: log line %v", e, l)
		}
	}
	if len(lines) != len(events) {
		t.Fatalf("%d audit log lines, %d events", len(lines), len(events))
	}
	dump, _ := json.Marshal(events)
	for _, s := range f.secrets {
		// The secret part (its prefix is not secret, and is named on purpose).
		part := s[len(s)-20:]
		if strings.Contains(f.logs.String(), part) || strings.Contains(string(dump), part) {
			t.Fatalf("a secret (…%s) is in the log or the audit log", part[len(part)-4:])
		}
	}
}

// TestAuditRecordsCalls: each audited call makes exactly one event with
// who, what, where and how it ended; reads of listings make none.
func TestAuditRecordsCalls(t *testing.T) {
	f := newAuditFixture(t)
	ctx := t.Context()
	admin := tripcap.PrincipalBootstrap
	f.want(t, "setup", tripcap.AuditEvent{Action: "createJoinToken", PrincipalKind: admin, PrincipalName: "admin", Resource: "join-tokens/" + f.joinToken.ID, Result: tripcap.AuditSuccess, Status: 201},
		tripcap.AuditEvent{Action: "agentEnroll", PrincipalKind: tripcap.PrincipalAgent, PrincipalName: "agent web1", Resource: "hosts/web1", HostID: f.host.ID, Result: tripcap.AuditSuccess, Status: 201})

	c, err := f.admin.CreateCapture(ctx, tchttp.CreateCaptureBody{Name: "pc1", Parameters: tripcap.PacketCaptureParameters{Target: "web1"}})
	if err != nil {
		t.Fatal(err)
	}
	f.want(t, "create capture", tripcap.AuditEvent{Action: "createCapture", PrincipalKind: admin, PrincipalName: "admin", Resource: "captures/pc1", HostID: f.host.ID, Result: tripcap.AuditSuccess, Status: 201})

	// Reads record nothing: listings, a capture, its status, hosts.
	for _, p := range []string{"/api/v1/captures", "/api/v1/captures/pc1", "/api/v1/captures/pc1/status", "/api/v1/hosts", "/api/v1/files", "/api/v1/alert-rules", "/api/v1/responders", "/api/v1/audit"} {
		if r := f.request(t, "GET", p, f.token, nil); r.StatusCode != 200 {
			t.Fatalf("GET %s: %s", p, r.Status)
		}
	}
	// Nor do the agent's steady calls.
	if _, err := f.agent.Heartbeat(ctx, tripcap.Heartbeat{}); err != nil {
		t.Fatal(err)
	}
	f.want(t, "reads and heartbeats")

	// The agent's upload, once, and the download.
	data := bytes.Repeat([]byte("audit"), 1000)
	sum := sha256.Sum256(data)
	if _, err := f.agent.Upload(ctx, c.ID, "pc1.cap", hex.EncodeToString(sum[:]), bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	f.want(t, "upload", tripcap.AuditEvent{Action: "agentUploadFile", PrincipalKind: tripcap.PrincipalAgent, PrincipalName: "agent web1", Resource: "captures/" + c.ID + "/files/pc1.cap", HostID: f.host.ID, Result: tripcap.AuditSuccess, Status: 200})
	if r := f.request(t, "GET", "/api/v1/captures/pc1/file?name=pc1.cap", f.token, nil); r.StatusCode != 200 {
		t.Fatalf("download: %s", r.Status)
	}
	f.want(t, "capture download", tripcap.AuditEvent{Action: "downloadCaptureFile", PrincipalKind: admin, PrincipalName: "admin", Resource: "captures/pc1", Result: tripcap.AuditSuccess, Status: 200, Detail: "file pc1.cap"})
	files, err := f.admin.ListFiles(ctx, tchttp.FileQuery{})
	if err != nil || len(files) != 1 {
		t.Fatalf("files: %d, %v", len(files), err)
	}
	d, err := f.admin.DownloadStoredFile(ctx, files[0].ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, d.Body)
	d.Body.Close()
	f.want(t, "file download", tripcap.AuditEvent{Action: "downloadFile", PrincipalKind: admin, PrincipalName: "admin", Resource: "files/" + files[0].ID, Result: tripcap.AuditSuccess, Status: 200})

	// A failed download is recorded too, with its error code.
	missing := tripcap.NewID()
	f.request(t, "GET", "/api/v1/files/"+missing+"/content", f.token, nil)
	f.want(t, "missing file", tripcap.AuditEvent{Action: "downloadFile", PrincipalKind: admin, PrincipalName: "admin", Resource: "files/" + missing, Result: tripcap.AuditFailed, Status: 404, Detail: tripcap.ENOTFOUND})

	if err := f.admin.DeleteCapture(ctx, "", "pc1", false); err != nil {
		t.Fatal(err)
	}
	f.want(t, "delete capture", tripcap.AuditEvent{Action: "deleteCapture", PrincipalKind: admin, PrincipalName: "admin", Resource: "captures/pc1", Result: tripcap.AuditSuccess, Status: 204})

	// A refused credential, on a read route: denied, with no principal,
	// saying what kind of credential it was and nothing of its secret.
	bad := tripcap.NewSecret(tripcap.SecretPrefixAdmin)
	f.secrets = append(f.secrets, bad)
	if r := f.request(t, "GET", "/api/v1/hosts", bad, nil); r.StatusCode != 401 {
		t.Fatalf("bad token: %s", r.Status)
	}
	f.request(t, "DELETE", "/api/v1/captures/pc1", "", nil)
	f.want(t, "401s",
		tripcap.AuditEvent{Action: "listHosts", Resource: "hosts", Result: tripcap.AuditDenied, Status: 401, Detail: "credential refused: tc_admin_…"},
		tripcap.AuditEvent{Action: "deleteCapture", Resource: "captures/pc1", Result: tripcap.AuditDenied, Status: 401, Detail: "no credential"})
	// An agent calling the admin API: denied, and who it was.
	if r := f.request(t, "GET", "/api/v1/hosts", f.secrets[2], nil); r.StatusCode != 403 {
		t.Fatalf("agent on the admin API: %s", r.Status)
	}
	f.want(t, "403", tripcap.AuditEvent{Action: "listHosts", PrincipalKind: tripcap.PrincipalAgent, PrincipalName: "agent web1", Resource: "hosts", Result: tripcap.AuditDenied, Status: 403, HostID: f.host.ID})
	if r := f.request(t, "GET", "/metrics", "", nil); r.StatusCode != 401 {
		t.Fatalf("metrics without a token: %s", r.Status)
	}
	f.want(t, "metrics 401", tripcap.AuditEvent{Action: "metrics", Resource: "metrics", Result: tripcap.AuditDenied, Status: 401})

	// The listing's filters.
	byAction, err := f.admin.ListAuditEvents(ctx, tchttp.AuditQuery{Action: "deleteCapture"})
	if err != nil || len(byAction) != 2 {
		t.Fatalf("action filter: %d, %v", len(byAction), err)
	}
	denied, err := f.admin.ListAuditEvents(ctx, tchttp.AuditQuery{Result: "denied", Resource: "captures/"})
	if err != nil || len(denied) != 1 || denied[0].Detail != "no credential" {
		t.Fatalf("result and resource filter: %+v, %v", denied, err)
	}
	byWho, err := f.admin.ListAuditEvents(ctx, tchttp.AuditQuery{Principal: "agent web1", Since: time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano), Limit: 2})
	if err != nil || len(byWho) != 2 || byWho[0].Action != "listHosts" || byWho[1].Action != "agentUploadFile" {
		t.Fatalf("principal filter: %+v, %v", byWho, err)
	}
	if got, err := f.admin.ListAuditEvents(ctx, tchttp.AuditQuery{Until: "2000-01-01T00:00:00Z"}); err != nil || len(got) != 0 {
		t.Fatalf("until 2000: %d, %v", len(got), err)
	}
	for q, field := range map[string]string{"result=maybe": "result", "since=yesterday": "since", "limit=0": "limit"} {
		if r := f.request(t, "GET", "/api/v1/audit?"+q, f.token, nil); r.StatusCode != 400 || !strings.Contains(errorBody(t, r).Message, field) {
			t.Fatalf("%s: %s", q, r.Status)
		}
	}
	// An agent may not read the audit log (and that is recorded).
	if r := f.request(t, "GET", "/api/v1/audit", f.secrets[2], nil); r.StatusCode != 403 {
		t.Fatalf("agent reading the audit log: %s", r.Status)
	}
	f.want(t, "agent on audit", tripcap.AuditEvent{Action: "listAuditEvents", PrincipalKind: tripcap.PrincipalAgent, PrincipalName: "agent web1", Resource: "audit", Result: tripcap.AuditDenied, Status: 403})
	f.checkLogs(t)
}

// TestAuditFunctionKeys: a function-key call is recorded as the key of its
// responder, and the capture the responder then starts as the responder's;
// a wrong key is recorded denied; the key is in neither log.
func TestAuditFunctionKeys(t *testing.T) {
	f := newAuditFixture(t)
	ctx := t.Context()
	f.newEvents(t)
	rs, err := f.admin.CreateResponder(ctx, &tripcap.Responder{Name: "pc", StopOnResolved: true})
	if err != nil {
		t.Fatal(err)
	}
	key, err := f.admin.CreateResponderKey(ctx, "pc", "")
	if err != nil {
		t.Fatal(err)
	}
	f.secrets = append(f.secrets, key.Secret)
	admin := tripcap.PrincipalBootstrap
	f.want(t, "responder and key",
		tripcap.AuditEvent{Action: "createResponder", PrincipalKind: admin, PrincipalName: "admin", Resource: "responders/pc", Result: tripcap.AuditSuccess, Status: 201},
		tripcap.AuditEvent{Action: "createResponderKey", PrincipalKind: admin, PrincipalName: "admin", Resource: "responders/pc/keys/default", Result: tripcap.AuditSuccess, Status: 201})

	if r := f.request(t, "POST", "/api/functions/pc?code="+key.Secret, "", strings.NewReader(alertmanagerBody("web1:9100", "fp1"))); r.StatusCode != 202 {
		t.Fatalf("function call: %s", r.Status)
	}
	runs := runsOf(t, f.fixture, "pc", 1)
	wrong := "tc_fn_" + strings.Repeat("x", 40)
	f.secrets = append(f.secrets, wrong)
	if r := f.request(t, "POST", "/api/functions/pc", "", strings.NewReader(alertmanagerBody("web1:9100", "fp2")), tchttp.FunctionKeyHeader, wrong); r.StatusCode != 401 {
		t.Fatalf("wrong key: %s", r.Status)
	}
	// The call is recorded when answered, the capture when the worker
	// starts it: either may come first.
	got := f.newEvents(t)
	if len(got) != 3 {
		b, _ := json.Marshal(got)
		t.Fatalf("function calls: %d events, want 3: %s", len(got), b)
	}
	var call, start, denied *tripcap.AuditEvent
	for _, e := range got {
		switch {
		case e.Action == "invokeFunction" && e.Result == tripcap.AuditSuccess:
			call = e
		case e.Action == "invokeFunction":
			denied = e
		case e.Action == "responder.startCapture":
			start = e
		}
	}
	if call == nil || call.PrincipalKind != tripcap.PrincipalFunctionKey || call.PrincipalName != "pc" || call.Resource != "responders/pc" ||
		call.Status != 202 || !strings.Contains(call.Detail, "run "+runs[0].ID) || !strings.HasPrefix(call.RemoteAddr, "127.0.0.1:") {
		t.Fatalf("function call event: %+v", call)
	}
	if denied == nil || denied.PrincipalKind != tripcap.PrincipalFunctionKey || denied.PrincipalName != "" || denied.Result != tripcap.AuditDenied || denied.Status != 401 || denied.Resource != "responders/pc" || denied.Detail != "missing or wrong function key" {
		t.Fatalf("wrong key event: %+v", denied)
	}
	capName := runs[0].Hosts[0].CaptureName
	if start == nil || start.PrincipalKind != tripcap.PrincipalFunctionKey || start.PrincipalID != rs.ID || start.PrincipalName != "pc" ||
		start.Resource != "captures/"+capName || start.HostID != f.host.ID || start.Result != tripcap.AuditSuccess ||
		!strings.Contains(start.Detail, "alert fp1") || !strings.Contains(start.Detail, "run "+runs[0].ID) || start.RemoteAddr != "" {
		t.Fatalf("responder start event: %+v", start)
	}

	// The alert resolves: the responder stops its capture, as the key's.
	resolved := strings.ReplaceAll(alertmanagerBody("web1:9100", "fp1"), `"firing"`, `"resolved"`)
	if r := f.request(t, "POST", "/api/functions/pc", "", strings.NewReader(resolved), tchttp.FunctionKeyHeader, key.Secret); r.StatusCode != 202 {
		t.Fatalf("resolved: %s", r.Status)
	}
	runs = runsOf(t, f.fixture, "pc", 2)
	if runs[0].Hosts[0].Decision != tripcap.DecisionStopped {
		t.Fatalf("resolved run: %+v", runs[0].Hosts)
	}
	got = f.newEvents(t)
	var stop *tripcap.AuditEvent
	for _, e := range got {
		if e.Action == "responder.stopCapture" {
			stop = e
		}
	}
	if len(got) != 2 || stop == nil || stop.PrincipalKind != tripcap.PrincipalFunctionKey || stop.PrincipalName != "pc" || stop.Resource != "captures/"+capName ||
		stop.HostID != f.host.ID || stop.Result != tripcap.AuditSuccess || !strings.Contains(stop.Detail, "alert fp1") {
		b, _ := json.Marshal(got)
		t.Fatalf("resolved: %s", b)
	}

	// Another alert: its capture takes the stopped one's name, which the
	// responder replaces (nameConflict replace): the delete is recorded too.
	if r := f.request(t, "POST", "/api/functions/pc", "", strings.NewReader(alertmanagerBody("web1:9100", "fp3")), tchttp.FunctionKeyHeader, key.Secret); r.StatusCode != 202 {
		t.Fatalf("third alert: %s", r.Status)
	}
	runsOf(t, f.fixture, "pc", 3)
	got = f.newEvents(t)
	seen := map[string]*tripcap.AuditEvent{}
	for _, e := range got {
		seen[e.Action] = e
	}
	del, again := seen["responder.deleteCapture"], seen["responder.startCapture"]
	if len(got) != 3 || seen["invokeFunction"] == nil || del == nil || again == nil || del.Resource != "captures/"+capName || again.Resource != "captures/"+capName ||
		del.Result != tripcap.AuditSuccess || !strings.Contains(del.Detail, "alert fp3") || del.ID > again.ID {
		b, _ := json.Marshal(got)
		t.Fatalf("replace: %s", b)
	}
	f.checkLogs(t)
}

// TestAuditRouteInOpenAPI: with an audit log the API document lists its route.
func TestAuditRouteInOpenAPI(t *testing.T) {
	f := newAuditFixture(t)
	r := f.request(t, "GET", "/api/v1/openapi.json", f.token, nil)
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
		} `json:"paths"`
	}
	if err := json.NewDecoder(r.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if op := doc.Paths["/api/v1/audit"]["get"].OperationID; op != "listAuditEvents" {
		t.Fatalf("GET /api/v1/audit in the OpenAPI document: %q", op)
	}
}

// BenchmarkAuditedWrite is a mutating call (a join token, one row
// written) on a server without and with the audit log: what auditing adds
// to a write. Run as scripts/bench-audit does (see docs/performance.md).
func BenchmarkAuditedWrite(b *testing.B) {
	for _, audited := range []bool{false, true} {
		b.Run(map[bool]string{false: "audit=off", true: "audit=on"}[audited], func(b *testing.B) {
			f := newFixtureWith(b, fixtureOptions{audited: audited})
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := f.admin.CreateJoinToken(b.Context(), time.Hour, 1); err != nil {
						b.Error(err)
						return
					}
				}
			})
			if f.rec != nil {
				f.rec.Flush(b.Context())
				b.ReportMetric(float64(f.rec.Dropped()), "dropped")
			}
		})
	}
}

// TestAuditLogins: a login and a token request are recorded as the user or
// service principal they authenticate; a refused one as who it claimed to
// be, marked so, without the password or secret.
func TestAuditLogins(t *testing.T) {
	f := newAuditFixture(t)
	ctx := t.Context()
	if _, err := f.admin.CreateUser(ctx, "alice", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	sp, err := f.admin.CreateServicePrincipal(ctx, "bot")
	if err != nil {
		t.Fatal(err)
	}
	f.newEvents(t)
	anon, err := tchttp.NewClient(f.url, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.Login(ctx, "alice", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	if _, err := anon.Login(ctx, "alice", "wrong horse battery"); err == nil {
		t.Fatal("a wrong password logged in")
	}
	if _, err := anon.ClientCredentialsToken(ctx, sp.ID, sp.ClientSecret, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := anon.ClientCredentialsToken(ctx, sp.ID, "tc_sp_wrong", ""); err == nil {
		t.Fatal("a wrong client secret got a token")
	}
	f.want(t, "logins",
		tripcap.AuditEvent{Action: "login", PrincipalKind: tripcap.PrincipalUser, PrincipalName: "alice", Resource: "login", Result: tripcap.AuditSuccess, Status: 201},
		tripcap.AuditEvent{Action: "login", PrincipalName: "alice", Resource: "login", Result: tripcap.AuditDenied, Status: 401, Detail: "claimed, not authenticated"},
		tripcap.AuditEvent{Action: "oauth2Token", PrincipalKind: tripcap.PrincipalService, PrincipalName: sp.ID, Resource: "oauth2/token", Result: tripcap.AuditSuccess, Status: 200},
		tripcap.AuditEvent{Action: "oauth2Token", PrincipalName: sp.ID, Resource: "oauth2/token", Result: tripcap.AuditDenied, Status: 401, Detail: "claimed, not authenticated"},
	)
	for _, secret := range []string{"correct horse battery", "wrong horse battery", sp.ClientSecret, "tc_sp_wrong"} {
		if strings.Contains(f.logs.String(), secret) {
			t.Fatalf("the log holds %q", secret)
		}
	}
}

// TestAuditNamesTheCredential: a token an Owner made for someone else is
// recorded as that token, whose record says who made it, so what is done
// with it is not taken for its holder's own doing.
func TestAuditNamesTheCredential(t *testing.T) {
	f := newAuditFixture(t)
	ctx := t.Context()
	if _, err := f.admin.CreateUser(ctx, "alice", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.admin.AssignRole(ctx, "alice", tripcap.RoleNetworkContributor, tripcap.ScopeAll); err != nil {
		t.Fatal(err)
	}
	tok, err := f.admin.CreateToken(ctx, "alice", "made-by-admin", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	f.newEvents(t)
	if _, err := f.admin.WithToken(tok.Token).CreateCapture(ctx, tchttp.CreateCaptureBody{Name: "c1", Parameters: tripcap.PacketCaptureParameters{Target: f.host.Name}}); err != nil {
		t.Fatal(err)
	}
	got := f.want(t, "a capture with a token made for alice",
		tripcap.AuditEvent{Action: "createCapture", PrincipalKind: tripcap.PrincipalUser, PrincipalName: "alice", Resource: "captures/c1", Result: tripcap.AuditSuccess, Status: 201})
	if got[0].CredentialID != tok.ID || tok.CreatedBy != "admin" {
		t.Fatalf("the event's credential %q, want the token %s (made by %q)", got[0].CredentialID, tok.ID, tok.CreatedBy)
	}
}
