package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// `capture list` names each capture's host: two hosts' captures of the
// responder's name are told apart at a glance; a host deleted since shows
// by id.
func TestCaptureListShowsHost(t *testing.T) {
	caps := []*tripcap.PacketCapture{
		{Name: "PSAzureFunction-web1", HostID: "id1", Status: tripcap.StatusStopped, CreatedAt: time.Now()},
		{Name: "PSAzureFunction-web2.example.com", HostID: "id2", Status: tripcap.StatusRunning, CreatedAt: time.Now()},
		{Name: "old", HostID: "gone", Status: tripcap.StatusStopped, CreatedAt: time.Now()},
	}
	var b bytes.Buffer
	printCaptureList(&b, caps, map[string]string{"id1": "web1", "id2": "web2.example.com"})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if f := strings.Fields(lines[0]); len(f) < 2 || f[0] != "NAME" || f[1] != "HOST" {
		t.Fatalf("header %q", lines[0])
	}
	for i, want := range []string{"web1", "web2.example.com", "gone"} {
		if f := strings.Fields(lines[i+1]); len(f) < 2 || f[1] != want {
			t.Errorf("row %d: %q, want host %s", i, lines[i+1], want)
		}
	}
}
