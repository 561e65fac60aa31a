package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tripcap/tripcap"
	tchttp "github.com/tripcap/tripcap/http"
)

// requestTimeout bounds each of the bench's own requests (setup and
// checks): a server out of file descriptors leaves connections waiting in
// its accept queue, and the run must still end.
const requestTimeout = 30 * time.Second

// probeTimeout bounds one probed operation; one that hits it counts as an error.
const probeTimeout = 10 * time.Second

// adminAPI is the bench's admin side: it creates the captures and measures
// the API through the same client the CLI uses.
type adminAPI struct {
	c     *tchttp.Client
	base  string
	token string
	log   *slog.Logger
}

func newAdminAPI(base, token string, log *slog.Logger) (*adminAPI, error) {
	c, err := tchttp.NewClient(base, token)
	if err != nil {
		return nil, err
	}
	return &adminAPI{c: c, base: base, token: token, log: log}, nil
}

// captureBody asks for a long capture on host: it outlives any run, so
// captures end only when the bench deletes them.
func captureBody(name, host string) tchttp.CreateCaptureBody {
	return tchttp.CreateCaptureBody{Name: name, Cause: "bench/fleet",
		Parameters: tripcap.PacketCaptureParameters{Target: host, TimeLimitInSeconds: tripcap.MaxTimeLimitInSeconds}}
}

// createCaptures creates one capture per name, on hosts in turn, with conc
// requests at a time, and returns their ids.
func (a *adminAPI) createCaptures(ctx context.Context, names, hosts []string, conc int) ([]string, error) {
	ids := make([]string, len(names))
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, conc)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(names) || ctx.Err() != nil {
					return
				}
				rctx, cancel := context.WithTimeout(ctx, requestTimeout)
				pc, err := a.c.CreateCapture(rctx, captureBody(names[i], hosts[i%len(hosts)]))
				cancel()
				if err != nil {
					errc <- fmt.Errorf("create capture %s on %s: %w", names[i], hosts[i%len(hosts)], err)
					return
				}
				ids[i] = pc.ID
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	return ids, nil
}

