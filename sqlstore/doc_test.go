package sqlstore

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// The shadowing fields of captureDoc must carry the JSON names of the
// PacketCapture fields they hide, or those fields would leak into the doc.
func TestCaptureDocShadowsColumns(t *testing.T) {
	pc := reflect.TypeFor[tripcap.PacketCapture]()
	doc := reflect.TypeFor[captureDoc]()
	for i := 1; i < doc.NumField(); i++ {
		f := doc.Field(i)
		orig, ok := pc.FieldByName(f.Name)
		if !ok {
			t.Errorf("captureDoc.%s shadows no PacketCapture field", f.Name)
			continue
		}
		want, _, _ := strings.Cut(orig.Tag.Get("json"), ",")
		if got := strings.TrimSuffix(f.Tag.Get("json"), ",omitempty"); got != want {
			t.Errorf("captureDoc.%s has JSON name %q, PacketCapture's is %q", f.Name, got, want)
		}
	}
}

func TestCaptureDocRoundTrip(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	c := &tripcap.PacketCapture{
		ID: "id1", Name: "n", WatcherID: "w", HostID: "h", Version: 3,
		Desired: tripcap.DesiredRunning, Status: tripcap.StatusRunning,
		CreatedAt: now, UpdatedAt: now, DeletedAt: &now,
		Cause: "because", StorageKey: "k", Stats: tripcap.CaptureStats{Packets: 1},
	}
	b, err := EncodeCapture(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, col := range []string{"id", "name", "watcherId", "hostId", "version", "desiredState", "packetCaptureStatus", "createdAt", "updatedAt", "deletedAt"} {
		if _, ok := m[col]; ok {
			t.Errorf("doc %s holds column field %q", b, col)
		}
	}
	for _, field := range []string{"cause", "storageKey", "statistics", "parameters"} {
		if _, ok := m[field]; !ok {
			t.Errorf("doc %s lacks %q", b, field)
		}
	}
	got := &tripcap.PacketCapture{ID: "id1", Name: "n", WatcherID: "w", HostID: "h", Version: 3,
		Desired: tripcap.DesiredRunning, Status: tripcap.StatusRunning, CreatedAt: now, UpdatedAt: now, DeletedAt: &now}
	// Column values win over a doc that (from an older schema) holds them.
	if err := DecodeCapture([]byte(`{"id":"stale","version":1,"cause":"because","storageKey":"k","statistics":{"packets":1}}`), got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("decoded %+v, want %+v", got, c)
	}
}

func TestRebind(t *testing.T) {
	if got := Rebind("a = ? AND b IN (?, ?)"); got != "a = $1 AND b IN ($2, $3)" {
		t.Fatal(got)
	}
}

func TestPage(t *testing.T) {
	id := func(s string) string { return s }
	for _, tc := range []struct {
		rows  []string
		limit int
		n     int
		next  string
	}{
		{[]string{"a", "b", "c"}, 0, 3, ""},
		{[]string{"a", "b", "c"}, 2, 2, "b"},
		{[]string{"a", "b"}, 2, 2, ""},
		{nil, 2, 0, ""},
	} {
		rows, next := Page(tc.rows, tc.limit, id)
		if len(rows) != tc.n || next != tc.next {
			t.Errorf("Page(%v, %d) = %v, %q; want %d rows, %q", tc.rows, tc.limit, rows, next, tc.n, tc.next)
		}
	}
}
