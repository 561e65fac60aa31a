package arm

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/tripcap/tripcap"
)

const testSub = "00000000-0000-0000-0000-000000000001"

// widgets is a provider for the framework's tests: an in-memory list and
// a delete that finishes when the test says.
type widgets struct {
	mu      sync.Mutex
	names   []string
	deleted map[string]bool // name → finished
}

func newTestAPI(t *testing.T, opts ...Option) (*httptest.Server, *widgets) {
	t.Helper()
	a := New(slog.New(slog.NewTextHandler(io.Discard, nil)), Services{}, append([]Option{WithSubscriptions(func(_ *http.Request, id string) (bool, error) {
		return strings.EqualFold(id, testSub), nil
	})}, opts...)...)
	wd := &widgets{deleted: map[string]bool{}}
	p := a.Provider("Test.Widgets", "2016-03-30", "2024-05-01")
	base := "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Test.Widgets/widgets"
	p.Handle(http.MethodGet, base, "Widgets_List", func(w http.ResponseWriter, r *Request) error {
		wd.mu.Lock()
		all := append([]string(nil), wd.names...)
		wd.mu.Unlock()
		page, next, err := Paginate(r, all)
		if err != nil {
			return err
		}
		return WritePage(w, r, page, next)
	})
	p.Handle(http.MethodGet, base+"/{name}", "Widgets_Get", func(w http.ResponseWriter, r *Request) error {
		return Recode(tripcap.Errorf(tripcap.ENOTFOUND, "widget %s: not found", r.Param("name")), tripcap.ENOTFOUND, "WidgetNotFound")
	})
	p.Handle(http.MethodGet, base+"/{name}/boom", "Widgets_Boom", func(w http.ResponseWriter, r *Request) error {
		return io.ErrUnexpectedEOF // an internal error: not shown
	})
	p.Handle(http.MethodDelete, base+"/{name}", "Widgets_Delete", func(w http.ResponseWriter, r *Request) error {
		id := "/subscriptions/" + r.Param("subscriptionId") + "/resourceGroups/" + r.Param("resourceGroupName") + "/providers/Test.Widgets/widgets/" + r.Param("name")
		wd.mu.Lock()
		wd.deleted[id] = false
		wd.mu.Unlock()
		return r.Accepted(w, http.StatusAccepted, r.NewOperation("widgets/delete", id, "westus"), nil)
	})
	p.Operation("widgets/delete", func(r *Request, op *Operation) (*Progress, error) {
		wd.mu.Lock()
		defer wd.mu.Unlock()
		if wd.deleted[op.ResourceID] {
			return &Progress{Status: StatusSucceeded}, nil
		}
		return &Progress{Status: StatusInProgress}, nil
	})
	ts := httptest.NewServer(a.Handler(nil))
	t.Cleanup(ts.Close)
	return ts, wd
}

func do(t *testing.T, method, url string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	req.Header.Set("x-ms-correlation-request-id", "c0ffee00-0000-4000-8000-000000000000")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp, body
}

func errCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	c, _ := e["code"].(string)
	if m, _ := e["message"].(string); m == "" {
		return "(no message)"
	}
	return c
}

func TestFrameworkErrorsAndHeaders(t *testing.T) {
	ts, _ := newTestAPI(t)
	rg := ts.URL + "/subscriptions/" + testSub + "/resourceGroups/rg1/providers/Test.Widgets/widgets"
	for _, c := range []struct {
		name, method, url string
		status            int
		code              string
	}{
		{"no api-version", "GET", rg + "/w1", 400, "MissingApiVersionParameter"},
		{"unknown api-version", "GET", rg + "/w1?api-version=2099-01-01", 400, "InvalidApiVersionParameter"},
		{"not found recoded", "GET", rg + "/w1?api-version=2016-03-30", 404, "WidgetNotFound"},
		{"case-insensitive path", "GET", strings.Replace(rg, "resourceGroups", "RESOURCEGROUPS", 1) + "/w1?api-version=2024-05-01", 404, "WidgetNotFound"},
		{"malformed subscription", "GET", ts.URL + "/subscriptions/nope/resourceGroups/rg1/providers/Test.Widgets/widgets/w1?api-version=2016-03-30", 400, "InvalidSubscriptionId"},
		{"unknown subscription", "GET", strings.Replace(rg, testSub, "00000000-0000-0000-0000-000000000002", 1) + "/w1?api-version=2016-03-30", 404, "SubscriptionNotFound"},
		{"bad resource group", "GET", strings.Replace(rg, "rg1", "rg1.", 1) + "/w1?api-version=2016-03-30", 400, "InvalidResourceGroup"},
		{"unknown provider", "GET", ts.URL + "/subscriptions/" + testSub + "/resourceGroups/rg1/providers/No.Such/things?api-version=2016-03-30", 400, "NoRegisteredProviderFound"},
		{"unknown type", "GET", ts.URL + "/subscriptions/" + testSub + "/resourceGroups/rg1/providers/Test.Widgets/gadgets?api-version=2016-03-30", 400, "InvalidResourceType"},
		{"method not allowed", "PATCH", rg + "/w1?api-version=2016-03-30", 405, "HttpMethodNotAllowed"},
		{"internal error hidden", "GET", rg + "/w1/boom?api-version=2016-03-30", 500, "InternalServerError"},
	} {
		resp, body := do(t, c.method, c.url)
		if resp.StatusCode != c.status || errCode(body) != c.code {
			t.Errorf("%s: %d %q, want %d %q (%v)", c.name, resp.StatusCode, errCode(body), c.status, c.code, body)
		}
		if resp.Header.Get("x-ms-request-id") == "" || resp.Header.Get("x-ms-correlation-request-id") != "c0ffee00-0000-4000-8000-000000000000" {
			t.Errorf("%s: request ids %q %q", c.name, resp.Header.Get("x-ms-request-id"), resp.Header.Get("x-ms-correlation-request-id"))
		}
		if c.code == "InternalServerError" && strings.Contains(body["error"].(map[string]any)["message"].(string), "EOF") {
			t.Errorf("internal error shown: %v", body)
		}
	}
}

