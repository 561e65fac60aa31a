package storetest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

func testHostRoundTrip(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	h := fullHost("web-1")
	wantPopulated(t, h)
	want := normHost(h)
	must(t, s.CreateHost(ctx, h))

	got, err := s.FindHost(ctx, tripcap.HostFilter{ID: &h.ID})
	must(t, err)
	wantEqual(t, "host read back", got, want)

	hosts, next, err := s.FindHosts(ctx, tripcap.HostFilter{})
	must(t, err)
	if len(hosts) != 1 || next != "" {
		t.Fatalf("FindHosts: %d hosts, next %q; want 1, \"\"", len(hosts), next)
	}
	wantEqual(t, "host listed", hosts[0], want)

	// A host without labels or inventory reads back as it went in, with an
	// empty State stored as Offline and zero times set.
	m := &tripcap.Host{ID: tripcap.NewID(), Name: "bare", Location: "westeurope"}
	must(t, s.CreateHost(ctx, m))
	got, err = s.FindHost(ctx, tripcap.HostFilter{ID: &m.ID})
	must(t, err)
	if got.State != tripcap.HostOffline || got.Labels != nil || got.CreatedAt.IsZero() || got.UpdatedAt.IsZero() || !got.LastSeen.IsZero() {
		t.Fatalf("bare host read back as %+v; want Offline, no labels, created/updated set, never seen", got)
	}
}

func testHostConflict(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	h := host("web-1", "eastus")
	must(t, s.CreateHost(ctx, h))

	err := s.CreateHost(ctx, host("web-1", "westus"))
	wantCode(t, err, tripcap.ECONFLICT)
	if msg := tripcap.ErrorMessage(err); !strings.Contains(msg, `"web-1"`) {
		t.Errorf("conflict message %q does not name the host", msg)
	}
	// ARM names are case-insensitive: WEB-1 would be the same VM resource id.
	wantCode(t, s.CreateHost(ctx, host("WEB-1", "eastus")), tripcap.ECONFLICT)

	dup := host("web-2", "eastus")
	dup.ID = h.ID
	wantCode(t, s.CreateHost(ctx, dup), tripcap.ECONFLICT)

	hosts, _, err := s.FindHosts(ctx, tripcap.HostFilter{})
	must(t, err)
	if len(hosts) != 1 {
		t.Fatalf("%d hosts after conflicting creates, want 1", len(hosts))
	}
	must(t, s.CreateHost(ctx, host("web-2", "eastus")))
}

func testHostFind(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	a := host("a", "eastus")
	b := host("b", "eastus")
	c := host("c", "westus")
	c.State = tripcap.HostOnline
	for _, h := range []*tripcap.Host{a, b, c} {
		must(t, s.CreateHost(ctx, h))
	}
	ids := func(hosts []*tripcap.Host) []string {
		var out []string
		for _, h := range hosts {
			out = append(out, h.Name)
		}
		return out
	}
	for _, tc := range []struct {
		f    tripcap.HostFilter
		want []string
	}{
		{tripcap.HostFilter{}, []string{"a", "b", "c"}},
		{tripcap.HostFilter{Name: new("b")}, []string{"b"}},
		{tripcap.HostFilter{Location: new("eastus")}, []string{"a", "b"}},
		{tripcap.HostFilter{State: new(tripcap.HostOnline)}, []string{"c"}},
		{tripcap.HostFilter{State: new(tripcap.HostOffline), Location: new("eastus"), Name: new("a")}, []string{"a"}},
		{tripcap.HostFilter{Location: new("northeurope")}, nil},
		{tripcap.HostFilter{ID: &c.ID}, []string{"c"}},
	} {
		hosts, _, err := s.FindHosts(ctx, tc.f)
		must(t, err)
		got := ids(hosts)
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("FindHosts(%+v) = %v, want %v", tc.f, got, tc.want)
		}
	}
	_, err := s.FindHost(ctx, tripcap.HostFilter{Name: new("nope")})
	wantCode(t, err, tripcap.ENOTFOUND)
	_, err = s.FindHost(ctx, tripcap.HostFilter{ID: new(tripcap.NewID())})
	wantCode(t, err, tripcap.ENOTFOUND)
	got, err := s.FindHost(ctx, tripcap.HostFilter{Name: new("a")})
	must(t, err)
	if got.ID != a.ID {
		t.Errorf("FindHost(name a) = %s, want %s", got.ID, a.ID)
	}
}

