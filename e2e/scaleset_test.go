//go:build linux

package e2e

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	tchttp "github.com/tripcap/tripcap/http"
)

// TestScaleSetCaptureEndToEnd: three agents in scale set web; a capture of
// the scale set scoped to two of them runs a session on each, with each
// instance's own traffic in its own file under the scale set's folder.
func TestScaleSetCaptureEndToEnd(t *testing.T) {
	l := newLab(t)
	var web []*host
	for _, name := range []string{"web0", "web1", "web2"} {
		h := l.newHost(name)
		l.startAgent(h, "--join-token", l.joinToken(), "--label", tripcap.LabelScaleSet+"=web")
		l.eventually(name+" to be Online", 10*time.Second, func() bool {
			var got tripcap.Host
			return l.cliJSON(&got, "host", "show", name) == nil && got.State == tripcap.HostOnline
		})
		web = append(web, h)
	}
	client := l.addHost("client")
	for _, h := range web {
		l.link(client, h)
	}
	var h0 tripcap.Host
	if err := l.cliJSON(&h0, "host", "show", "web0"); err != nil {
		t.Fatal(err)
	}
	set := tripcap.VMSSResourceID(h0.SubscriptionID, h0.ResourceGroup, "web")
	c, err := l.api().CreateCapture(t.Context(), tchttp.CreateCaptureBody{Name: "vmss", Parameters: tripcap.PacketCaptureParameters{
		Target: set, Scope: &tripcap.CaptureScope{Exclude: []string{"web2"}}, TimeLimitInSeconds: 6,
		Filters: []tripcap.PacketCaptureFilter{{Protocol: "UDP", LocalPort: "7001"}}}})
	if err != nil {
		t.Fatalf("POST /api/v1/captures on scale set %s: %v", set, err)
	}
	if len(c.Sessions) != 2 {
		t.Fatalf("sessions: %+v", c.Sessions)
	}
	// Running means one session runs; the traffic waits for both.
	l.eventually("both sessions Running", 5*time.Second, func() bool {
		c := l.capture("vmss")
		return c.Status == tripcap.StatusRunning && !slices.ContainsFunc(c.Sessions, func(s tripcap.ScaleSetSession) bool { return s.Status != tripcap.StatusRunning })
	})
	l.send(client, web[0], 7001, 500, 1)
	l.send(client, web[1], 7001, 300, 2)
	l.send(client, web[2], 7001, 100, 3) // excluded: no session there

	l.eventually("vmss stored", 15*time.Second, func() bool {
		c := l.capture("vmss")
		if !c.Status.Terminal() {
			return false
		}
		for _, s := range c.Sessions {
			var m tripcap.PacketCapture
			if l.cliJSON(&m, "capture", "show", s.CaptureID) != nil || len(m.Files) != 1 || !m.Files[0].Stored {
				return false
			}
		}
		return true
	})
	got := l.capture("vmss")
	if got.Status != tripcap.StatusStopped || got.StopReason != tripcap.StopTimeExceeded || got.Stats.Packets != 800 {
		t.Fatalf("vmss ended %s/%s with %d packets (%v %s)", got.Status, got.StopReason, got.Stats.Packets, got.Errors, got.ErrorMessage)
	}
	want := map[string]int{"web0": 500, "web1": 300}
	for _, s := range got.Sessions {
		if !strings.Contains(s.StoragePath, "/providers/microsoft.compute/virtualmachinescalesets/web/virtualmachines/"+s.InstanceID+"/") {
			t.Errorf("%s: storagePath %s", s.InstanceID, s.StoragePath)
		}
		p := filepath.Join(l.dir, s.InstanceID+".cap")
		l.cli(nil, "capture", "download", s.CaptureID, "-w", p)
		if n := packets(t, p); n != want[s.InstanceID] {
			t.Errorf("%s: %d packets, want %d", s.InstanceID, n, want[s.InstanceID])
		}
		delete(want, s.InstanceID)
	}
	if len(want) != 0 {
		t.Errorf("no session on %v", want)
	}
	if text := l.cliText("capture", "show", "vmss"); !strings.Contains(text, "Instance:") || !strings.Contains(text, "web1") {
		t.Errorf("capture show does not list the instances:\n%s", text)
	}
}
