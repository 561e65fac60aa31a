// Package storetest is the conformance suite every tripcap.Store passes.
// A backend's tests call Run with a function that opens a fresh, empty store:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) tripcap.Store { … })
//	}
//
// Each subtest opens its own store; open should close it (and drop its
// database) in t.Cleanup. Several subtests race many goroutines against one
// store to check its invariants under concurrency, so open should give the
// store room for real parallelism (for a pool of connections, 8 or more).
package storetest

import (
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// Run runs the conformance suite against stores made by open.
func Run(t *testing.T, open func(t *testing.T) tripcap.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s tripcap.Store)
	}{
		{"Host/RoundTrip", testHostRoundTrip},
		{"Host/Conflict", testHostConflict},
		{"Host/Find", testHostFind},
		{"Host/FindByResourceID", testHostFindByResourceID},
		{"Host/Pagination", testHostPagination},
		{"Host/UpdateInventory", testUpdateHostInventory},
		{"Host/TouchHosts", testTouchHosts},
		{"Host/MarkOffline", testMarkHostsOffline},
		{"Host/MarkOfflineConcurrent", testMarkHostsOfflineConcurrent},
		{"Host/Delete", testDeleteHost},
		{"JoinToken/Lifecycle", testJoinToken},
		{"JoinToken/Expiry", testJoinTokenExpiry},
		{"JoinToken/ConcurrentConsume", testJoinTokenConcurrent},
		{"JoinToken/BoundAndFound", testJoinTokenBoundAndFound},
		{"PendingEnrollment/Lifecycle", testPendingEnrollments},
		{"Credential/Lifecycle", testCredentials},
		{"Watcher/Ensure", testEnsureWatcher},
		{"Watcher/EnsureConcurrent", testEnsureWatcherConcurrent},
		{"Watcher/FindAndLimit", testFindWatcher},
		{"Watcher/Scope", testWatcherScope},
		{"Capture/RoundTrip", testCaptureRoundTrip},
		{"Capture/TimePrecision", testCaptureTimePrecision},
		{"Capture/NameConflict", testCaptureNameConflict},
		{"Capture/NameConflictConcurrent", testCaptureNameConcurrent},
		{"Capture/Limit", testCaptureLimit},
		{"Capture/LimitConcurrent", testCaptureLimitConcurrent},
		{"Capture/MissingReferences", testCaptureMissingReferences},
		{"Capture/UpdateVersion", testUpdateCaptureVersion},
		{"Capture/UpdateFixedFields", testUpdateCaptureFixed},
		{"Capture/UpdateCapturesBatch", testUpdateCaptures},
		{"Capture/Find", testFindCaptures},
		{"Capture/Pagination", testCapturePagination},
		{"Capture/HostRevision", testHostRevision},
		{"WatchHostChanges/Delivers", testWatchHostChanges},
		{"WatchHostChanges/Subscribers", testWatchHostChangesSubscribers},
		{"StorageAccount/Lifecycle", testStorageAccounts},
		{"InvalidInput", testInvalidInput},
	}
	tests = append(tests, alertingTests...)
	tests = append(tests, responderTests...)
	tests = append(tests, fileTests...)
	tests = append(tests, identityTests...)
	tests = append(tests, auditTests...)
	tests = append(tests, scaleSetTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

// base is the fixtures' clock: microsecond precision (what every store
// keeps) in a zone other than UTC (stores return UTC).
var base = time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.FixedZone("UTC+2", 2*3600))

// wantCode fails t unless err carries the domain error code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := tripcap.ErrorCode(err); got != code {
		t.Fatalf("got error %v (code %q), want code %q", err, got, code)
	}
}

// must fails t on err.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// normHost returns a copy of h with its times in UTC, as stores return them.
func normHost(h *tripcap.Host) *tripcap.Host {
	c := *h
	c.LastSeen = c.LastSeen.UTC()
	c.CreatedAt = c.CreatedAt.UTC()
	c.UpdatedAt = c.UpdatedAt.UTC()
	return &c
}

// normCapture returns a copy of c with its times in UTC.
func normCapture(c *tripcap.PacketCapture) *tripcap.PacketCapture {
	// Every time in the capture, however deep (a file's, an ended
	// interface's, the summary's), comes back in UTC.
	return utcCopy(c)
}

// wantEqual fails t unless got deep-equals want.
func wantEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, dump(got), dump(want))
	}
}

func dump(v any) string {
	switch v := v.(type) {
	case *tripcap.PacketCapture:
		return fmt.Sprintf("%+v params=%+v start=%v stop=%v deleted=%v", *v, v.Parameters, v.CaptureStartTime, v.CaptureStopTime, v.DeletedAt)
	case *tripcap.Host:
		return fmt.Sprintf("%+v", *v)
	}
	return fmt.Sprintf("%+v", v)
}