func testHostFindByResourceID(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	h := host("Web-1", "eastus")
	h.SubscriptionID = "0000AAAA-bbbb-cccc-dddd-0000eeee0000"
	h.ResourceGroup = "Prod-RG"
	must(t, s.CreateHost(ctx, h))
	other := host("web-2", "eastus")
	other.SubscriptionID = h.SubscriptionID
	other.ResourceGroup = h.ResourceGroup
	must(t, s.CreateHost(ctx, other))

	for _, id := range []string{
		h.ResourceID(),
		strings.ToLower(h.ResourceID()),
		strings.ToUpper(h.ResourceID()),
		"/subscriptions/0000aaaa-BBBB-cccc-dddd-0000EEEE0000/resourcegroups/prod-rg/providers/microsoft.compute/virtualmachines/WEB-1/",
	} {
		got, err := s.FindHost(ctx, tripcap.HostFilter{ResourceID: &id})
		if err != nil {
			t.Errorf("FindHost(resource id %s): %v", id, err)
			continue
		}
		if got.ID != h.ID {
			t.Errorf("FindHost(resource id %s) = %s, want %s", id, got.Name, h.Name)
		}
	}
	for _, id := range []string{
		tripcap.VMResourceID("other-sub", h.ResourceGroup, h.Name),
		tripcap.VMResourceID(h.SubscriptionID, "other-rg", h.Name),
		tripcap.VMResourceID(h.SubscriptionID, h.ResourceGroup, "web-3"),
		// LIKE-style wildcards must not match.
		tripcap.VMResourceID(h.SubscriptionID, h.ResourceGroup, "web-%"),
		tripcap.VMResourceID(h.SubscriptionID, h.ResourceGroup, "web-_"),
	} {
		_, err := s.FindHost(ctx, tripcap.HostFilter{ResourceID: &id})
		wantCode(t, err, tripcap.ENOTFOUND)
	}
	for _, id := range []string{"", "web-1", "/subscriptions/x/resourceGroups/y/providers/Microsoft.Network/networkInterfaces/web-1"} {
		_, err := s.FindHost(ctx, tripcap.HostFilter{ResourceID: &id})
		wantCode(t, err, tripcap.EINVALID)
	}
}

func testHostPagination(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	var want []string
	for i := range 7 {
		h := host(fmt.Sprintf("h%d", i), "eastus")
		must(t, s.CreateHost(ctx, h))
		want = append(want, h.ID)
	}
	slices.Sort(want)

	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatalf("more than 3 pages of 3 for 7 hosts")
		}
		hosts, next, err := s.FindHosts(ctx, tripcap.HostFilter{Cursor: cursor, Limit: 3})
		must(t, err)
		for _, h := range hosts {
			got = append(got, h.ID)
		}
		if next == "" {
			if len(hosts) != 1 {
				t.Fatalf("last page has %d hosts, want 1", len(hosts))
			}
			break
		}
		if len(hosts) != 3 || next != hosts[2].ID {
			t.Fatalf("page of %d hosts with next %q; want 3 ending at next", len(hosts), next)
		}
		cursor = next
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged ids %v, want %v (ordered by id)", got, want)
	}

	// A page that ends exactly at the last row has no next page.
	hosts, next, err := s.FindHosts(ctx, tripcap.HostFilter{Limit: 7})
	must(t, err)
	if len(hosts) != 7 || next != "" {
		t.Fatalf("Limit 7 of 7: %d hosts, next %q; want 7, \"\"", len(hosts), next)
	}
	hosts, next, err = s.FindHosts(ctx, tripcap.HostFilter{Cursor: want[3], Limit: 3})
	must(t, err)
	if len(hosts) != 3 || next != "" || hosts[0].ID != want[4] {
		t.Fatalf("after %s: %d hosts, next %q; want the last 3 and no next", want[3], len(hosts), next)
	}
	hosts, next, err = s.FindHosts(ctx, tripcap.HostFilter{Cursor: want[6]})
	must(t, err)
	if len(hosts) != 0 || next != "" {
		t.Fatalf("after the last id: %d hosts, next %q", len(hosts), next)
	}
	for _, bad := range []string{"'; DROP TABLE hosts; --", "a b", strings.Repeat("x", 200), "é"} {
		_, _, err := s.FindHosts(ctx, tripcap.HostFilter{Cursor: bad})
		wantCode(t, err, tripcap.EINVALID)
	}
	_, _, err = s.FindHosts(ctx, tripcap.HostFilter{Limit: -1})
	wantCode(t, err, tripcap.EINVALID)
}

