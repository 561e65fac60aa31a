package console_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

var hostLink = regexp.MustCompile(`<td><a href="/hosts/([^"]+)">`)

func TestHostsPagingAndFilters(t *testing.T) {
	f := newFixture(t)
	var hosts []*tripcap.Host
	for i := range 25 {
		team := "a"
		if i%2 == 1 {
			team = "b"
		}
		loc := "eastus"
		if i >= 20 {
			loc = "westus"
		}
		hosts = append(hosts, f.host(t, fmt.Sprintf("web-%02d", i), loc, map[string]string{"team": team}))
	}
	f.host(t, "db-01", "eastus", nil)
	// Five online, the others silent.
	if _, err := f.store.MarkHostsOffline(f.adminCtx, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts[:5] {
		f.online(t, h)
	}
	b := f.browser(t)
	b.signIn("alice", f.user(t, "alice", tripcap.RoleReader))

	// Every host, ten a page, each once, by following "Next page".
	seen := map[string]bool{}
	next := "/hosts?limit=10"
	for pages := 0; next != ""; pages++ {
		if pages > 5 {
			t.Fatal("more pages than hosts")
		}
		p := b.get(next)
		if p.StatusCode != 200 || !strings.Contains(p.body, "26 hosts match") {
			t.Fatalf("%s: %s\n%s", next, p.Status, p.body)
		}
		for _, m := range hostLink.FindAllStringSubmatch(p.body, -1) {
			if seen[m[1]] {
				t.Fatalf("%s listed twice", m[1])
			}
			seen[m[1]] = true
		}
		next = ""
		if m := regexp.MustCompile(`<a href="([^"]+)" rel="next">`).FindStringSubmatch(p.body); m != nil {
			next = strings.ReplaceAll(m[1], "&amp;", "&")
		}
	}
	if len(seen) != 26 {
		t.Fatalf("listed %d hosts, want 26", len(seen))
	}
	for query, want := range map[string]int{
		"name=WEB-0":                  10,
		"label=team%3Db":              12,
		"label=team":                  25,
		"location=westus":             5,
		"state=Online":                5,
		"state=Online&label=team%3Da": 3,
		"name=db":                     1,
		"name=nothing":                0,
	} {
		p := b.get("/hosts?" + query)
		if p.StatusCode != 200 {
			t.Fatalf("%s: %s", query, p.Status)
		}
		if got := len(hostLink.FindAllString(p.body, -1)); got != want || !strings.Contains(p.body, fmt.Sprintf(">%d host", want)) {
			t.Errorf("hosts?%s: %d listed, want %d", query, got, want)
		}
	}
	if p := b.get("/hosts?label=%3Dx"); p.StatusCode != http.StatusBadRequest || !strings.Contains(p.body, `aria-invalid="true"`) {
		t.Errorf("a label with no key: %s, want 400 with the field marked", p.Status)
	}
	if p := b.get("/hosts?state=Sleeping"); p.StatusCode != http.StatusBadRequest {
		t.Errorf("an unknown state: %s, want 400", p.Status)
	}
}

func TestHostPage(t *testing.T) {
	f := newFixture(t)
	h := f.host(t, "web1", "eastus", map[string]string{"team": "a"})
	h.Inventory = tripcap.Inventory{OS: "linux", AgentVersion: "test", Interfaces: []tripcap.Interface{{Name: "eth0", Up: true, Addresses: []string{"198.18.0.2/24"}}},
		PreTrigger: tripcap.PreTriggerRing{Seconds: 30, CapacityBytes: 64 << 20, Interfaces: []string{"eth0"}}}
	f.online(t, h)
	b := f.browser(t)
	b.signInToken(f.admin)
	p := b.get("/hosts/web1")
	for _, want := range []string{"Host web1", "198.18.0.2/24", "eth0", "30 s, up to 64.0 MiB", `data-live="/hosts/web1/live"`, `data-chart="net"`, "New capture on web1"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the host page lacks %q", want)
		}
	}
	if p := b.get("/hosts/nosuch"); p.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown host: %s, want 404", p.Status)
	}
}