// fullHost returns a host with every field set.
func fullHost(name string) *tripcap.Host {
	return &tripcap.Host{
		ID:       tripcap.NewID(),
		Name:     name,
		Location: "westeurope",
		Labels: map[string]string{
			tripcap.LabelSubscription:  "Sub-0001",
			tripcap.LabelResourceGroup: "RG-Web",
			"role":                     "frontend",
		},
		SubscriptionID: "Sub-0001",
		ResourceGroup:  "RG-Web",
		Inventory: tripcap.Inventory{
			Hostname:     name + ".example.internal",
			OS:           "linux",
			Kernel:       "6.1.0-28-amd64",
			AgentVersion: "0.1.0",
			Interfaces: []tripcap.Interface{
				{Name: "lo", Index: 1, MAC: "00:00:00:00:00:00", MTU: 65536, Up: true, Loopback: true, Addresses: []string{"127.0.0.1/8", "::1/128"}},
				{Name: "eth0", Index: 2, MAC: "52:54:00:12:34:56", MTU: 1500, Up: true, Loopback: true, Addresses: []string{"10.0.0.4/24"}},
			},
		},
		State:     tripcap.HostOnline,
		LastSeen:  base.Add(time.Minute),
		Revision:  3,
		CreatedAt: base,
		UpdatedAt: base.Add(time.Second),
	}
}

// host returns a minimal host in location.
func host(name, location string) *tripcap.Host {
	return &tripcap.Host{
		ID:        tripcap.NewID(),
		Name:      name,
		Location:  location,
		State:     tripcap.HostOffline,
		LastSeen:  base,
		CreatedAt: base,
		UpdatedAt: base,
	}
}

// fullCapture returns a capture with every field set, DeletedAt included.
func fullCapture(watcherID, hostID, name string) *tripcap.PacketCapture {
	return &tripcap.PacketCapture{
		ID:        tripcap.NewID(),
		Name:      name,
		WatcherID: watcherID,
		HostID:    hostID,
		Version:   42, // the store sets 1
		// A session of a scale-set capture (testScaleSetSessionRoundTrip);
		// Sessions, never stored, come back empty.
		ScaleSetID: tripcap.NewID(),
		Sessions:   []tripcap.ScaleSetSession{*filled[tripcap.ScaleSetSession]()},
		Parameters: tripcap.PacketCaptureParameters{
			Target:                  tripcap.VMResourceID("Sub-0001", "RG-Web", "web-1"),
			TargetType:              "AzureVMSS",
			Scope:                   &tripcap.CaptureScope{Include: []string{"0", "2"}, Exclude: []string{"1"}},
			BytesToCapturePerPacket: 128,
			TotalBytesPerSession:    tripcap.MaxBytesValue,
			TimeLimitInSeconds:      600,
			StorageLocation: tripcap.StorageLocation{
				StorageID:   "/subscriptions/Sub-0001/resourceGroups/RG-Web/providers/Microsoft.Storage/storageAccounts/caps",
				StoragePath: "https://caps.blob.core.windows.net/network-watcher-logs/web-1.cap",
				FilePath:    "/var/captures/web-1.cap",
				LocalPath:   "web-1-local.pcapng",
			},
			Filters: []tripcap.PacketCaptureFilter{
				{Protocol: "TCP", LocalIPAddress: "10.0.0.4", LocalPort: "443", RemoteIPAddress: "10.0.1.1-10.0.1.9", RemotePort: "1024-65535"},
				{Protocol: "UDP", LocalIPAddress: "10.0.0.4;10.0.0.5", LocalPort: "53", RemoteIPAddress: "0.0.0.0", RemotePort: "53"},
			},
			ContinuousCapture: new(true),
			CaptureSettings: &tripcap.CaptureSettings{
				FileCount:                 new(int32(7)),
				FileSizeInBytes:           new(int64(1 << 26)),
				SessionTimeLimitInSeconds: new(int32(3600)),
			},
			Format:            tripcap.FormatPcapng,
			Interfaces:        []string{"eth0", "eth1"},
			PreTriggerSeconds: 30,
			IncludeMetadata:   true,
			FilterExpression:  "tcp port 443 and not host 198.18.0.9",
		},
		ProvisioningState: tripcap.ProvisioningSucceeded,
		Desired:           tripcap.DesiredRunning,
		Status:            tripcap.StatusRunning,
		StopReason:        tripcap.StopTotalBytesExceeded,
		Errors:            []string{tripcap.CaptureErrLocalFile, tripcap.CaptureErrStorageFailed},
		ErrorMessage:      "upload failed: \"quota\" <exceeded> ✓ \x00 after a NUL",
		CaptureStartTime:  new(base.Add(time.Second)),
		CaptureStopTime:   new(base.Add(time.Hour)),
		Stats: tripcap.CaptureStats{Packets: 1 << 40, Bytes: math.MaxUint64, KernelDrops: 17, TruncatedPackets: new(uint64(9)),
			EndedInterfaces: []tripcap.InterfaceEnd{{Name: "veth7", At: base.Add(time.Minute), Reason: "deleted"}},
			PreTrigger:      &tripcap.PreTriggerResult{RequestedSeconds: 30, Seconds: 12.5, Packets: 4000, Notes: []string{"no pre-trigger packets from eth1"}}},
		// The summary is a large document written by one program; every
		// field of it is set by filled, so a new field is tested too.
		Summary: filled[tripcap.CaptureSummary](),
		Files: []tripcap.CaptureFile{
			{Name: "web-1.pcapng", Size: 1 << 26, SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Stored: true,
				StorageID: "/subscriptions/Sub-0001/storageAccounts/caps", Key: "captures/web-1.pcapng", LocalPath: "/var/captures/web-1.pcapng", CreatedAt: base.Add(2 * time.Second),
				DeletedAt: new(base.Add(4 * time.Second))},
			{Name: "web-1.1.pcapng", Size: 12, SHA256: "00", Stored: true, StorageID: "s", Key: "k", LocalPath: "/var/captures/web-1.1.pcapng", CreatedAt: base.Add(3 * time.Second),
				DeletedAt: new(base.Add(5 * time.Second))},
		},
		Cause:      "alert HighLatency fired on web-1",
		AlertID:    "/subscriptions/Sub-0001/providers/Microsoft.AlertsManagement/alerts/6f0ad1c2",
		StorageKey: "captures/web-1.pcapng",
		CreatedAt:  base,
		UpdatedAt:  base.Add(time.Millisecond),
		DeletedAt:  new(base.Add(2 * time.Hour)),
	}
}