func testUpdateHostInventory(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	h := host("web-1", "eastus")
	must(t, s.CreateHost(ctx, h))
	inv := fullHost("web-1").Inventory
	seen := base.Add(time.Hour)
	must(t, s.UpdateHostInventory(ctx, h.ID, inv, seen))
	got, err := s.FindHost(ctx, tripcap.HostFilter{ID: &h.ID})
	must(t, err)
	wantEqual(t, "inventory", got.Inventory, inv)
	if got.State != tripcap.HostOnline || !got.LastSeen.Equal(seen) {
		t.Fatalf("after inventory: state %s, last seen %v; want Online at %v", got.State, got.LastSeen, seen)
	}
	if got.Name != h.Name || got.Location != h.Location || got.Revision != h.Revision {
		t.Fatalf("inventory update changed other fields: %+v", got)
	}
	wantCode(t, s.UpdateHostInventory(ctx, tripcap.NewID(), inv, seen), tripcap.ENOTFOUND)
}

func testTouchHosts(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	a := host("a", "eastus")
	b := host("b", "eastus")
	c := host("c", "eastus")
	for _, h := range []*tripcap.Host{a, b, c} {
		must(t, s.CreateHost(ctx, h))
	}
	t1 := base.Add(time.Minute)
	must(t, s.TouchHosts(ctx, map[string]time.Time{a.ID: t1, b.ID: t1, tripcap.NewID(): t1}))
	must(t, s.TouchHosts(ctx, nil))
	// An older heartbeat (a delayed batch) never moves last seen back.
	must(t, s.TouchHosts(ctx, map[string]time.Time{a.ID: base.Add(time.Second), b.ID: t1.Add(time.Microsecond)}))

	for _, tc := range []struct {
		h     *tripcap.Host
		state tripcap.HostState
		seen  time.Time
	}{
		{a, tripcap.HostOnline, t1},
		{b, tripcap.HostOnline, t1.Add(time.Microsecond)},
		{c, tripcap.HostOffline, base},
	} {
		got, err := s.FindHost(ctx, tripcap.HostFilter{ID: &tc.h.ID})
		must(t, err)
		if got.State != tc.state || !got.LastSeen.Equal(tc.seen) {
			t.Errorf("host %s: %s last seen %v; want %s at %v", tc.h.Name, got.State, got.LastSeen, tc.state, tc.seen)
		}
	}

	// A heartbeat brings an Offline host back Online, even one no newer than last seen.
	off, err := s.MarkHostsOffline(ctx, t1.Add(time.Hour))
	must(t, err)
	if len(off) != 2 {
		t.Fatalf("MarkHostsOffline: %d hosts, want 2", len(off))
	}
	must(t, s.TouchHosts(ctx, map[string]time.Time{a.ID: base}))
	got, err := s.FindHost(ctx, tripcap.HostFilter{ID: &a.ID})
	must(t, err)
	if got.State != tripcap.HostOnline || !got.LastSeen.Equal(t1) {
		t.Fatalf("after a late heartbeat: %s at %v; want Online at %v", got.State, got.LastSeen, t1)
	}

	// A fleet-sized batch.
	batch := map[string]time.Time{}
	for i := range 300 {
		h := host(fmt.Sprintf("fleet-%d", i), "eastus")
		must(t, s.CreateHost(ctx, h))
		batch[h.ID] = t1
	}
	must(t, s.TouchHosts(ctx, batch))
	online, _, err := s.FindHosts(ctx, tripcap.HostFilter{State: new(tripcap.HostOnline)})
	must(t, err)
	if len(online) != 301 {
		t.Fatalf("%d hosts online after a batch of 300, want 301", len(online))
	}
}

