package responder

import (
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

func TestPreTriggerCountsFromFiring(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)
	for _, c := range []struct {
		seconds int32
		fired   time.Time
		want    int32
	}{
		{10, now.Add(-2500 * time.Millisecond), 14},
		{10, now.Add(-2 * time.Second), 13},
		{0, now.Add(-2 * time.Second), 0},
		{10, time.Time{}, 10},
		{10, now.Add(time.Second), 10},
		{10, now.Add(-2 * time.Minute), 10},
		{tripcap.MaxPreTriggerSeconds, now.Add(-5 * time.Second), tripcap.MaxPreTriggerSeconds},
	} {
		if got := preTriggerFrom(c.seconds, c.fired, now); got != c.want {
			t.Errorf("preTriggerFrom(%d, %s before) = %d, want %d", c.seconds, now.Sub(c.fired), got, c.want)
		}
	}
}

// A responder's capture name is the template's and the host's, within the
// 80 characters a name may have, and distinct for distinct long hosts.
func TestHostCaptureName(t *testing.T) {
	h := &tripcap.Host{ID: "06h36jcah0sbbx7qke7h6jy734", Name: "web1.example.com"}
	if got := hostCaptureName("PSAzureFunction", h); got != "PSAzureFunction-web1.example.com" {
		t.Fatalf("name %q", got)
	}
	long := strings.Repeat("a", 70)
	a := hostCaptureName("PSAzureFunction", &tripcap.Host{ID: "id-a", Name: long + ".one"})
	b := hostCaptureName("PSAzureFunction", &tripcap.Host{ID: "id-b", Name: long + ".two"})
	for _, n := range []string{a, b, uniqueCaptureName(a, time.Now())} {
		if err := tripcap.ValidateHostName("name", n); err != nil {
			t.Fatalf("%q: %v", n, err)
		}
	}
	if a == b {
		t.Fatalf("two hosts, one name %q", a)
	}
}
