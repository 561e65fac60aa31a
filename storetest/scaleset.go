package storetest

import (
	"slices"
	"strings"
	"testing"

	"github.com/tripcap/tripcap"
)

var scaleSetTests = []struct {
	name string
	fn   func(t *testing.T, s tripcap.Store)
}{
	{"ScaleSet/CreateAndFind", testScaleSetCreate},
	{"ScaleSet/SessionRoundTrip", testScaleSetSessionRoundTrip},
	{"ScaleSet/NameConflict", testScaleSetNameConflict},
	{"ScaleSet/LimitAllOrNone", testScaleSetLimit},
	{"ScaleSet/Invalid", testScaleSetInvalid},
	{"Host/FindBySubscriptionAndGroup", testHostFindByGroup},
}

// testHostFindByGroup lists the hosts of an ARM subscription and resource
// group, regardless of case: a scale set's instances are found so.
func testHostFindByGroup(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	for _, h := range []struct{ name, sub, rg string }{{"a", "Sub-1", "RG-Web"}, {"b", "sub-1", "rg-web"}, {"c", "Sub-1", "RG-Db"}, {"d", "Sub-2", "RG-Web"}} {
		hh := host(h.name, "eastus")
		hh.SubscriptionID, hh.ResourceGroup = h.sub, h.rg
		must(t, s.CreateHost(ctx, hh))
	}
	for _, tc := range []struct {
		sub, rg *string
		want    string
	}{{new("SUB-1"), new("rg-WEB"), "ab"}, {new("sub-1"), nil, "abc"}, {nil, new("rg-web"), "abd"}, {new("sub-3"), nil, ""}} {
		hosts, _, err := s.FindHosts(ctx, tripcap.HostFilter{SubscriptionID: tc.sub, ResourceGroup: tc.rg})
		must(t, err)
		var names []string
		for _, h := range hosts {
			names = append(names, h.Name)
		}
		slices.Sort(names)
		if got := strings.Join(names, ""); got != tc.want {
			t.Errorf("hosts of %v/%v: %q, want %q", tc.sub, tc.rg, got, tc.want)
		}
	}
	_, _, err := s.FindHosts(ctx, tripcap.HostFilter{ResourceGroup: new("")})
	wantCode(t, err, tripcap.EINVALID)
}

// scaleSet returns a scale-set capture and one session per host.
func scaleSet(watcherID, name string, hosts ...*tripcap.Host) (*tripcap.PacketCapture, []*tripcap.PacketCapture) {
	set := capture(watcherID, "", name)
	set.Parameters.Target = tripcap.VMSSResourceID("sub", "rg", "web")
	set.Parameters.TargetType = tripcap.TargetAzureVMSS
	set.Parameters.Scope = &tripcap.CaptureScope{Exclude: []string{"web-9"}}
	var sessions []*tripcap.PacketCapture
	for _, h := range hosts {
		c := capture(watcherID, h.ID, name)
		c.ScaleSetID = set.ID
		c.Parameters.TargetType = tripcap.TargetAzureVM
		sessions = append(sessions, c)
	}
	return set, sessions
}

func testScaleSetCreate(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	f := newFixture(t, s, "eastus", 10, 3)
	before := []int64{revision(t, s, f.hosts[0].ID), revision(t, s, f.hosts[1].ID), revision(t, s, f.hosts[2].ID)}
	set, sessions := scaleSet(f.w.ID, "pc", f.hosts[0], f.hosts[1])
	// Sessions are never stored: they are the scale-set capture's view.
	set.Sessions = []tripcap.ScaleSetSession{{InstanceID: "x"}}
	must(t, s.CreateScaleSetCapture(ctx, set, sessions))
	for _, c := range append([]*tripcap.PacketCapture{set}, sessions...) {
		if c.Version != 1 {
			t.Fatalf("capture %s: Version %d after create, want 1", c.ID, c.Version)
		}
	}
	if revision(t, s, f.hosts[0].ID) != before[0]+1 || revision(t, s, f.hosts[1].ID) != before[1]+1 || revision(t, s, f.hosts[2].ID) != before[2] {
		t.Fatalf("revisions: want the sessions' hosts bumped once and no other")
	}
	got := findCapture(t, s, set.ID)
	if !got.IsScaleSet() || got.HostID != "" || got.Sessions != nil {
		t.Fatalf("scale-set capture read back: %s", dump(got))
	}

	// By name, users find the scale-set capture alone, not its sessions.
	top := ""
	byName, _, err := s.FindCaptures(ctx, tripcap.CaptureFilter{WatcherID: &f.w.ID, Name: new("pc"), ScaleSetID: &top})
	must(t, err)
	if len(byName) != 1 || byName[0].ID != set.ID {
		t.Fatalf("by name: %d captures, want the scale-set capture: %s", len(byName), dump(byName))
	}
	members, _, err := s.FindCaptures(ctx, tripcap.CaptureFilter{ScaleSetID: &set.ID})
	must(t, err)
	if len(members) != 2 {
		t.Fatalf("sessions: %d, want 2", len(members))
	}
	for _, m := range members {
		if m.ScaleSetID != set.ID || m.Name != "pc" || m.HostID == "" {
			t.Fatalf("session read back: %s", dump(m))
		}
	}
	// An agent's assignments (by host) include its session.
	mine, _, err := s.FindCaptures(ctx, tripcap.CaptureFilter{HostID: &f.hosts[1].ID, ActiveOnly: true, IncludeDeleted: true})
	must(t, err)
	if len(mine) != 1 || mine[0].ScaleSetID != set.ID {
		t.Fatalf("host's captures: %s", dump(mine))
	}

	// The scale-set capture updates like any other (no host to bump).
	got.Desired = tripcap.DesiredStopped
	must(t, s.UpdateCapture(ctx, got, 1))
	// Its identity is fixed.
	m := members[0]
	m.ScaleSetID = ""
	wantCode(t, s.UpdateCapture(ctx, m, m.Version), tripcap.EINVALID)
}

