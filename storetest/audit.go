package storetest

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

var auditTests = []struct {
	name string
	fn   func(t *testing.T, s tripcap.Store)
}{
	{"Audit/RoundTrip", testAuditRoundTrip},
	{"Audit/Filters", testAuditFilters},
	{"Audit/Pagination", testAuditPagination},
	{"Audit/DeleteBefore", testAuditDeleteBefore},
	{"Audit/Invalid", testAuditInvalid},
	{"Audit/ConcurrentAppends", testAuditConcurrent},
	{"Audit/LargeBatch", testAuditLargeBatch},
}

// auditIDs returns n ids in ascending order, as the Recorder's NewIDs sort
// by time (NewIDs made in one millisecond sort at random).
func auditIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = tripcap.NewID()
	}
	slices.Sort(ids)
	return ids
}

// auditFixture returns events at base+i minutes, oldest first, by three
// principals, of several actions and results.
func auditFixture() []*tripcap.AuditEvent {
	ids := auditIDs(6)
	mk := func(i int, pid, pname string, kind tripcap.PrincipalKind, action, resource string, res tripcap.AuditResult, status int) *tripcap.AuditEvent {
		return &tripcap.AuditEvent{ID: ids[i], Time: base.Add(time.Duration(i) * time.Minute), PrincipalID: pid, PrincipalKind: kind,
			PrincipalName: pname, Action: action, Resource: resource, HostID: "h" + pid, RemoteAddr: "127.0.0.1:5000",
			Result: res, Status: status, Detail: "détail \"quoted\""}
	}
	return []*tripcap.AuditEvent{
		mk(0, "u1", "alice", tripcap.PrincipalUser, "createCapture", "captures/cap1", tripcap.AuditSuccess, 201),
		mk(1, "u2", "bob", tripcap.PrincipalUser, "createCapture", "captures/cap_%", tripcap.AuditDenied, 403),
		mk(2, "u1", "alice", tripcap.PrincipalUser, "deleteCapture", "captures/cap1", tripcap.AuditSuccess, 204),
		mk(3, "", "", "", "listHosts", "hosts", tripcap.AuditDenied, 401),
		mk(4, "r1", "resp", tripcap.PrincipalSystem, "responder.startCapture", "watchers/w/captures/x", tripcap.AuditSuccess, 0),
		mk(5, "u1", "alice", tripcap.PrincipalUser, "downloadFile", "files/f1", tripcap.AuditFailed, 404),
	}
}

func auditEventIDs(t *testing.T, s tripcap.Store, f tripcap.AuditFilter) []string {
	t.Helper()
	list, _, err := s.FindAuditEvents(t.Context(), f)
	must(t, err)
	var out []string
	for _, e := range list {
		out = append(out, e.ID)
	}
	return out
}

func testAuditRoundTrip(t *testing.T, s tripcap.Store) {
	ev := auditFixture()
	must(t, s.AppendAuditEvents(t.Context(), ev))
	got, next, err := s.FindAuditEvents(t.Context(), tripcap.AuditFilter{})
	must(t, err)
	if next != "" || len(got) != len(ev) {
		t.Fatalf("all events: %d, next %q", len(got), next)
	}
	for i, e := range got {
		want := *ev[len(ev)-1-i]
		want.Time = want.Time.UTC()
		wantEqual(t, "audit event newest first", e, &want)
	}
	must(t, s.AppendAuditEvents(t.Context(), nil))
}