func TestFrameworkPagingAbsoluteNextLink(t *testing.T) {
	ts, wd := newTestAPI(t, WithPageSize(2))
	wd.names = []string{"a", "b", "c", "d", "e"}
	url := ts.URL + "/subscriptions/" + testSub + "/resourceGroups/rg1/providers/Test.Widgets/widgets?api-version=2016-03-30"
	var got []string
	for pages := 0; url != ""; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		resp, body := do(t, "GET", url)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", url, resp.StatusCode, body)
		}
		for _, v := range body["value"].([]any) {
			got = append(got, v.(string))
		}
		url, _ = body["nextLink"].(string)
		if url != "" && (!strings.HasPrefix(url, ts.URL+"/") || !strings.Contains(url, "api-version=2016-03-30")) {
			t.Fatalf("nextLink %q: not absolute or lost the api-version", url)
		}
	}
	if strings.Join(got, "") != "abcde" {
		t.Errorf("paged %v", got)
	}
	resp, body := do(t, "GET", ts.URL+"/subscriptions/"+testSub+"/resourceGroups/rg1/providers/Test.Widgets/widgets?api-version=2016-03-30&$skipToken=x")
	if resp.StatusCode != 400 || errCode(body) != "InvalidSkipToken" {
		t.Errorf("bad skip token: %d %v", resp.StatusCode, body)
	}
}

func TestFrameworkLongRunningOperation(t *testing.T) {
	ts, wd := newTestAPI(t)
	resp, _ := do(t, "DELETE", ts.URL+"/subscriptions/"+testSub+"/resourceGroups/rg1/providers/Test.Widgets/widgets/w1?api-version=2024-05-01")
	async, loc := resp.Header.Get("Azure-AsyncOperation"), resp.Header.Get("Location")
	if resp.StatusCode != 202 || !strings.HasPrefix(async, ts.URL+"/subscriptions/"+testSub+"/providers/Test.Widgets/locations/westus/operations/") ||
		!strings.HasPrefix(loc, ts.URL+"/subscriptions/"+testSub+"/providers/Test.Widgets/locations/westus/operationResults/") || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("delete: %d, Azure-AsyncOperation %q, Location %q, Retry-After %q", resp.StatusCode, async, loc, resp.Header.Get("Retry-After"))
	}
	resp, body := do(t, "GET", async)
	if resp.StatusCode != 200 || body["status"] != StatusInProgress || resp.Header.Get("Retry-After") == "" {
		t.Errorf("status while running: %d %v", resp.StatusCode, body)
	}
	resp, _ = do(t, "GET", loc)
	if resp.StatusCode != 202 || resp.Header.Get("Location") == "" {
		t.Errorf("result while running: %d", resp.StatusCode)
	}
	wd.mu.Lock()
	for id := range wd.deleted {
		wd.deleted[id] = true
	}
	wd.mu.Unlock()
	if resp, body = do(t, "GET", async); resp.StatusCode != 200 || body["status"] != StatusSucceeded || body["endTime"] == nil {
		t.Errorf("status when done: %d %v", resp.StatusCode, body)
	}
	if resp, _ = do(t, "GET", loc); resp.StatusCode != 204 {
		t.Errorf("result when done: %d", resp.StatusCode)
	}
	// Another subscription, location or a forged id finds nothing.
	for _, u := range []string{
		strings.Replace(async, "/westus/", "/eastus/", 1),
		async[:strings.LastIndex(async, "/")] + "/bm90LWFuLW9w?api-version=2024-05-01",
	} {
		if resp, body = do(t, "GET", u); resp.StatusCode != 404 || errCode(body) != "OperationNotFound" {
			t.Errorf("%s: %d %v", u, resp.StatusCode, body)
		}
	}
}

func TestActionOf(t *testing.T) {
	for _, c := range []struct{ method, pattern, want string }{
		{"PUT", "/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.Network/networkWatchers/{n}/packetCaptures/{p}", "Microsoft.Network/networkWatchers/packetCaptures/write"},
		{"GET", "/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.Network/networkWatchers/{n}/packetCaptures", "Microsoft.Network/networkWatchers/packetCaptures/read"},
		{"DELETE", "/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.Network/networkWatchers/{n}", "Microsoft.Network/networkWatchers/delete"},
		{"POST", "/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.Network/networkWatchers/{n}/packetCaptures/{p}/queryStatus", "Microsoft.Network/networkWatchers/packetCaptures/queryStatus/action"},
		{"GET", "/subscriptions/{s}/providers/Microsoft.Network/locations/{l}/operations/{o}", "Microsoft.Network/locations/operations/read"},
		{"GET", "/subscriptions", "Microsoft.Resources/subscriptions/read"},
		{"GET", "/subscriptions/{s}/resourceGroups/{g}", "Microsoft.Resources/subscriptions/resourceGroups/read"},
	} {
		if got := actionOf(c.method, strings.Split(strings.TrimPrefix(c.pattern, "/"), "/")); got != c.want {
			t.Errorf("%s %s: %s, want %s", c.method, c.pattern, got, c.want)
		}
	}
}