func testScaleSetSessionRoundTrip(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	f := newFixture(t, s, "eastus", 10, 1)
	set, _ := scaleSet(f.w.ID, "web-1-capture")
	full := fullCapture(f.w.ID, f.hosts[0].ID, "web-1-capture")
	full.DeletedAt = nil
	full.ScaleSetID = set.ID
	full.Sessions = nil
	must(t, s.CreateScaleSetCapture(ctx, set, []*tripcap.PacketCapture{full}))
	wantEqual(t, "session read back", findCapture(t, s, full.ID), normCapture(full))
}

func testScaleSetNameConflict(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	f := newFixture(t, s, "eastus", 10, 2)
	set, sessions := scaleSet(f.w.ID, "pc", f.hosts...)
	must(t, s.CreateScaleSetCapture(ctx, set, sessions))
	// The name is the scale-set capture's: neither another scale-set
	// capture nor a capture of one host may take it…
	again, more := scaleSet(f.w.ID, "pc", f.hosts[0])
	wantCode(t, s.CreateScaleSetCapture(ctx, again, more), tripcap.ECONFLICT)
	wantCode(t, s.CreateCapture(ctx, capture(f.w.ID, f.hosts[0].ID, "pc")), tripcap.ECONFLICT)
	// …and a scale-set capture may not take an ordinary capture's.
	must(t, s.CreateCapture(ctx, capture(f.w.ID, f.hosts[0].ID, "one")))
	third, more := scaleSet(f.w.ID, "one", f.hosts[1])
	wantCode(t, s.CreateScaleSetCapture(ctx, third, more), tripcap.ECONFLICT)
	// Once deleted, the name is free again.
	got := findCapture(t, s, set.ID)
	got.DeletedAt = new(base)
	must(t, s.UpdateCapture(ctx, got, 1))
	again, more = scaleSet(f.w.ID, "pc", f.hosts[0])
	must(t, s.CreateScaleSetCapture(ctx, again, more))
}

func testScaleSetLimit(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	f := newFixture(t, s, "eastus", 3, 3)
	must(t, s.CreateCapture(ctx, capture(f.w.ID, f.hosts[0].ID, "one")))
	// Three sessions and one running capture are four: refused, and
	// nothing of it written.
	set, sessions := scaleSet(f.w.ID, "pc", f.hosts...)
	wantCode(t, s.CreateScaleSetCapture(ctx, set, sessions), tripcap.ELIMIT)
	all, _, err := s.FindCaptures(ctx, tripcap.CaptureFilter{WatcherID: &f.w.ID, IncludeDeleted: true})
	must(t, err)
	if len(all) != 1 {
		t.Fatalf("after a refused scale-set capture: %d captures, want 1", len(all))
	}
	// Two sessions fit: the scale-set capture itself runs nowhere and does
	// not count.
	set, sessions = scaleSet(f.w.ID, "pc", f.hosts[1], f.hosts[2])
	must(t, s.CreateScaleSetCapture(ctx, set, sessions))
	wantCode(t, s.CreateCapture(ctx, capture(f.w.ID, f.hosts[0].ID, "two")), tripcap.ELIMIT)
}

func testScaleSetInvalid(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	f := newFixture(t, s, "eastus", 10, 1)
	set, sessions := scaleSet(f.w.ID, "pc", f.hosts[0])
	// Each goes through CreateScaleSetCapture, together.
	wantCode(t, s.CreateCapture(ctx, set), tripcap.EINVALID)
	wantCode(t, s.CreateCapture(ctx, sessions[0]), tripcap.EINVALID)
	wantCode(t, s.CreateScaleSetCapture(ctx, set, nil), tripcap.EINVALID)
	ordinary := capture(f.w.ID, f.hosts[0].ID, "pc")
	wantCode(t, s.CreateScaleSetCapture(ctx, ordinary, sessions), tripcap.EINVALID)
	other, _ := scaleSet(f.w.ID, "pc")
	wantCode(t, s.CreateScaleSetCapture(ctx, other, sessions), tripcap.EINVALID)
	sessions[0].Name = "other"
	wantCode(t, s.CreateScaleSetCapture(ctx, set, sessions), tripcap.EINVALID)
	_, _, err := s.FindCaptures(ctx, tripcap.CaptureFilter{ScaleSetID: new("not an id")})
	wantCode(t, err, tripcap.EINVALID)
}
