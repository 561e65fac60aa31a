package console_test

import (
	"strings"
	"testing"
)

// TestDoneShowsOnlyKnownNotices: ?done= picks one of the console's own
// texts; anything else (a link's free text) shows nothing.
func TestDoneShowsOnlyKnownNotices(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	b.signInToken(f.admin)
	if p := b.get("/storage?done=storage-added"); p.StatusCode != 200 || !strings.Contains(p.body, `role="status">Storage account added.</p>`) {
		t.Fatalf("a known key: %s\n%s", p.Status, p.body)
	}
	for _, path := range []string{"/storage?done=Your+session+expired%2C+call+%2B1-555-0100", "/rules?done=Call+us", "/access?done=Call+us", "/responders?done=Call+us", "/action-groups?done=Call+us"} {
		p := b.get(path)
		if p.StatusCode != 200 || strings.Contains(p.body, `class="notice"`) || strings.Contains(p.body, "Call us") || strings.Contains(p.body, "555") {
			t.Errorf("%s: %s, shows a notice from the link", path, p.Status)
		}
	}
}
