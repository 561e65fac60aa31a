package audit_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/audit"
	"github.com/tripcap/tripcap/internal/logtest"
	"github.com/tripcap/tripcap/sqlite"
)

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "tripcap.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func owner(ctx context.Context) context.Context {
	return tripcap.NewContextWithPrincipal(ctx, &tripcap.Principal{ID: "admin", Name: "admin", Kind: tripcap.PrincipalBootstrap, Assignments: tripcap.OwnerEverywhere()})
}

func newRecorder(t *testing.T, store tripcap.AuditStore, cfg audit.Config) (*audit.Recorder, *logtest.Buffer) {
	t.Helper()
	log, buf := logtest.New()
	r := audit.New(store, log, cfg)
	t.Cleanup(func() { r.Close() })
	return r, buf
}

func TestRecordStoresAndLogs(t *testing.T) {
	r, logs := newRecorder(t, openStore(t), audit.Config{})
	ctx := t.Context()
	e := tripcap.AuditEvent{PrincipalID: "u1", PrincipalKind: tripcap.PrincipalUser, PrincipalName: "alice", Action: "createCapture",
		Resource: "captures/cap1", HostID: "h1", RemoteAddr: "127.0.0.1:4000", Status: 201, Detail: strings.Repeat("x", 2000)}
	if err := r.Record(ctx, e); err != nil {
		t.Fatal(err)
	}
	got, next, err := r.List(owner(ctx), tripcap.AuditFilter{})
	if err != nil || next != "" || len(got) != 1 {
		t.Fatalf("list: %v, %d events, next %q", err, len(got), next)
	}
	g := got[0]
	if !tripcap.IsID(g.ID) || g.Time.IsZero() || g.Result != tripcap.AuditSuccess || g.PrincipalName != "alice" || g.Action != "createCapture" ||
		g.Resource != "captures/cap1" || g.HostID != "h1" || g.RemoteAddr != "127.0.0.1:4000" || g.Status != 201 {
		t.Fatalf("stored event: %+v", g)
	}
	if len(g.Detail) > tripcap.MaxAuditDetailLength {
		t.Fatalf("detail not clipped: %d bytes", len(g.Detail))
	}
	lines := logs.Records()
	if len(lines) != 1 {
		t.Fatalf("%d log lines, want 1: %v", len(lines), lines)
	}
	l := lines[0]
	if l["component"] != "audit" || l["msg"] != "audit" || l["id"] != g.ID || l["action"] != "createCapture" || l["principal"] != "alice" ||
		l["resource"] != "captures/cap1" || l["remoteAddr"] != "127.0.0.1:4000" || l["result"] != "success" || l["status"] != float64(201) {
		t.Fatalf("log line: %v", l)
	}
	if r.Recorded() != 1 || r.Dropped() != 0 {
		t.Fatalf("recorded %d, dropped %d", r.Recorded(), r.Dropped())
	}
}

func TestListNeedsAuditRead(t *testing.T) {
	r, _ := newRecorder(t, openStore(t), audit.Config{})
	ctx := t.Context()
	if _, _, err := r.List(ctx, tripcap.AuditFilter{}); tripcap.ErrorCode(err) != tripcap.EUNAUTHORIZED {
		t.Fatalf("anonymous: %v", err)
	}
	for _, role := range []tripcap.RoleName{tripcap.RoleReader, tripcap.RoleNetworkContributor, tripcap.RoleMonitoringContributor, tripcap.RoleCaptureFileReader} {
		p := &tripcap.Principal{ID: "u", Name: "u", Kind: tripcap.PrincipalUser, Assignments: []tripcap.RoleAssignment{{Role: role, Scope: tripcap.ScopeAll}}}
		if _, _, err := r.List(tripcap.NewContextWithPrincipal(ctx, p), tripcap.AuditFilter{}); tripcap.ErrorCode(err) != tripcap.EFORBIDDEN {
			t.Fatalf("%s: %v, want forbidden", role, err)
		}
	}
	// Owner at a narrower scope does not read the whole log.
	p := &tripcap.Principal{ID: "u", Name: "u", Kind: tripcap.PrincipalUser, Assignments: []tripcap.RoleAssignment{{Role: tripcap.RoleOwner, Scope: "label:team=a"}}}
	if _, _, err := r.List(tripcap.NewContextWithPrincipal(ctx, p), tripcap.AuditFilter{}); tripcap.ErrorCode(err) != tripcap.EFORBIDDEN {
		t.Fatalf("scoped owner: %v, want forbidden", err)
	}
}