// deleteCaptures deletes captures by id, conc at a time.
func (a *adminAPI) deleteCaptures(ctx context.Context, ids []string, conc int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, conc)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ids) || ctx.Err() != nil {
					return
				}
				rctx, cancel := context.WithTimeout(ctx, requestTimeout)
				err := a.c.DeleteCapture(rctx, "", ids[i], false)
				cancel()
				if err != nil {
					errc <- fmt.Errorf("delete capture %s: %w", ids[i], err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// captureStatuses counts the captures among ids by status.
func (a *adminAPI) captureStatuses(ctx context.Context, ids []string) (map[tripcap.PacketCaptureStatus]int, error) {
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	out := map[tripcap.PacketCaptureStatus]int{}
	err := walk(ctx, a, "/api/v1/captures", func(pc *tripcap.PacketCapture) {
		if want[pc.ID] {
			out[pc.Status]++
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// waitRunning waits until every capture in ids reports Running.
func (a *adminAPI) waitRunning(ctx context.Context, ids []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := a.captureStatuses(ctx, ids)
		if err != nil {
			return err
		}
		if st[tripcap.StatusRunning] == len(ids) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s, of %d captures: %v", timeout, len(ids), st)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// waitEnded waits until no capture in ids is NotStarted or Running.
func (a *adminAPI) waitEnded(ctx context.Context, ids []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := a.captureStatuses(ctx, ids)
		if err != nil {
			return err
		}
		if st[tripcap.StatusRunning]+st[tripcap.StatusNotStarted] == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s, of %d captures: %v", timeout, len(ids), st)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// hostStates counts the hosts named in names by state. A name missing from
// the listing counts as "Missing".
func (a *adminAPI) hostStates(ctx context.Context, names []string) (map[string]int, error) {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	out := map[string]int{}
	seen := 0
	err := walk(ctx, a, "/api/v1/hosts", func(h *tripcap.Host) {
		if want[h.Name] {
			out[string(h.State)]++
			seen++
		}
	})
	if err != nil {
		return nil, err
	}
	if missing := len(names) - seen; missing > 0 {
		out["Missing"] = missing
	}
	return out, nil
}

// walk lists a collection in pages of 1000 (the API's largest), so that
// checking 10,000 hosts costs ten requests, not a hundred.
func walk[T any](ctx context.Context, a *adminAPI, path string, fn func(T)) error {
	q := url.Values{"limit": {"1000"}}
	ctx, cancel := context.WithTimeout(ctx, 2*requestTimeout)
	defer cancel()
	for {
		req, err := http.NewRequestWithContext(ctx, "GET", a.base+path+"?"+q.Encode(), nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+a.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("list %s: %w", path, err)
		}
		var page tchttp.List[T]
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("list %s: %s", path, resp.Status)
		}
		if err != nil {
			return fmt.Errorf("list %s: %w", path, err)
		}
		for _, v := range page.Value {
			fn(v)
		}
		if page.NextLink == "" {
			return nil
		}
		u, err := url.Parse(page.NextLink)
		if err != nil {
			return fmt.Errorf("list %s: nextLink %q: %w", path, page.NextLink, err)
		}
		q = u.Query()
	}
}

// The operations the probe times.
const (
	opCreate   = "create"
	opGetID    = "get-id"
	opGetName  = "get-name"
	opListPage = "list-page"
	opListAll  = "list-all"
	opDelete   = "delete"
)

// reportedOps are the operations the probe times, in the order of the tables.
var reportedOps = []string{opCreate, opGetID, opGetName, opListPage, opDelete, opListAll}

// judgedOps are the single-request operations whose p99 decides whether a
// step passes; list-all walks every page (11 requests at 1,000 captures)
// and is reported, not judged.
var judgedOps = []string{opCreate, opGetID, opGetName, opListPage, opDelete}

// latency summarizes one operation's samples.
type latency struct {
	N      int     `json:"n"`
	Errors int     `json:"errors"`
	P50ms  float64 `json:"p50Ms"`
	P99ms  float64 `json:"p99Ms"`
	MaxMs  float64 `json:"maxMs"`
}

func summarize(samples []time.Duration, errs int) latency {
	l := latency{N: len(samples), Errors: errs}
	if len(samples) == 0 {
		return l
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	l.P50ms = ms(percentile(s, 0.50))
	l.P99ms = ms(percentile(s, 0.99))
	l.MaxMs = ms(s[len(s)-1])
	return l
}

// percentile is the nearest-rank percentile of sorted samples.
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 100 }

// probe times the API: each operation on a loop of its own, one request
// at a time per loop, so that at most six requests are in flight (the load
// on the server is the fleet's, not the probe's) and a slow operation does
// not starve the others of samples. The single-request operations share
// the rate equally; list-all, eleven requests at 1,000 captures, runs at
// its own lower rate. A tick missed because a request was slow is skipped;
// the slow request is what the percentiles show. The delete loop deletes
// what the create loop made, so the number of captures stays put.
type probe struct {
	api   *adminAPI
	hosts []string // targets of created captures
	// running are captures to get by id and name.
	running []*tripcap.PacketCapture
	prefix  string

	mu      sync.Mutex
	samples map[string][]time.Duration
	errors  map[string]int
	errLog  []string
	created []string // ids the delete loop has yet to delete
}

func (p *probe) run(ctx context.Context, rate, listAllRate float64) {
	p.samples, p.errors = map[string][]time.Duration{}, map[string]int{}
	var wg sync.WaitGroup
	for _, op := range reportedOps {
		r := rate / float64(len(judgedOps))
		if op == opListAll {
			r = listAllRate
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.loop(ctx, op, r)
		}()
	}
	wg.Wait()
	// Leave no probe capture behind: the count of running captures is the run's.
	dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, id := range p.created {
		_ = p.api.c.DeleteCapture(dctx, "", id, false)
	}
}

// takeCreated pops the oldest capture the create loop made, or "".
func (p *probe) takeCreated() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.created) == 0 {
		return ""
	}
	id := p.created[0]
	p.created = p.created[1:]
	return id
}

func (p *probe) loop(ctx context.Context, op string, rate float64) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var id string
		if op == opDelete {
			if id = p.takeCreated(); id == "" {
				continue // nothing created yet
			}
		}
		start := time.Now()
		err := p.do(ctx, op, i, id)
		d := time.Since(start)
		if ctx.Err() != nil {
			continue // cut short by the window's end: not a sample
		}
		p.record(op, d, err)
	}
}

func (p *probe) record(op string, d time.Duration, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.errors[op]++
		if len(p.errLog) < maxSamples {
			p.errLog = append(p.errLog, fmt.Sprintf("%s: %v", op, err))
		}
		return
	}
	p.samples[op] = append(p.samples[op], d)
}

// do runs one operation; id is the capture a delete removes.
func (p *probe) do(ctx context.Context, op string, i int, id string) error {
	// A request that hangs is an error after probeTimeout, not a stall of the probe.
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	target := p.running[rand.IntN(len(p.running))]
	var err error
	switch op {
	case opCreate:
		var pc *tripcap.PacketCapture
		name := fmt.Sprintf("%s-%06d", p.prefix, i)
		if pc, err = p.api.c.CreateCapture(ctx, captureBody(name, p.hosts[rand.IntN(len(p.hosts))])); err == nil {
			p.mu.Lock()
			p.created = append(p.created, pc.ID)
			p.mu.Unlock()
		}
	case opDelete:
		err = p.api.c.DeleteCapture(ctx, "", id, false)
	case opGetID:
		_, err = p.api.c.GetCapture(ctx, "", target.ID)
	case opGetName:
		_, err = p.api.c.GetCapture(ctx, "", target.Name)
	case opListPage:
		err = p.listPage(ctx)
	case opListAll:
		_, err = p.api.c.ListCaptures(ctx, "", "")
	}
	return err
}

// listPage gets the first page of captures (100, the default page size).
func (p *probe) listPage(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, "GET", p.api.base+"/api/v1/captures", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+p.api.token)
	resp, err := probeHTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var page tchttp.List[*tripcap.PacketCapture]
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("list captures: %s", resp.Status)
	}
	return nil
}

// probeHTTP keeps the probe's page requests on a warm connection, like the
// client's other calls.
var probeHTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}

func (p *probe) results() map[string]latency {
	out := map[string]latency{}
	for _, op := range reportedOps {
		out[op] = summarize(p.samples[op], p.errors[op])
	}
	return out
}