func testMarkHostsOffline(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	stale := host("stale", "eastus")
	fresh := host("fresh", "eastus")
	offline := host("offline", "eastus")
	for _, h := range []*tripcap.Host{stale, fresh, offline} {
		must(t, s.CreateHost(ctx, h))
	}
	must(t, s.TouchHosts(ctx, map[string]time.Time{stale.ID: base.Add(time.Minute), fresh.ID: base.Add(time.Hour)}))
	cutoff := base.Add(30 * time.Minute)

	got, err := s.MarkHostsOffline(ctx, cutoff)
	must(t, err)
	if len(got) != 1 || got[0].ID != stale.ID || got[0].State != tripcap.HostOffline {
		t.Fatalf("MarkHostsOffline = %v, want [stale] with state Offline", got)
	}
	if !got[0].LastSeen.Equal(base.Add(time.Minute)) {
		t.Fatalf("returned host last seen %v, want %v", got[0].LastSeen, base.Add(time.Minute))
	}
	got, err = s.MarkHostsOffline(ctx, cutoff)
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("second MarkHostsOffline returned %d hosts, want none", len(got))
	}
	h, err := s.FindHost(ctx, tripcap.HostFilter{ID: &stale.ID})
	must(t, err)
	if h.State != tripcap.HostOffline {
		t.Fatalf("stale host is %s", h.State)
	}
	h, err = s.FindHost(ctx, tripcap.HostFilter{ID: &fresh.ID})
	must(t, err)
	if h.State != tripcap.HostOnline {
		t.Fatalf("fresh host is %s", h.State)
	}
	// Last seen exactly at the cutoff is not before it.
	got, err = s.MarkHostsOffline(ctx, base.Add(time.Hour))
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("host seen at the cutoff marked offline")
	}
}

func testMarkHostsOfflineConcurrent(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	const n = 60
	seen := map[string]time.Time{}
	for i := range n {
		h := host(fmt.Sprintf("h%d", i), "eastus")
		must(t, s.CreateHost(ctx, h))
		seen[h.ID] = base.Add(time.Duration(i) * time.Second)
	}
	must(t, s.TouchHosts(ctx, seen))

	var mu sync.Mutex
	count := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, 8*n)
	for g := range 8 {
		wg.Go(func() {
			// Moving cutoffs so the callers overlap on many rows.
			for i := 0; i <= n; i += 5 + g {
				hosts, err := s.MarkHostsOffline(ctx, base.Add(time.Duration(i)*time.Second))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for _, h := range hosts {
					count[h.ID]++
				}
				mu.Unlock()
			}
			hosts, err := s.MarkHostsOffline(ctx, base.Add(time.Hour))
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			for _, h := range hosts {
				count[h.ID]++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(count) != n {
		t.Fatalf("%d hosts marked offline, want %d", len(count), n)
	}
	for id, c := range count {
		if c != 1 {
			t.Errorf("host %s returned %d times, want once", id, c)
		}
	}
}

func testDeleteHost(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	h := host("web-1", "eastus")
	must(t, s.CreateHost(ctx, h))
	w, err := s.EnsureWatcher(ctx, Subscription, "eastus", 10)
	must(t, err)
	c := capture(w.ID, h.ID, "cap")
	must(t, s.CreateCapture(ctx, c))

	must(t, s.DeleteHost(ctx, h.ID))
	_, err = s.FindHost(ctx, tripcap.HostFilter{ID: &h.ID})
	wantCode(t, err, tripcap.ENOTFOUND)
	wantCode(t, s.DeleteHost(ctx, h.ID), tripcap.ENOTFOUND)

	// Its captures stay, for their files, and can still be updated.
	got, err := s.FindCapture(ctx, tripcap.CaptureFilter{HostID: &h.ID})
	must(t, err)
	if got.ID != c.ID {
		t.Fatalf("capture of deleted host: got %s, want %s", got.ID, c.ID)
	}
	got.Desired = tripcap.DesiredDeleted
	got.Status = tripcap.StatusStopped
	must(t, s.UpdateCapture(ctx, got, 1))

	// The name is free again.
	must(t, s.CreateHost(ctx, host("web-1", "eastus")))
}