func TestRetentionPrunesOldEvents(t *testing.T) {
	r, logs := newRecorder(t, openStore(t), audit.Config{Retention: time.Hour, PruneInterval: 20 * time.Millisecond})
	ctx := t.Context()
	now := time.Now()
	for _, age := range []time.Duration{3 * time.Hour, 2 * time.Hour, 30 * time.Minute, 0} {
		if err := r.Record(ctx, tripcap.AuditEvent{Time: now.Add(-age), Action: "deleteHost", Status: 204}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.RunRetention(rctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for r.Pruned() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, _, err := r.List(owner(ctx), tripcap.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || r.Pruned() != 2 {
		t.Fatalf("after retention: %d events kept, %d pruned; want 2, 2", len(got), r.Pruned())
	}
	for _, e := range got {
		if now.Sub(e.Time) > time.Hour {
			t.Fatalf("event of %v kept past a retention of 1h", e.Time)
		}
	}
	found := false
	for _, l := range logs.Records() {
		found = found || l["msg"] == "audit events past retention deleted" && l["events"] == float64(2)
	}
	if !found {
		t.Fatal("no log line for the pruned events")
	}
}

func TestNegativeRetentionKeepsAll(t *testing.T) {
	r, _ := newRecorder(t, openStore(t), audit.Config{Retention: -1})
	if err := r.Record(t.Context(), tripcap.AuditEvent{Time: time.Now().Add(-10 * 365 * 24 * time.Hour), Action: "x"}); err != nil {
		t.Fatal(err)
	}
	r.Flush(t.Context())
	if n, err := r.Prune(t.Context()); n != 0 || err != nil {
		t.Fatalf("prune: %d, %v", n, err)
	}
}

// gatedStore holds every append until the gate opens: the database stalls.
type gatedStore struct {
	tripcap.AuditStore
	gate chan struct{}
}

func (g *gatedStore) AppendAuditEvents(ctx context.Context, ev []*tripcap.AuditEvent) error {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.AuditStore.AppendAuditEvents(ctx, ev)
}

// TestFullQueueWaitsThenDropsLoudly: with the database stalled and the
// queue full, Record waits; past QueueWait the event is counted dropped
// and logged whole at error level, never lost in silence.
func TestFullQueueWaitsThenDropsLoudly(t *testing.T) {
	g := &gatedStore{AuditStore: openStore(t), gate: make(chan struct{})}
	r, logs := newRecorder(t, g, audit.Config{Queue: 1, Batch: 1, QueueWait: 300 * time.Millisecond})
	ctx := t.Context()
	rec := func(action string) error { return r.Record(ctx, tripcap.AuditEvent{Action: action}) }
	// The writer takes "first" and stalls on it; "second" fills the queue
	// (waiting, if need be, for the writer to take "first").
	for _, a := range []string{"first", "second"} {
		if err := rec(a); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	err := rec("third")
	if waited := time.Since(start); tripcap.ErrorCode(err) != tripcap.EUNAVAILABLE || waited < 250*time.Millisecond {
		t.Fatalf("third: %v after %v, want EUNAVAILABLE after waiting 300ms", err, waited)
	}
	if r.Dropped() != 1 {
		t.Fatalf("dropped %d, want 1", r.Dropped())
	}
	close(g.gate)
	got, _, err := r.List(owner(ctx), tripcap.AuditFilter{})
	if err != nil || len(got) != 2 {
		t.Fatalf("stored after the stall: %d, %v; want first and second", len(got), err)
	}
	var dropLine map[string]any
	for _, l := range logs.Records() {
		if l["msg"] == "audit event not stored" {
			dropLine = l
		}
	}
	if dropLine == nil || dropLine["level"] != "ERROR" || dropLine["action"] != "third" || dropLine["id"] == "" {
		t.Fatalf("drop log line: %v", dropLine)
	}
}

// TestFullQueueWaits: a Record that finds the queue full waits for room
// rather than dropping.
func TestFullQueueWaits(t *testing.T) {
	g := &gatedStore{AuditStore: openStore(t), gate: make(chan struct{})}
	r, _ := newRecorder(t, g, audit.Config{Queue: 1, Batch: 1, QueueWait: 20 * time.Second})
	ctx := t.Context()
	for _, a := range []string{"a", "b"} {
		if err := r.Record(ctx, tripcap.AuditEvent{Action: a}); err != nil {
			t.Fatal(err)
		}
	}
	time.AfterFunc(300*time.Millisecond, func() { close(g.gate) })
	for _, a := range []string{"c", "d", "e"} {
		if err := r.Record(ctx, tripcap.AuditEvent{Action: a}); err != nil {
			t.Fatalf("%s: %v", a, err)
		}
	}
	got, _, err := r.List(owner(ctx), tripcap.AuditFilter{})
	if err != nil || len(got) != 5 || r.Dropped() != 0 {
		t.Fatalf("stored %d (err %v), dropped %d; want 5, 0", len(got), err, r.Dropped())
	}
}

// TestCloseStoresQueued: what is queued when the server stops is stored,
// and what comes after is stored directly.
func TestCloseStoresQueued(t *testing.T) {
	s := openStore(t)
	r, _ := newRecorder(t, s, audit.Config{})
	ctx := t.Context()
	for range 100 {
		if err := r.Record(ctx, tripcap.AuditEvent{Action: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	if err := r.Record(ctx, tripcap.AuditEvent{Action: "late"}); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.FindAuditEvents(ctx, tripcap.AuditFilter{})
	if err != nil || len(got) != 101 || r.Recorded() != 101 {
		t.Fatalf("stored %d (err %v), recorded %d; want 101", len(got), err, r.Recorded())
	}
}

func BenchmarkRecord(b *testing.B) {
	s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "tripcap.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r := audit.New(s, slog.New(slog.DiscardHandler), audit.Config{})
	defer r.Close()
	e := tripcap.AuditEvent{PrincipalName: "alice", Action: "createCapture", Resource: "captures/c", Status: 201}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := r.Record(b.Context(), e); err != nil {
				b.Fatal(err)
			}
		}
	})
	r.Flush(b.Context())
}