func testAuditFilters(t *testing.T, s tripcap.Store) {
	ev := auditFixture()
	must(t, s.AppendAuditEvents(t.Context(), ev))
	id := func(is ...int) []string {
		var out []string
		for _, i := range is {
			out = append(out, ev[i].ID)
		}
		return out
	}
	ptr := func(s string) *string { return &s }
	res := func(r tripcap.AuditResult) *tripcap.AuditResult { return &r }
	at := func(m int) *time.Time { t := base.Add(time.Duration(m) * time.Minute); return &t }
	cases := []struct {
		name string
		f    tripcap.AuditFilter
		want []string
	}{
		{"principal by name", tripcap.AuditFilter{Principal: ptr("alice")}, id(5, 2, 0)},
		{"principal by id", tripcap.AuditFilter{Principal: ptr("u2")}, id(1)},
		{"action", tripcap.AuditFilter{Action: ptr("createCapture")}, id(1, 0)},
		{"resource prefix", tripcap.AuditFilter{ResourcePrefix: ptr("captures/")}, id(2, 1, 0)},
		{"resource prefix is literal", tripcap.AuditFilter{ResourcePrefix: ptr("captures/cap_")}, id(1)},
		{"resource prefix whole", tripcap.AuditFilter{ResourcePrefix: ptr("captures/cap1")}, id(2, 0)},
		{"empty resource prefix", tripcap.AuditFilter{ResourcePrefix: ptr("")}, id(5, 4, 3, 2, 1, 0)},
		{"result", tripcap.AuditFilter{Result: res(tripcap.AuditDenied)}, id(3, 1)},
		{"since inclusive", tripcap.AuditFilter{Since: at(4)}, id(5, 4)},
		{"until exclusive", tripcap.AuditFilter{Until: at(1)}, id(0)},
		{"window", tripcap.AuditFilter{Since: at(1), Until: at(3)}, id(2, 1)},
		{"combined", tripcap.AuditFilter{Principal: ptr("alice"), Result: res(tripcap.AuditSuccess), Action: ptr("deleteCapture")}, id(2)},
		{"none", tripcap.AuditFilter{Principal: ptr("nobody")}, nil},
	}
	for _, c := range cases {
		wantEqual(t, c.name, auditEventIDs(t, s, c.f), c.want)
	}
}

