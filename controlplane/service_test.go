package controlplane_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/filestore"
	"github.com/tripcap/tripcap/sqlite"
	"github.com/tripcap/tripcap/storetest"
)

// fixture is a control plane on a real store (SQLite unless given) and file storage.
type fixture struct {
	svc   *controlplane.Service
	store tripcap.Store
	blobs tripcap.BlobStore
	admin context.Context
}

func newFixture(t *testing.T, cfg controlplane.Config) *fixture {
	t.Helper()
	store, err := sqlite.Open(t.Context(), t.TempDir()+"/tripcap.db")
	if err != nil {
		t.Fatal(err)
	}
	store.SetSealer(storetest.NewSealer(t))
	t.Cleanup(func() { store.Close() })
	return fixtureOn(t, store, cfg)
}

// fixtureOn is a control plane on the given store.
func fixtureOn(t *testing.T, store tripcap.Store, cfg controlplane.Config) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	blobs, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage = map[string]tripcap.BlobStore{"local": blobs}
	cfg.DefaultStorage = "local"
	svc := controlplane.New(store, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	admin := tripcap.NewContextWithPrincipal(ctx, &tripcap.Principal{Kind: tripcap.PrincipalBootstrap, Assignments: tripcap.OwnerEverywhere()})
	return &fixture{svc: svc, store: store, blobs: blobs, admin: admin}
}

