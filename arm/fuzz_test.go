package arm

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzParseResourceID: any string parses or is refused with a 400; what
// parses prints back to an id that parses to the same.
func FuzzParseResourceID(f *testing.F) {
	for _, s := range []string{
		"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
		"/subscriptions/00000000-0000-0000-0000-000000000000",
		"/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/resourcegroups/r.g/providers/Microsoft.Network/networkWatchers/nw/packetCaptures/pc",
		"vm1", "/subscriptions//x", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseResourceID("properties.target", s)
		if err != nil {
			if e := ErrorOf(err); e.Status != http.StatusBadRequest || e.Target != "properties.target" {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		again, err := ParseResourceID("", id.String())
		if err != nil || again.String() != id.String() {
			t.Fatalf("%q → %q → %v %v", s, id.String(), again, err)
		}
	})
}

// FuzzOperationID: any operation id in a polling URL is refused as not
// found, never a panic or a 500, when it is not one the server made.
func FuzzOperationID(f *testing.F) {
	a := New(nil, Services{})
	p := a.Provider("Test.Ops", "2024-05-01")
	p.Operation("k", func(r *Request, op *Operation) (*Progress, error) { return &Progress{Status: StatusSucceeded}, nil })
	h := a.Handler(nil)
	f.Add("eyJrIjoiayIsInIiOiIvc3Vic2NyaXB0aW9ucy8wMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDAiLCJ0IjowLCJuIjoiIn0")
	f.Add("%ZZ")
	f.Add("")
	f.Fuzz(func(t *testing.T, id string) {
		if strings.ContainsAny(id, "/?#%") || id == "" {
			return
		}
		req := httptest.NewRequest("GET", "/subscriptions/00000000-0000-0000-0000-000000000000/providers/Test.Ops/locations/global/operations/x?api-version=2024-05-01", nil)
		req.URL.Path = req.URL.Path[:strings.LastIndex(req.URL.Path, "/")+1] + id
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK && w.Code != http.StatusNotFound && w.Code != http.StatusBadRequest {
			t.Fatalf("%q: %d %s", id, w.Code, w.Body)
		}
	})
}

// FuzzCheckName: a name is accepted or refused with 400
// InvalidResourceName, and an accepted one is never empty or over 80.
func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"PSAzureFunction", "a", "bad*name", "x.", strings.Repeat("a", 81)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := CheckName("packetCaptureName", s)
		if err == nil && (s == "" || len(s) > 80) {
			t.Fatalf("%q accepted", s)
		}
		if err != nil && ErrorOf(err).Code != "InvalidResourceName" {
			t.Fatalf("%q: %v", s, err)
		}
	})
}
