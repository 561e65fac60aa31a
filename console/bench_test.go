package console_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// seedHosts stores n hosts straight into the store (enrolling 10,000
// through the service would time the enrollment, not the pages).
func (f *fixture) seedHosts(t testing.TB, n int) {
	t.Helper()
	now := time.Now().UTC()
	for i := range n {
		st := tripcap.HostOnline
		if i%10 == 0 {
			st = tripcap.HostOffline
		}
		h := &tripcap.Host{ID: tripcap.NewID(), Name: fmt.Sprintf("web-%05d", i), Location: []string{"eastus", "westus", "northeurope"}[i%3],
			Labels: map[string]string{"team": fmt.Sprintf("t%d", i%20), "tier": "web"}, State: st, LastSeen: now, CreatedAt: now, UpdatedAt: now,
			Inventory: tripcap.Inventory{OS: "linux", AgentVersion: "bench", Interfaces: []tripcap.Interface{{Name: "eth0", Up: true, Addresses: []string{"198.18.0.2/24"}}}}}
		if err := f.store.CreateHost(f.adminCtx, h); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkHostsPages10k times the hosts pages' server side with 10,000
// hosts: the first page, a later one, each filter, and the overview.
func BenchmarkHostsPages10k(b *testing.B) {
	f := newFixture(b)
	f.seedHosts(b, 10_000)
	br := f.browser(b)
	br.signInToken(f.admin)
	for _, path := range []string{"/hosts", "/hosts?name=web-099", "/hosts?label=team%3Dt7", "/hosts?location=westus&state=Offline", "/hosts/web-05000", "/"} {
		b.Run(path, func(b *testing.B) {
			for b.Loop() {
				if p := br.get(path); p.StatusCode != 200 {
					b.Fatalf("%s: %s", path, p.Status)
				}
			}
		})
	}
}