// capture returns a minimal running capture.
func capture(watcherID, hostID, name string) *tripcap.PacketCapture {
	return &tripcap.PacketCapture{
		ID:                tripcap.NewID(),
		Name:              name,
		WatcherID:         watcherID,
		HostID:            hostID,
		Parameters:        tripcap.PacketCaptureParameters{Target: hostID, StorageLocation: tripcap.StorageLocation{LocalPath: name + ".cap"}},
		ProvisioningState: tripcap.ProvisioningSucceeded,
		Desired:           tripcap.DesiredRunning,
		Status:            tripcap.StatusNotStarted,
		CreatedAt:         base,
		UpdatedAt:         base,
	}
}

// filled returns a T whose every field is set to a value that survives a
// JSON round trip (strings, numbers, booleans, times in UTC to the
// microsecond, one element in each slice and map, pointers to such).
func filled[T any]() *T {
	v := new(T)
	var fill func(v reflect.Value, depth int)
	fill = func(v reflect.Value, depth int) {
		if depth > 8 {
			return
		}
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(base.Add(time.Duration(depth) * time.Second)))
			return
		}
		switch v.Kind() {
		case reflect.String:
			v.SetString("x")
		case reflect.Bool:
			v.SetBool(true)
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			v.SetInt(3)
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			v.SetUint(5)
		case reflect.Float32, reflect.Float64:
			v.SetFloat(1.5)
		case reflect.Pointer:
			v.Set(reflect.New(v.Type().Elem()))
			fill(v.Elem(), depth+1)
		case reflect.Slice:
			v.Set(reflect.MakeSlice(v.Type(), 1, 1))
			fill(v.Index(0), depth+1)
		case reflect.Map:
			m := reflect.MakeMap(v.Type())
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(k, depth+1)
			fill(e, depth+1)
			m.SetMapIndex(k, e)
			v.Set(m)
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				if v.Type().Field(i).IsExported() {
					fill(v.Field(i), depth+1)
				}
			}
		}
	}
	fill(reflect.ValueOf(v).Elem(), 0)
	return v
}

// unpopulated lists the fields of v (a struct or pointer to one) left at
// their zero value, recursively, so a "fully populated" fixture stays so as
// the domain types grow.
func unpopulated(v any) []string {
	var out []string
	var walk func(path string, v reflect.Value)
	walk = func(path string, v reflect.Value) {
		if v.IsZero() {
			out = append(out, path)
			return
		}
		switch v.Kind() {
		case reflect.Pointer:
			walk(path, v.Elem())
		case reflect.Slice:
			for i := 0; i < v.Len(); i++ {
				walk(fmt.Sprintf("%s[%d]", path, i), v.Index(i))
			}
		case reflect.Struct:
			if v.Type() == reflect.TypeFor[time.Time]() {
				return
			}
			for i := 0; i < v.NumField(); i++ {
				walk(path+"."+v.Type().Field(i).Name, v.Field(i))
			}
		}
	}
	rv := reflect.ValueOf(v)
	walk(reflect.Indirect(rv).Type().Name(), rv)
	return out
}

// wantPopulated fails t if a fixture has a field left unset.
func wantPopulated(t *testing.T, v any) {
	t.Helper()
	if missing := unpopulated(v); len(missing) > 0 {
		t.Fatalf("fixture is not fully populated; set %v", missing)
	}
}
