package agent

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/internal/netns"
)

// TestHeartbeatReportsInterfaceChanges: the agent (here watching a
// namespace of its own) reads its interfaces once while nothing changes,
// however often it heartbeats, and reports an interface that appears
// within seconds: only netlink's notice can make it read them again
// before inventoryRefresh.
func TestHeartbeatReportsInterfaceChanges(t *testing.T) {
	lab := netns.New(t)
	ns, peer := lab.Namespace(), lab.Namespace()
	got := make(chan tripcap.Inventory, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "PRI" {
			return // the client's h2c attempt; it falls back to HTTP/1.1
		}
		var hb tripcap.Heartbeat
		if err := json.NewDecoder(r.Body).Decode(&hb); err != nil {
			t.Errorf("heartbeat: %v", err)
		}
		if hb.Inventory != nil {
			got <- *hb.Inventory
		}
		w.Header().Set(tripcap.AgentProtocolHeader, "1")
		// Ten heartbeats a second: none may read the interfaces again.
		_ = json.NewEncoder(w).Encode(tripcap.HeartbeatResponse{HeartbeatSeconds: 0.1})
	}))
	defer srv.Close()
	c, err := tchttp.NewClient(srv.URL, "agent")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var reads atomic.Int32
	read := func() (inv tripcap.Inventory) {
		reads.Add(1)
		if err := ns.Do(func() error { inv = Inventory(); return nil }); err != nil {
			t.Error(err)
		}
		return inv
	}
	var watch *interfaceWatch
	if err := ns.Do(func() error { watch = watchInterfaces(ctx, log); return nil }); err != nil {
		t.Fatal(err)
	}
	if watch == nil {
		t.Fatal("no interface watch")
	}
	a := &Agent{cfg: Config{HeartbeatInterval: time.Hour}, log: log, client: c}
	a.polling.Store(true)
	done := make(chan struct{})
	go func() { defer close(done); a.heartbeats(ctx, &inventoryCache{read: read, watch: watch}) }()
	defer func() { cancel(); <-done }()

	names := func(inv tripcap.Inventory) []string {
		var out []string
		for _, i := range inv.Interfaces {
			out = append(out, i.Name)
		}
		return out
	}
	select {
	case inv := <-got:
		if n := names(inv); !slices.Equal(n, []string{"lo"}) {
			t.Fatalf("first inventory's interfaces %v, want [lo]", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no first heartbeat")
	}
	time.Sleep(time.Second)
	if n := reads.Load(); n != 1 {
		t.Errorf("%d reads of the interfaces in 10 heartbeats without a change, want 1", n)
	}
	start := time.Now()
	link := lab.Veth(ns, peer, netns.LinkOptions{})
	for {
		select {
		case inv := <-got:
			i := slices.IndexFunc(inv.Interfaces, func(i tripcap.Interface) bool { return i.Name == link.A.Name })
			if i < 0 || !inv.Interfaces[i].Up || len(inv.Interfaces[i].Addresses) == 0 {
				continue // reported on the way up; the rest follows
			}
			if d := time.Since(start); d > inventorySettle+3*time.Second {
				t.Errorf("the new interface was reported after %s", d)
			}
			if n := reads.Load(); n > 4 {
				t.Errorf("%d reads of the interfaces for one change", n)
			}
			return
		case <-time.After(15 * time.Second):
			t.Fatalf("the new interface %s was not reported", link.A.Name)
		}
	}
}
