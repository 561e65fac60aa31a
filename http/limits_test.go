package http_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tripcap/tripcap/internal/logtest"

	dto "github.com/prometheus/client_model/go"

	"github.com/tripcap/tripcap"
	tchttp "github.com/tripcap/tripcap/http"
)

// rawPost sends a POST's headers announcing a body of size bytes, and the
// first byte of it only, on a connection of its own, and returns the
// answer's status line, its headers, and whether the server then closed the
// connection (within wait).
func rawPost(t *testing.T, addr, path string, size int, hdr string, wait time.Duration) (status string, header http.Header, closed bool) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: tripcap\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n{", path, size, hdr)
	_ = c.SetReadDeadline(time.Now().Add(wait))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", nil, errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_, err = br.ReadByte()
	return resp.Status, resp.Header, errors.Is(err, io.EOF)
}

func hostOf(t *testing.T, url string) string {
	t.Helper()
	return strings.TrimPrefix(url, "http://")
}

// Finding: 200 stalled 1 MB posts to /api/functions/{name} without a key
// held 420 MB, the body being read before the key was checked. Now the key
// is checked on the headers: each post is answered 401 while its body has
// not been sent (so no handler read it), the connection is closed rather
// than drained, and memory does not grow with the posts.
func TestFunctionSlowBodyWithoutKeyRefusedUnread(t *testing.T) {
	lim := tchttp.Limits{ReadTimeout: 2 * time.Second}
	f := newFixtureWith(t, fixtureOptions{limits: &lim})
	ctx := t.Context()
	if _, err := f.admin.CreateResponder(ctx, &tripcap.Responder{Name: "pc"}); err != nil {
		t.Fatal(err)
	}
	addr := hostOf(t, f.url)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const posts = 200
	type answer struct {
		status string
		closed bool
	}
	answers := make(chan answer, posts)
	conns := make([]net.Conn, 0, posts)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range posts {
		// Half without a key, half with a wrong one, in the header or ?code=.
		path, hdr := "/api/functions/pc", ""
		switch i % 3 {
		case 1:
			path += "?code=wrong"
		case 2:
			hdr = tchttp.FunctionKeyHeader + ": wrong\r\n"
		}
		wg.Go(func() {
			st, _, closed := rawPost(t, addr, path, 1<<20, hdr, 5*time.Second)
			answers <- answer{st, closed}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(answers)
	for a := range answers {
		if !strings.HasPrefix(a.status, "401") || !a.closed {
			t.Fatalf("a stalled post without a valid key: %q, closed %v; want 401 and the connection closed", a.status, a.closed)
		}
	}
	// Answered on the headers: well before the read timeout a body read
	// would have waited for.
	if elapsed >= lim.ReadTimeout {
		t.Fatalf("%d posts answered in %s, not before the %s read timeout: the bodies were waited for", posts, elapsed, lim.ReadTimeout)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 64<<20 {
		t.Fatalf("heap grew %d MiB over %d stalled posts", grew>>20, posts)
	}
	for _, c := range conns {
		c.Close()
	}
	// No run was recorded.
	if runs, err := f.admin.ListResponderRuns(ctx, "pc", 10); err != nil || len(runs) != 0 {
		t.Fatalf("runs: %d, %v", len(runs), err)
	}
}

// A sender with a valid key whose body stalls is cut by the read timeout:
// the connection does not stay open for as long as it likes.
func TestFunctionSlowBodyWithKeyCutByReadTimeout(t *testing.T) {
	lim := tchttp.Limits{ReadTimeout: time.Second}
	f := newFixtureWith(t, fixtureOptions{limits: &lim})
	ctx := t.Context()
	if _, err := f.admin.CreateResponder(ctx, &tripcap.Responder{Name: "pc"}); err != nil {
		t.Fatal(err)
	}
	key, err := f.admin.CreateResponderKey(ctx, "pc", "")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	st, _, closed := rawPost(t, hostOf(t, f.url), "/api/functions/pc", 1<<20, tchttp.FunctionKeyHeader+": "+key.Secret+"\r\n", 10*time.Second)
	if took := time.Since(start); !closed || took > 5*time.Second || strings.HasPrefix(st, "2") {
		t.Fatalf("stalled body with a key: %q, closed %v after %s; want the connection cut by the 1s read timeout", st, closed, took)
	}
}

// An enrollment without a valid join token is refused on its headers too.
func TestEnrollWithoutJoinTokenRefusedUnread(t *testing.T) {
	lim := tchttp.Limits{ReadTimeout: 5 * time.Second}
	f := newFixtureWith(t, fixtureOptions{limits: &lim})
	for _, hdr := range []string{"", "Authorization: Bearer tc_join_wrong\r\n"} {
		start := time.Now()
		st, _, closed := rawPost(t, hostOf(t, f.url), "/api/v1/agent/enroll", 1<<20, hdr+tripcap.AgentProtocolHeader+": "+strconv.Itoa(tripcap.AgentProtocolVersion)+"\r\n", 4*time.Second)
		if !strings.HasPrefix(st, "401") || !closed || time.Since(start) > 2*time.Second {
			t.Fatalf("enroll %q: %q, closed %v after %s", hdr, st, closed, time.Since(start))
		}
	}
}

func counter(t *testing.T, f *fixture, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := f.server.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				if !hasLabel(m, k, v) {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func hasLabel(m *dto.Metric, k, v string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == k && l.GetValue() == v {
			return true
		}
	}
	return false
}

// Finding: 2,000 bad tokens in a row met no 429, no delay, no log line.
// Now, after AuthFailures failures, the address is answered 429 with
// Retry-After before its credential is even looked at (a valid one on a
// new connection too), logged once per window without the token, and
// counted in /metrics. A connection keeps serving the credentials that
// authenticated on it before (an agent's).
func TestBadTokensRateLimited(t *testing.T) {
	var logs logtest.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	lim := tchttp.Limits{AuthFailures: 30, AuthFailureWindow: time.Minute}
	f := newFixtureWith(t, fixtureOptions{limits: &lim, log: log})
	// The agent is established: its credential authenticated on its
	// connection (which it shares with the admin's client) before the
	// guesses; only such a credential is exempt.
	if _, err := f.agent.Heartbeat(t.Context(), tripcap.Heartbeat{}); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	t.Cleanup(client.CloseIdleConnections)
	codes := map[int]int{}
	const bad = 2000
	secret := "tc_guess_0123456789abcdef"
	for i := range bad {
		req, _ := http.NewRequest("GET", f.url+"/api/v1/hosts", nil)
		req.Header.Set("Authorization", "Bearer "+secret+strconv.Itoa(i))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes[resp.StatusCode]++
		if resp.StatusCode == 429 {
			ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
			if err != nil || ra < 1 || ra > 60 {
				t.Fatalf("429 with Retry-After %q", resp.Header.Get("Retry-After"))
			}
		}
	}
	if codes[401] != 30 || codes[429] != bad-30 {
		t.Fatalf("answers %v, want 30 × 401 then 429", codes)
	}
	// A valid credential on a new connection from the limited address is
	// refused unchecked…
	req, _ := http.NewRequest("GET", f.url+"/api/v1/hosts", nil)
	req.Header.Set("Authorization", "Bearer "+f.token)
	resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 {
		t.Fatalf("admin on a new connection: %s, want 429", resp.Status)
	}
	// …while the agent's and admin's established connection is served.
	if _, err := f.agent.Heartbeat(t.Context(), tripcap.Heartbeat{}); err != nil {
		t.Fatalf("an authenticated agent's connection: %v", err)
	}
	if got := counter(t, f, "tripcap_auth_failures_total", map[string]string{"reason": "bearer"}); got != 30 {
		t.Errorf("tripcap_auth_failures_total{reason=bearer} = %v, want 30", got)
	}
	if got := counter(t, f, "tripcap_auth_rate_limited_total", nil); got != bad-30+1 {
		t.Errorf("tripcap_auth_rate_limited_total = %v, want %d", got, bad-30+1)
	}
	out := logs.String()
	if n := strings.Count(out, "address rate-limited"); n != 1 || !strings.Contains(out, "address=127.0.0.1") || !strings.Contains(out, "component=http") {
		t.Errorf("%d rate-limit log lines, want one naming the address with component=http:\n%s", n, out)
	}
	if strings.Contains(out, secret) || strings.Contains(out, f.token) {
		t.Errorf("a token in the log:\n%s", out)
	}
}

// Connections that have not authenticated count against their address, up
// to the cap; one over it is closed at once. A connection counts no more
// once a request on it authenticated, so thousands of agents behind one
// address (the fleet bench's loopback) are not held to the cap.
func TestUnauthenticatedConnectionsCapped(t *testing.T) {
	lim := tchttp.Limits{UnauthenticatedPerAddress: 4}
	f := newFixtureWith(t, fixtureOptions{limits: &lim})
	addr := hostOf(t, f.url)
	// Idle connections that never authenticate fill the cap.
	idle := make([]net.Conn, 0, 4)
	for range 4 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	// The server accepts in order: a fifth is closed at once.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a connection over the cap was not closed: %v", err)
		}
	}
	if got := counter(t, f, "tripcap_http_unauthenticated_refused_total", map[string]string{"kind": "connection"}); got < 1 {
		t.Fatalf("refused connections counted %v", got)
	}
	// One of the four authenticates: it counts no more, so a new one fits.
	fmt.Fprintf(idle[0], "GET /api/v1/hosts HTTP/1.1\r\nHost: tripcap\r\nAuthorization: Bearer %s\r\n\r\n", f.token)
	resp, err := http.ReadResponse(bufio.NewReader(idle[0]), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("authenticating on a counted connection: %v %v", resp, err)
	}
	resp.Body.Close()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: tripcap\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("a connection after one authenticated: %v %v", resp, err)
	}
	c.Close()
	// 200 clients from this one address, each on a connection of its own,
	// authenticated: all served, the cap of 4 notwithstanding.
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	clients := make([]*tchttp.Client, 200)
	for i := range clients {
		clients[i], _ = tchttp.NewClient(f.url, f.token)
	}
	for i := range 200 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			// A refused connection is retried, as agents do.
			var err error
			for range 50 {
				if _, err = clients[i].ListHosts(ctx); err == nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("an authenticated client from the capped address: %v", err)
		}
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// Timeouts do not cut honest long work: a long poll waits past the write
// timeout, a slow but steady upload outlasts the read timeout, and a slow
// reader's download outlasts the write timeout.
func TestTimeoutsSpareTransfers(t *testing.T) {
	if testing.Short() {
		t.Skip("waits seconds")
	}
	lim := tchttp.Limits{ReadTimeout: time.Second, WriteTimeout: time.Second}
	f := newFixtureWith(t, fixtureOptions{limits: &lim})
	ctx := t.Context()
	a, err := f.agent.Assignments(ctx, -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := f.agent.Assignments(ctx, a.Revision, 2500*time.Millisecond); err != nil || time.Since(start) < 2*time.Second {
		t.Fatalf("a 2.5 s long poll under a 1 s write timeout: %v after %s", err, time.Since(start))
	}

	c, err := f.admin.CreateCapture(ctx, tchttp.CreateCaptureBody{Name: "x", Parameters: tripcap.PacketCaptureParameters{Target: "web1"}})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB
	sum := sha256.Sum256(data)
	start = time.Now()
	up := &slowReader{data: data, chunk: len(data) / 10, every: 300 * time.Millisecond}
	if _, err := f.agent.Upload(ctx, c.ID, "x.cap", hex.EncodeToString(sum[:]), up, int64(len(data))); err != nil {
		t.Fatalf("a 3 s upload under a 1 s read timeout: %v after %s", err, time.Since(start))
	}
	if time.Since(start) < 2*time.Second {
		t.Fatalf("the upload took %s: not slow enough to test anything", time.Since(start))
	}

	files, err := f.admin.ListFiles(ctx, tchttp.FileQuery{Capture: "x"})
	if err != nil || len(files) != 1 {
		t.Fatalf("files: %v %v", files, err)
	}
	// Read at about 3 MB/s, the answer takes longer than the write timeout
	// to leave (more than socket buffers hold).
	conn, err := net.Dial("tcp", hostOf(t, f.url))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/v1/files/%s/content HTTP/1.1\r\nHost: tripcap\r\nAuthorization: Bearer %s\r\n\r\n", files[0].ID, f.token)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("download: %v %v", resp, err)
	}
	start = time.Now()
	var got bytes.Buffer
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("download cut after %d bytes, %s: %v", got.Len(), time.Since(start), err)
			}
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("downloaded %d bytes, want %d", got.Len(), len(data))
	}
	if time.Since(start) < 1500*time.Millisecond {
		t.Fatalf("the download took %s: not slow enough to test anything", time.Since(start))
	}
}

// slowReader yields data a chunk every interval.
type slowReader struct {
	data  []byte
	chunk int
	every time.Duration
}

func (s *slowReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	time.Sleep(s.every)
	n := copy(p[:min(len(p), s.chunk)], s.data)
	s.data = s.data[n:]
	return n, nil
}

// clientFrom is an HTTP client whose connections leave from the loopback
// address src (127.0.0.0/8: each is an address of its own to the limits),
// on one connection at a time.
func clientFrom(t *testing.T, src string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, MaxConnsPerHost: 1}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// send makes a request and returns its status, Retry-After and body.
func send(t *testing.T, c *http.Client, method, url, ctype, token, body string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(b)
}

func loginBody(user, password string) string {
	return fmt.Sprintf(`{"user":%q,"password":%q}`, user, password)
}

func tokenForm(id, secret string) string {
	return "grant_type=client_credentials&client_id=" + id + "&client_secret=" + secret
}

// wantLimited asserts answers: failures × 401, then 429 with a Retry-After
// of 1..60 s.
func wantLimited(t *testing.T, what string, failures int, answers [][2]string) {
	t.Helper()
	for i, a := range answers {
		want := "401"
		if i >= failures {
			want = "429"
		}
		if a[0] != want {
			t.Fatalf("%s %d: %s, want %s (answers %v)", what, i+1, a[0], want, answers)
		}
		if want == "429" {
			if ra, err := strconv.Atoi(a[1]); err != nil || ra < 1 || ra > 60 {
				t.Fatalf("%s %d: 429 with Retry-After %q", what, i+1, a[1])
			}
		}
	}
}

// Finding (review of issue 12): /api/v1/login and /oauth2/token had no
// limit: an anonymous caller could guess passwords and client secrets as
// fast as argon2id ran. Now a wrong password or client secret counts as an
// authentication failure of its address (tripcap_auth_failures_total
// {reason="login"|"oauth2"}, logged), and beyond AuthFailures the address
// is answered 429 with Retry-After, the right password too, even on a
// connection that authenticated a bearer token first. Another address is
// not held to it.
func TestLoginAndTokenFailuresRateLimited(t *testing.T) {
	var logs logtest.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	lim := tchttp.Limits{AuthFailures: 5, AuthFailureWindow: time.Minute, NameFailures: 100}
	f := newFixtureWith(t, fixtureOptions{limits: &lim, log: log})
	ctx := t.Context()
	if _, err := f.admin.CreateUser(ctx, "alice", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	sp, err := f.admin.CreateServicePrincipal(ctx, "ci-bot")
	if err != nil {
		t.Fatal(err)
	}
	const jsonType, formType = "application/json", "application/x-www-form-urlencoded"

	// Logins from 127.0.0.2, on a connection a bearer token made trusted.
	c := clientFrom(t, "127.0.0.2")
	if st, _, _ := send(t, c, "GET", f.url+"/api/v1/hosts", "", f.token, ""); st != 200 {
		t.Fatalf("hosts: %d", st)
	}
	var answers [][2]string
	for i := range 20 {
		st, ra, _ := send(t, c, "POST", f.url+"/api/v1/login", jsonType, "", loginBody("alice", "wrong password "+strconv.Itoa(i)))
		answers = append(answers, [2]string{strconv.Itoa(st), ra})
	}
	wantLimited(t, "wrong login", 5, answers)
	if st, _, _ := send(t, c, "POST", f.url+"/api/v1/login", jsonType, "", loginBody("alice", "correct horse battery")); st != 429 {
		t.Fatalf("the right password from the limited address: %d, want 429", st)
	}
	if st, _, _ := send(t, clientFrom(t, "127.0.0.3"), "POST", f.url+"/api/v1/login", jsonType, "", loginBody("alice", "correct horse battery")); st != 201 {
		t.Fatalf("the right password from another address: %d, want 201", st)
	}

	// Token requests from 127.0.0.4.
	c = clientFrom(t, "127.0.0.4")
	answers = nil
	for i := range 20 {
		st, ra, body := send(t, c, "POST", f.url+"/oauth2/token", formType, "", tokenForm(sp.ClientID, "tc_sp_wrong"+strconv.Itoa(i)))
		answers = append(answers, [2]string{strconv.Itoa(st), ra})
		if st == 429 && !strings.Contains(body, `"error":"temporarily_unavailable"`) {
			t.Fatalf("429 of the token endpoint is not an OAuth2 error: %s", body)
		}
	}
	wantLimited(t, "wrong client secret", 5, answers)
	if st, _, _ := send(t, c, "POST", f.url+"/oauth2/token", formType, "", tokenForm(sp.ClientID, sp.ClientSecret)); st != 429 {
		t.Fatalf("the right secret from the limited address: %d, want 429", st)
	}
	if st, _, body := send(t, clientFrom(t, "127.0.0.5"), "POST", f.url+"/oauth2/token", formType, "", tokenForm(sp.ClientID, sp.ClientSecret)); st != 200 {
		t.Fatalf("the right secret from another address: %d %s", st, body)
	}

	for reason, want := range map[string]float64{"login": 5, "oauth2": 5} {
		if got := counter(t, f, "tripcap_auth_failures_total", map[string]string{"reason": reason}); got != want {
			t.Errorf("tripcap_auth_failures_total{reason=%s} = %v, want %v", reason, got, want)
		}
	}
	out := logs.String()
	for _, addr := range []string{"address=127.0.0.2", "address=127.0.0.4"} {
		if !strings.Contains(out, "address rate-limited") || !strings.Contains(out, addr) {
			t.Errorf("no rate-limit log line naming %s:\n%s", addr, out)
		}
	}
	if strings.Contains(out, "wrong password") || strings.Contains(out, "correct horse") || strings.Contains(out, "tc_sp_wrong") || strings.Contains(out, sp.ClientSecret) {
		t.Errorf("a secret in the log:\n%s", out)
	}
}

// A guesser spread over many addresses, each under AuthFailures, is slowed
// by the limit per claimed name: past NameFailures, that name's logins (or
// client id's token requests) are answered 429 from any address, before
// the password is hashed, a name that exists or not alike; other names
// are served.
func TestLoginFailuresLimitedPerName(t *testing.T) {
	lim := tchttp.Limits{AuthFailures: 5, AuthFailureWindow: time.Minute, NameFailures: 8}
	f := newFixtureWith(t, fixtureOptions{limits: &lim})
	ctx := t.Context()
	for _, u := range []string{"alice", "bob"} {
		if _, err := f.admin.CreateUser(ctx, u, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
	}
	sp, err := f.admin.CreateServicePrincipal(ctx, "ci-bot")
	if err != nil {
		t.Fatal(err)
	}
	const jsonType, formType = "application/json", "application/x-www-form-urlencoded"
	// 4 wrong guesses each from two addresses, for alice (named in any
	// case), for a name nobody has, and for the client id.
	for _, src := range []string{"127.0.0.2", "127.0.0.3"} {
		c := clientFrom(t, src)
		for i := range 4 {
			name := "alice"
			if i%2 == 1 {
				name = "Alice"
			}
			if st, _, _ := send(t, c, "POST", f.url+"/api/v1/login", jsonType, "", loginBody(name, "wrong password")); st != 401 {
				t.Fatalf("guess %d for alice from %s: %d, want 401", i+1, src, st)
			}
		}
	}
	for _, src := range []string{"127.0.0.4", "127.0.0.5"} {
		c := clientFrom(t, src)
		for i := range 4 {
			if st, _, _ := send(t, c, "POST", f.url+"/api/v1/login", jsonType, "", loginBody("nobody", "wrong password")); st != 401 {
				t.Fatalf("guess %d for nobody from %s: %d, want 401", i+1, src, st)
			}
		}
	}
	for _, src := range []string{"127.0.0.6", "127.0.0.7"} {
		c := clientFrom(t, src)
		for i := range 4 {
			if st, _, _ := send(t, c, "POST", f.url+"/oauth2/token", formType, "", tokenForm(sp.ClientID, "tc_sp_wrong")); st != 401 {
				t.Fatalf("guess %d for the client from %s: %d, want 401", i+1, src, st)
			}
		}
	}
	fresh := clientFrom(t, "127.0.0.8")
	for _, name := range []string{"alice", "nobody"} {
		st, ra, _ := send(t, fresh, "POST", f.url+"/api/v1/login", jsonType, "", loginBody(name, "correct horse battery"))
		if n, err := strconv.Atoi(ra); st != 429 || err != nil || n < 1 || n > 60 {
			t.Fatalf("login of %s from a fresh address after 8 failures: %d, Retry-After %q; want 429", name, st, ra)
		}
	}
	if st, _, _ := send(t, fresh, "POST", f.url+"/oauth2/token", formType, "", tokenForm(sp.ClientID, sp.ClientSecret)); st != 429 {
		t.Fatalf("token request for the client from a fresh address after 8 failures: %d, want 429", st)
	}
	if st, _, body := send(t, fresh, "POST", f.url+"/api/v1/login", jsonType, "", loginBody("bob", "correct horse battery")); st != 201 {
		t.Fatalf("bob's login: %d %s", st, body)
	}
}

// Finding (review of issue 12): a connection became trusted, skipping the
// failure limiter, once any request on it authenticated; a caller holding
// one valid credential could authenticate many connections, then guess
// other tokens on each (or on HTTP/2 streams sent at once). Now a
// connection exempts only the credential that made it trusted: guesses on
// 20 pre-authenticated connections meet the limit after AuthFailures, and
// the valid credential keeps being served on a connection that sent no
// wrong one.
func TestTrustedConnectionExemptsOnlyItsCredential(t *testing.T) {
	lim := tchttp.Limits{AuthFailures: 5, AuthFailureWindow: time.Minute}
	f := newFixtureWith(t, fixtureOptions{limits: &lim})
	addr := hostOf(t, f.url)
	get := func(c net.Conn, br *bufio.Reader, token string) int {
		t.Helper()
		fmt.Fprintf(c, "GET /api/v1/hosts HTTP/1.1\r\nHost: tripcap\r\nAuthorization: Bearer %s\r\n\r\n", token)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	type conn struct {
		c  net.Conn
		br *bufio.Reader
	}
	conns := make([]conn, 20)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns[i] = conn{c, bufio.NewReader(c)}
		if st := get(c, conns[i].br, f.token); st != 200 {
			t.Fatalf("authenticating connection %d: %d", i, st)
		}
	}
	codes := map[int]int{}
	for i, c := range conns {
		codes[get(c.c, c.br, "tc_guess_0123456789abcdef"+strconv.Itoa(i))]++
	}
	if codes[401] != 5 || codes[429] != 15 {
		t.Fatalf("guesses on 20 authenticated connections: %v, want 5 × 401 then 429", codes)
	}
	// The last connection's guess was refused unchecked: it still serves
	// its own credential, the address limited notwithstanding…
	if st := get(conns[19].c, conns[19].br, f.token); st != 200 {
		t.Fatalf("the trusted credential on its connection: %d, want 200", st)
	}
	// …and one whose guess was checked (and failed) does not.
	if st := get(conns[0].c, conns[0].br, f.token); st != 429 {
		t.Fatalf("the trusted credential on a connection that failed: %d, want 429", st)
	}
}
