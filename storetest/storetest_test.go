package storetest

import (
	"slices"
	"testing"

	"github.com/tripcap/tripcap"
)

// The round-trip tests are only as good as their fixtures: every field set,
// so a field a store forgets to keep shows up as a difference.
func TestFixturesFullyPopulated(t *testing.T) {
	wantPopulated(t, fullHost("web-1"))
	wantPopulated(t, fullCapture(tripcap.NewID(), tripcap.NewID(), "cap"))
	wantPopulated(t, joinToken(1, base))
}

func TestUnpopulated(t *testing.T) {
	c := fullCapture("w", "h", "cap")
	c.Parameters.CaptureSettings.FileCount = nil
	c.Files[1].Stored = false
	c.Cause = ""
	got := unpopulated(c)
	want := []string{
		"PacketCapture.Parameters.CaptureSettings.FileCount",
		"PacketCapture.Files[1].Stored",
		"PacketCapture.Cause",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("unpopulated = %v, want %v", got, want)
	}
}