func testAuditPagination(t *testing.T, s tripcap.Store) {
	ids := auditIDs(25)
	var ev []*tripcap.AuditEvent
	for i, id := range ids {
		ev = append(ev, &tripcap.AuditEvent{ID: id, Time: base.Add(time.Duration(i) * time.Second), Action: "createCapture", Result: tripcap.AuditSuccess})
	}
	// Two batches: a batch is one transaction, the listing spans them.
	must(t, s.AppendAuditEvents(t.Context(), ev[:10]))
	must(t, s.AppendAuditEvents(t.Context(), ev[10:]))
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		page, next, err := s.FindAuditEvents(t.Context(), tripcap.AuditFilter{Cursor: cursor, Limit: 10})
		must(t, err)
		if len(page) > 10 {
			t.Fatalf("page of %d events, limit 10", len(page))
		}
		for _, e := range page {
			got = append(got, e.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	want := slices.Clone(ids)
	slices.Reverse(want)
	wantEqual(t, "pages newest first", got, want)
	// A page that ends exactly at the last event says so.
	page, next, err := s.FindAuditEvents(t.Context(), tripcap.AuditFilter{Cursor: ids[5], Limit: 5})
	must(t, err)
	if len(page) != 5 || next != "" {
		t.Fatalf("last full page: %d events, next %q", len(page), next)
	}
}

func testAuditDeleteBefore(t *testing.T, s tripcap.Store) {
	ev := auditFixture()
	must(t, s.AppendAuditEvents(t.Context(), ev))
	n, err := s.DeleteAuditEventsBefore(t.Context(), base.Add(2*time.Minute))
	must(t, err)
	if n != 2 {
		t.Fatalf("deleted %d events before minute 2, want 2", n)
	}
	wantEqual(t, "kept", auditEventIDs(t, s, tripcap.AuditFilter{}), []string{ev[5].ID, ev[4].ID, ev[3].ID, ev[2].ID})
	n, err = s.DeleteAuditEventsBefore(t.Context(), base.Add(2*time.Minute))
	must(t, err)
	if n != 0 {
		t.Fatalf("deleted %d events again", n)
	}
}

func testAuditInvalid(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	ok := func() *tripcap.AuditEvent {
		return &tripcap.AuditEvent{ID: tripcap.NewID(), Time: base, Action: "createCapture", Result: tripcap.AuditSuccess}
	}
	for name, mod := range map[string]func(e *tripcap.AuditEvent){
		"no id":       func(e *tripcap.AuditEvent) { e.ID = "" },
		"bad id":      func(e *tripcap.AuditEvent) { e.ID = "../x" },
		"no action":   func(e *tripcap.AuditEvent) { e.Action = "" },
		"no time":     func(e *tripcap.AuditEvent) { e.Time = time.Time{} },
		"bad result":  func(e *tripcap.AuditEvent) { e.Result = "maybe" },
		"NUL":         func(e *tripcap.AuditEvent) { e.Detail = "a\x00b" },
		"invalid UTF": func(e *tripcap.AuditEvent) { e.Resource = "\xff" },
	} {
		e := ok()
		mod(e)
		// A bad event fails its whole batch: nothing of it is kept.
		good := ok()
		if err := s.AppendAuditEvents(ctx, []*tripcap.AuditEvent{good, e}); tripcap.ErrorCode(err) != tripcap.EINVALID {
			t.Fatalf("%s: got %v, want EINVALID", name, err)
		}
	}
	if ids := auditEventIDs(t, s, tripcap.AuditFilter{}); len(ids) != 0 {
		t.Fatalf("refused batches left %d events", len(ids))
	}
	e := ok()
	must(t, s.AppendAuditEvents(ctx, []*tripcap.AuditEvent{e}))
	dup := ok()
	dup.ID = e.ID
	wantCode(t, s.AppendAuditEvents(ctx, []*tripcap.AuditEvent{dup}), tripcap.ECONFLICT)
	bad := tripcap.AuditResult("maybe")
	_, _, err := s.FindAuditEvents(ctx, tripcap.AuditFilter{Result: &bad})
	wantCode(t, err, tripcap.EINVALID)
	_, _, err = s.FindAuditEvents(ctx, tripcap.AuditFilter{Cursor: "../x"})
	wantCode(t, err, tripcap.EINVALID)
	_, _, err = s.FindAuditEvents(ctx, tripcap.AuditFilter{Limit: -1})
	wantCode(t, err, tripcap.EINVALID)
	nul := "a\x00"
	_, _, err = s.FindAuditEvents(ctx, tripcap.AuditFilter{Principal: &nul})
	wantCode(t, err, tripcap.EINVALID)
}

// testAuditConcurrent appends batches from many goroutines (the HTTP
// servers of several replicas share one database): every event is kept.
func testAuditConcurrent(t *testing.T, s tripcap.Store) {
	const writers, batches, size = 8, 5, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers*batches)
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				var ev []*tripcap.AuditEvent
				for range size {
					ev = append(ev, &tripcap.AuditEvent{ID: tripcap.NewID(), Time: base, Action: "w" + strings.Repeat("x", w), Result: tripcap.AuditSuccess, Status: b})
				}
				errs <- s.AppendAuditEvents(t.Context(), ev)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	if ids := auditEventIDs(t, s, tripcap.AuditFilter{}); len(ids) != writers*batches*size {
		t.Fatalf("%d events kept, want %d", len(ids), writers*batches*size)
	}
}

// testAuditLargeBatch appends more events at once than one statement
// takes: all are kept, or (a duplicate id in the last part) none.
func testAuditLargeBatch(t *testing.T, s tripcap.Store) {
	ids := auditIDs(150)
	var ev []*tripcap.AuditEvent
	for i, id := range ids {
		ev = append(ev, &tripcap.AuditEvent{ID: id, Time: base.Add(time.Duration(i) * time.Millisecond), Action: "a", Result: tripcap.AuditFailed, Status: 409})
	}
	dup := &tripcap.AuditEvent{ID: ids[0], Time: base, Action: "a", Result: tripcap.AuditSuccess}
	wantCode(t, s.AppendAuditEvents(t.Context(), append(slices.Clone(ev[1:]), dup, ev[0])), tripcap.ECONFLICT)
	if got := auditEventIDs(t, s, tripcap.AuditFilter{}); len(got) != 0 {
		t.Fatalf("a refused batch left %d events", len(got))
	}
	must(t, s.AppendAuditEvents(t.Context(), ev))
	want := slices.Clone(ids)
	slices.Reverse(want)
	wantEqual(t, "large batch", auditEventIDs(t, s, tripcap.AuditFilter{}), want)
}