// enroll enrolls a host and returns a context acting as its agent.
func (f *fixture) enroll(t *testing.T, name string) (context.Context, *tripcap.Host) {
	t.Helper()
	jt, err := f.svc.CreateJoinToken(f.admin, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.svc.Enroll(context.Background(), tripcap.EnrollRequest{JoinToken: jt.Token, Name: name, Location: "westeurope"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.svc.Authenticate(context.Background(), resp.Credential)
	if err != nil {
		t.Fatal(err)
	}
	return tripcap.NewContextWithPrincipal(f.admin, p), resp.Host
}

func wantCode(t *testing.T, err error, code, msgPart string) {
	t.Helper()
	if tripcap.ErrorCode(err) != code {
		t.Fatalf("error %v: code %q, want %q", err, tripcap.ErrorCode(err), code)
	}
	if !strings.Contains(tripcap.ErrorMessage(err), msgPart) {
		t.Fatalf("error message %q does not mention %q", tripcap.ErrorMessage(err), msgPart)
	}
}

func TestJoinTokenIsSingleUse(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	jt, err := f.svc.CreateJoinToken(f.admin, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Enroll(context.Background(), tripcap.EnrollRequest{JoinToken: jt.Token, Name: "a"}); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Enroll(context.Background(), tripcap.EnrollRequest{JoinToken: jt.Token, Name: "b"})
	wantCode(t, err, tripcap.EUNAUTHORIZED, "joinToken")
	_, err = f.svc.CreateJoinToken(context.Background(), time.Hour, 1)
	wantCode(t, err, tripcap.EUNAUTHORIZED, "credential")
}

func TestReenrollKeepsHostAndRevokesOldCredential(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	agentCtx, h1 := f.enroll(t, "web1")
	old := tripcap.PrincipalFromContext(agentCtx)
	// An agent that lost its state re-enrolls with a token bound to its host.
	jt, err := f.svc.CreateHostJoinToken(f.admin, "web1", time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.svc.Enroll(context.Background(), tripcap.EnrollRequest{JoinToken: jt.Token, Name: "web1", Location: "westeurope"})
	if err != nil {
		t.Fatal(err)
	}
	if h2 := resp.Host; h1.ID != h2.ID {
		t.Fatalf("re-enrolled host got a new id %s, want %s", h2.ID, h1.ID)
	}
	creds, err := f.store.FindCredentials(f.admin, tripcap.RoleAgent)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range creds {
		if c.ID == old.CredentialID {
			t.Fatal("the old agent credential was not revoked")
		}
	}
}

func TestCreateCaptureValidates(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	_, h := f.enroll(t, "web1")
	base := tripcap.PacketCaptureParameters{Target: h.Name}
	cases := []struct {
		name   string
		mutate func(p *tripcap.PacketCaptureParameters)
		code   string
		field  string
	}{
		{"time limit", func(p *tripcap.PacketCaptureParameters) { p.TimeLimitInSeconds = 18001 }, tripcap.EINVALID, "timeLimitInSeconds"},
		{"bytes per packet", func(p *tripcap.PacketCaptureParameters) { p.BytesToCapturePerPacket = -1 }, tripcap.EINVALID, "bytesToCapturePerPacket"},
		{"unknown storage", func(p *tripcap.PacketCaptureParameters) { p.StorageLocation.StorageID = "nope" }, tripcap.EINVALID, "storageLocation.storageId"},
		{"path escapes", func(p *tripcap.PacketCaptureParameters) { p.StorageLocation.FilePath = "/var/captures/../etc/x.cap" }, tripcap.EINVALID, "storageLocation.filePath"},
		{"unknown target", func(p *tripcap.PacketCaptureParameters) { p.Target = "nosuchhost" }, tripcap.EINVALID, "target"},
		{"format", func(p *tripcap.PacketCaptureParameters) { p.Format = "erf" }, tripcap.EINVALID, "format"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := base
			tc.mutate(&p)
			_, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "c", Parameters: p})
			wantCode(t, err, tc.code, tc.field)
		})
	}
}

func TestCreateCaptureDefaultsAndConflicts(t *testing.T) {
	f := newFixture(t, controlplane.Config{MaxCapturesPerWatcher: 2})
	_, h := f.enroll(t, "web1")
	c, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "PSAzureFunction", Parameters: tripcap.PacketCaptureParameters{Target: h.Name}})
	if err != nil {
		t.Fatal(err)
	}
	p := c.Parameters
	if p.TotalBytesPerSession != 1073741824 || p.TimeLimitInSeconds != 18000 || p.BytesToCapturePerPacket != 0 {
		t.Fatalf("Azure defaults not applied: %+v", p)
	}
	if p.Target != h.ResourceID() {
		t.Fatalf("target %q, want the VM resource id %q", p.Target, h.ResourceID())
	}
	wantPrefix := "file://"
	if !strings.HasPrefix(p.StorageLocation.StoragePath, wantPrefix) || !strings.Contains(p.StorageLocation.StoragePath, "/subscriptions/") ||
		!strings.Contains(p.StorageLocation.StoragePath, "/providers/microsoft.compute/virtualmachines/web1/") || !strings.HasSuffix(p.StorageLocation.StoragePath, ".cap") {
		t.Fatalf("storagePath %q does not follow Azure's naming", p.StorageLocation.StoragePath)
	}
	if c.Status != tripcap.StatusNotStarted || c.Desired != tripcap.DesiredRunning {
		t.Fatalf("new capture: status %s desired %s", c.Status, c.Desired)
	}
	_, err = f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "PSAzureFunction", Parameters: tripcap.PacketCaptureParameters{Target: h.Name}})
	wantCode(t, err, tripcap.ECONFLICT, "PSAzureFunction")
	if _, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "second", Parameters: tripcap.PacketCaptureParameters{Target: h.Name}}); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "third", Parameters: tripcap.PacketCaptureParameters{Target: h.Name}})
	wantCode(t, err, tripcap.ELIMIT, "")
	// Deleting frees both the name and a place under the limit.
	if err := f.svc.DeleteCapture(f.admin, "", "PSAzureFunction", "", false); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "PSAzureFunction", Parameters: tripcap.PacketCaptureParameters{Target: h.Name}}); err != nil {
		t.Fatalf("name not reusable after delete: %v", err)
	}
}

func TestAssignmentsWakeOnCreate(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	agentCtx, h := f.enroll(t, "web1")
	first, err := f.svc.Assignments(agentCtx, -1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Assignments) != 0 {
		t.Fatalf("fresh host has %d assignments", len(first.Assignments))
	}
	type result struct {
		a   *tripcap.Assignments
		err error
		at  time.Time
	}
	got := make(chan result, 1)
	go func() {
		a, err := f.svc.Assignments(agentCtx, first.Revision, 30*time.Second)
		got <- result{a, err, time.Now()}
	}()
	time.Sleep(100 * time.Millisecond)
	created := time.Now()
	c, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "x", Parameters: tripcap.PacketCaptureParameters{Target: h.Name}})
	if err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.a.Assignments) != 1 || r.a.Assignments[0].ID != c.ID || r.a.Assignments[0].Desired != tripcap.DesiredRunning {
		t.Fatalf("assignments %+v, want the new capture", r.a)
	}
	if d := r.at.Sub(created); d > 500*time.Millisecond {
		t.Fatalf("long poll woke %s after the create", d)
	}
	// No change: the poll waits out its time and returns the same revision.
	start := time.Now()
	same, err := f.svc.Assignments(agentCtx, r.a.Revision, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if same.Revision != r.a.Revision || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("idle poll returned revision %d after %s", same.Revision, time.Since(start))
	}
}

func TestReportsAndStop(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	agentCtx, h := f.enroll(t, "web1")
	otherCtx, _ := f.enroll(t, "web2")
	c, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "x", Parameters: tripcap.PacketCaptureParameters{Target: h.Name}})
	if err != nil {
		t.Fatal(err)
	}
	// Another host's agent cannot report on this capture.
	res, err := f.svc.Report(otherCtx, []tripcap.SessionReport{{CaptureID: c.ID, Status: tripcap.StatusStopped}})
	if err != nil || len(res.Unknown) != 1 {
		t.Fatalf("report from another host: %+v %v", res, err)
	}
	now := time.Now().UTC()
	if _, err := f.svc.Report(agentCtx, []tripcap.SessionReport{{CaptureID: c.ID, Status: tripcap.StatusRunning, StartTime: &now, Stats: tripcap.CaptureStats{Packets: 5, Bytes: 500}}}); err != nil {
		t.Fatal(err)
	}
	got, err := f.svc.FindCapture(f.admin, "", "x")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != tripcap.StatusRunning || got.Stats.Packets != 5 || got.CaptureStartTime == nil {
		t.Fatalf("after report: %+v", got)
	}
	// Stop with a stale ETag fails; with the current one it asks the agent to stop.
	_, err = f.svc.StopCapture(f.admin, "", "x", `W/"1"`)
	wantCode(t, err, tripcap.EPRECONDITION, "ETag")
	stopped, err := f.svc.StopCapture(f.admin, "", "x", got.ETag())
	if err != nil {
		t.Fatal(err)
	}
	if stopped.Desired != tripcap.DesiredStopped || stopped.Status != tripcap.StatusRunning {
		t.Fatalf("after stop: desired %s status %s", stopped.Desired, stopped.Status)
	}
	if _, err := f.svc.Report(agentCtx, []tripcap.SessionReport{{CaptureID: c.ID, Status: tripcap.StatusStopped, StopReason: tripcap.StopManuallyStopped, Stats: tripcap.CaptureStats{Packets: 9}}}); err != nil {
		t.Fatal(err)
	}
	got, _ = f.svc.FindCapture(f.admin, "", "x")
	if got.Status != tripcap.StatusStopped || got.StopReason != tripcap.StopManuallyStopped {
		t.Fatalf("final: %s %s", got.Status, got.StopReason)
	}
}

// TestProgressReportsAreBatched: the first Running report and any change of
// status are written at once; "still running" progress is written by the
// next once-a-second batch.
func TestProgressReportsAreBatched(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	agentCtx, h := f.enroll(t, "web1")
	c, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "x", Parameters: tripcap.PacketCaptureParameters{Target: h.Name}})
	if err != nil {
		t.Fatal(err)
	}
	report := func(st tripcap.PacketCaptureStatus, packets uint64) *tripcap.ReportResult {
		t.Helper()
		now := time.Now().UTC()
		res, err := f.svc.Report(agentCtx, []tripcap.SessionReport{{CaptureID: c.ID, Status: st, StartTime: &now, Stats: tripcap.CaptureStats{Packets: packets}}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	stored := func() *tripcap.PacketCapture {
		t.Helper()
		got, err := f.store.FindCapture(f.admin, tripcap.CaptureFilter{ID: &c.ID, IncludeDeleted: true})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	report(tripcap.StatusRunning, 1)
	if got := stored(); got.Status != tripcap.StatusRunning || got.Stats.Packets != 1 {
		t.Fatalf("the first Running report was not written at once: %s, %d packets", got.Status, got.Stats.Packets)
	}
	time.Sleep(100 * time.Millisecond) // Run, started beside the test, turns batching on
	for i := uint64(2); i <= 5; i++ {
		report(tripcap.StatusRunning, i)
	}
	deadline := time.Now().Add(5 * time.Second)
	for stored().Stats.Packets != 5 {
		if time.Now().After(deadline) {
			t.Fatalf("progress not written within 5 s: %d packets stored, want 5", stored().Stats.Packets)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Version 2 was the first Running report; the four progress reports,
	// sent within milliseconds, fall in at most two batches.
	if v := stored().Version; v > 4 {
		t.Errorf("four progress reports cost %d writes, want at most 2", v-2)
	}
	report(tripcap.StatusStopped, 6)
	if got := stored(); got.Status != tripcap.StatusStopped || got.Stats.Packets != 6 {
		t.Fatalf("a final report was not written at once: %s, %d packets", got.Status, got.Stats.Packets)
	}

}

// TestFinalReportIsNotOverwrittenByHeldProgress: a "still running" report
// held for the next batch, and one an agent sends late, never replace the
// final figures: the stored statistics are the file's.
func TestFinalReportIsNotOverwrittenByHeldProgress(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	agentCtx, h := f.enroll(t, "web1")
	c, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "x", Parameters: tripcap.PacketCaptureParameters{Target: h.Name}})
	if err != nil {
		t.Fatal(err)
	}
	report := func(st tripcap.PacketCaptureStatus, packets uint64, size int64) {
		t.Helper()
		now := time.Now().UTC()
		r := tripcap.SessionReport{CaptureID: c.ID, Status: st, StartTime: &now,
			Stats: tripcap.CaptureStats{Packets: packets},
			Files: []tripcap.CaptureFile{{Name: "f.cap", Size: size, SHA256: strings.Repeat("a", 64)}}}
		if st.Terminal() {
			r.StopTime = &now
			r.StopReason = "Manual"
		}
		if _, err := f.svc.Report(agentCtx, []tripcap.SessionReport{r}); err != nil {
			t.Fatal(err)
		}
	}
	report(tripcap.StatusRunning, 1, 100)
	time.Sleep(100 * time.Millisecond)         // Run, started beside the test, turns batching on
	report(tripcap.StatusRunning, 16299, 9000) // held for the next flush
	report(tripcap.StatusStopped, 16333, 9100) // the final figures, written at once
	report(tripcap.StatusRunning, 16310, 9050) // a late, older report
	time.Sleep(2500 * time.Millisecond)        // past the next flushes
	got, err := f.store.FindCapture(f.admin, tripcap.CaptureFilter{ID: &c.ID, IncludeDeleted: true})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != tripcap.StatusStopped || got.Stats.Packets != 16333 || len(got.Files) != 1 || got.Files[0].Size != 9100 {
		t.Fatalf("after the final report: %s, %d packets, files %+v; want Stopped, 16333 packets, one file of 9100 bytes",
			got.Status, got.Stats.Packets, got.Files)
	}
}

// TestRevokedCredentialFailsAtOnce: the credential cache does not outlive a
// revocation made through the same server.
func TestRevokedCredentialFailsAtOnce(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	jt, err := f.svc.CreateJoinToken(f.admin, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.svc.Enroll(context.Background(), tripcap.EnrollRequest{JoinToken: jt.Token, Name: "web1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(context.Background(), resp.Credential); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteHost(f.admin, "web1"); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Authenticate(context.Background(), resp.Credential)
	wantCode(t, err, tripcap.EUNAUTHORIZED, "not valid")
}

func TestStopBeforeStartEndsAtOnce(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	_, h := f.enroll(t, "web1")
	if _, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "x", Parameters: tripcap.PacketCaptureParameters{Target: h.Name}}); err != nil {
		t.Fatal(err)
	}
	c, err := f.svc.StopCapture(f.admin, "", "x", "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != tripcap.StatusStopped || c.StopReason != tripcap.StopManuallyStopped {
		t.Fatalf("stopped before start: %s %s", c.Status, c.StopReason)
	}
}

// TestOpenPollCountsAsHeartbeat: a host whose agent holds a long poll open
// stays Online with no other heartbeat; once the poll ends and nothing
// follows, it goes Offline.
func TestOpenPollCountsAsHeartbeat(t *testing.T) {
	f := newFixture(t, controlplane.Config{HeartbeatInterval: 100 * time.Millisecond})
	agentCtx, h := f.enroll(t, "web1")
	hb, err := f.svc.Heartbeat(agentCtx, tripcap.Heartbeat{})
	if err != nil || !hb.OpenPollIsHeartbeat {
		t.Fatalf("heartbeat answer %+v %v: the server must say it counts open polls", hb, err)
	}
	first, err := f.svc.Assignments(agentCtx, -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := f.svc.Assignments(agentCtx, first.Revision, 2*time.Second)
		done <- err
	}()
	// Five times OfflineAfter (300 ms) with only the poll open.
	time.Sleep(1500 * time.Millisecond)
	if host, err := f.svc.FindHost(f.admin, h.Name); err != nil || host.State != tripcap.HostOnline {
		t.Fatalf("with its poll open the host is %v (%v)", host.State, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		host, err := f.svc.FindHost(f.admin, h.Name)
		if err != nil {
			t.Fatal(err)
		}
		if host.State == tripcap.HostOffline {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the host stayed Online 3 s after its poll ended")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSilentHostGoesOfflineAndCapturesEndAgentStopped(t *testing.T) {
	f := newFixture(t, controlplane.Config{HeartbeatInterval: 100 * time.Millisecond})
	agentCtx, h := f.enroll(t, "web1")
	c, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "x", Parameters: tripcap.PacketCaptureParameters{Target: h.Name}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Report(agentCtx, []tripcap.SessionReport{{CaptureID: c.ID, Status: tripcap.StatusRunning}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := f.svc.FindCapture(f.admin, "", c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == tripcap.StatusError {
			if got.StopReason != tripcap.StopAgentStopped || len(got.Errors) != 1 || got.Errors[0] != tripcap.CaptureErrAgentStopped {
				t.Fatalf("ended as %s %v", got.StopReason, got.Errors)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("capture still %s after the host went silent", got.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	host, err := f.svc.FindHost(f.admin, h.Name)
	if err != nil || host.State != tripcap.HostOffline {
		t.Fatalf("host state %v %v", host, err)
	}
	// Heartbeats bring it back (they reach the store in batches, once a second).
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if _, err := f.svc.Heartbeat(agentCtx, tripcap.Heartbeat{}); err != nil {
			t.Fatal(err)
		}
	}
	if host, _ := f.svc.FindHost(f.admin, h.Name); host.State != tripcap.HostOnline {
		t.Fatalf("after a heartbeat the host is %s", host.State)
	}
}

func TestUploadAndDownload(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	agentCtx, h := f.enroll(t, "web1")
	c, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "x", Parameters: tripcap.PacketCaptureParameters{Target: h.Name}})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("pcap"), 1000)
	sum := sha256.Sum256(data)
	hexSum := hex.EncodeToString(sum[:])
	_, err = f.svc.UploadFile(agentCtx, c.ID, "x.cap", strings.Repeat("0", 64), bytes.NewReader(data))
	wantCode(t, err, tripcap.EINVALID, "SHA-256")
	stored, err := f.svc.UploadFile(agentCtx, c.ID, "x.cap", hexSum, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if !stored.Stored || stored.SHA256 != hexSum || stored.Size != int64(len(data)) {
		t.Fatalf("stored %+v", stored)
	}
	// A retried upload is a no-op.
	if _, err := f.svc.UploadFile(agentCtx, c.ID, "x.cap", hexSum, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	got, _ := f.svc.FindCapture(f.admin, "", c.ID)
	if len(got.Files) != 1 {
		t.Fatalf("files after retried upload: %+v", got.Files)
	}
	rc, file, err := f.svc.OpenFile(f.admin, "", "x", "")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	back, _ := io.ReadAll(rc)
	if !bytes.Equal(back, data) || file.SHA256 != hexSum {
		t.Fatal("downloaded file differs from the upload")
	}
	// Deleting keeps the file unless asked, as Azure does.
	if err := f.svc.DeleteCapture(f.admin, "", "x", "", false); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.FindCapture(f.admin, "", "x"); tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
		t.Fatalf("deleted capture still found: %v", err)
	}
	if rc, _, err := f.blobs.Open(f.admin, stored.Key); err != nil {
		t.Fatalf("the file went with the capture: %v", err)
	} else {
		rc.Close()
	}
	c2, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "y", Parameters: tripcap.PacketCaptureParameters{Target: h.Name}})
	if err != nil {
		t.Fatal(err)
	}
	stored2, err := f.svc.UploadFile(agentCtx, c2.ID, "y.cap", hexSum, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteCapture(f.admin, "", "y", "", true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.blobs.Open(f.admin, stored2.Key); tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
		t.Fatalf("deleteFile kept the file: %v", err)
	}
}
