package http

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/tlscert"
)

// Client calls a tripcap server's native API, as an admin or as an agent.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
	// serverProtocol is the agent protocol version of the server's last
	// answer to an agent call, shared by the copies WithToken makes.
	serverProtocol *atomic.Int64
}

// ClientOption configures a Client.
type ClientOption func(*http.Transport)

// WithTLSConfig verifies an https:// server with cfg (a CA file's pool, or a
// pinned CA: see tlscert) instead of the system roots. It applies to this
// client alone: direct uploads to S3 or Azure keep their own clients and
// the system roots.
func WithTLSConfig(cfg *tls.Config) ClientOption {
	return func(t *http.Transport) { t.TLSClientConfig = cfg }
}

// NewClient returns a client for the server at baseURL with a bearer token.
func NewClient(baseURL, token string, opts ...ClientOption) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, tripcap.Errorf(tripcap.EINVALID, "server: %q is not an http(s) URL", baseURL)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	// A ping on a connection silent for 30 s finds a server that vanished
	// without a FIN, so the long poll reconnects instead of hanging.
	t.HTTP2 = &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second}
	// With a TLS config of its own, the transport still offers h2 by ALPN
	// only when asked to (DefaultTransport's clone asks; kept explicit).
	t.ForceAttemptHTTP2 = true
	for _, o := range opts {
		o(t)
	}
	var rt http.RoundTripper = untrustedHint{t}
	if u.Scheme == "http" {
		rt = newProtocolPicker(t)
	}
	return &Client{base: u, token: token, http: &http.Client{Transport: rt}, serverProtocol: new(atomic.Int64)}, nil
}

// untrustedHint says what to do about a server whose certificate this
// client does not trust, instead of x509's bare "unknown authority".
type untrustedHint struct{ rt http.RoundTripper }

func (h untrustedHint) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := h.rt.RoundTrip(req)
	if err != nil && tlscert.IsVerificationError(err) && !errors.Is(err, tlscert.ErrFingerprintMismatch) {
		err = fmt.Errorf("the server's certificate is not trusted: give --ca-file with its CA (a tripcap server's is <data>/tls/ca.pem), or enroll with a join token that carries its fingerprint: %w", err)
	}
	return resp, err
}

// protocolPicker speaks HTTP/2 with prior knowledge (h2c) to an http://
// server, so that one connection carries an agent's long poll, heartbeats,
// reports and uploads at once: one socket per agent on the server instead
// of three. (Over https://, ALPN makes the same choice.) When the first
// exchange fails over h2c but succeeds over HTTP/1.1 (an HTTP/1-only proxy
// in between), the client speaks HTTP/1.1 from then on.
type protocolPicker struct {
	h2c, h1 http.RoundTripper
	mu      sync.Mutex
	picked  http.RoundTripper
}

func newProtocolPicker(base *http.Transport) *protocolPicker {
	h2c := base.Clone()
	h2c.Protocols = new(http.Protocols)
	h2c.Protocols.SetUnencryptedHTTP2(true)
	return &protocolPicker{h2c: h2c, h1: base}
}

func (p *protocolPicker) RoundTrip(req *http.Request) (*http.Response, error) {
	p.mu.Lock()
	picked := p.picked
	p.mu.Unlock()
	if picked != nil {
		return picked.RoundTrip(req)
	}
	resp, err := p.h2c.RoundTrip(req)
	if err == nil {
		p.pick(p.h2c)
		return resp, nil
	}
	if req.Context().Err() != nil || (req.Body != nil && req.Body != http.NoBody && req.GetBody == nil) {
		return nil, err
	}
	retry := req.Clone(req.Context())
	if req.GetBody != nil {
		if retry.Body, err = req.GetBody(); err != nil {
			return nil, err
		}
	}
	resp, h1err := p.h1.RoundTrip(retry)
	if h1err != nil {
		return nil, err // the server is unreachable, not picky: say what h2c met
	}
	p.pick(p.h1)
	return resp, nil
}

func (p *protocolPicker) pick(rt http.RoundTripper) {
	p.mu.Lock()
	if p.picked == nil {
		p.picked = rt
	}
	p.mu.Unlock()
}

// WithToken returns a copy of the client that uses another credential.
func (c *Client) WithToken(token string) *Client {
	cp := *c
	cp.token = token
	return &cp
}

// BaseURL is the server's URL.
func (c *Client) BaseURL() string { return c.base.String() }

// newRequest builds a request for path, which callers give escaped (each
// name segment through url.PathEscape), so a name may hold spaces or slashes.
func (c *Client) newRequest(ctx context.Context, method, path string, query url.Values, body io.Reader) (*http.Request, error) {
	u := *c.base
	raw := c.base.EscapedPath() + path
	decoded, err := url.PathUnescape(raw)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	u.Path, u.RawPath = decoded, raw
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("User-Agent", "tripcap/"+tripcap.Version)
	if isAgentPath(path) {
		req.Header.Set(tripcap.AgentProtocolHeader, strconv.Itoa(tripcap.AgentProtocolVersion))
	}
	return req, nil
}

// enrollPath is where an agent enrolls.
const enrollPath = "/api/v1/agent/enroll"

func isAgentPath(path string) bool { return strings.HasPrefix(path, "/api/v1/agent/") }

// ServerProtocol is the agent protocol version the server sent with its
// last answer to an agent call: 0 before any answer, from a server that
// sends none, or when something between (a proxy's error page) answered
// instead. An agent gates what it expects of the server on it.
func (c *Client) ServerProtocol() int { return int(c.serverProtocol.Load()) }

// noteServerProtocol records the version an answer to an agent call carries.
func (c *Client) noteServerProtocol(path string, resp *http.Response) {
	if !isAgentPath(path) {
		return
	}
	v, err := tripcap.ParseAgentProtocol(resp.Header.Get(tripcap.AgentProtocolHeader))
	if err != nil {
		v = 0 // not a server this agent understands: expect nothing of it
	}
	c.serverProtocol.Store(int64(v))
}

// do sends a JSON request and decodes a JSON answer into out (unless nil).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	return c.doWith(ctx, method, path, query, nil, in, out)
}

// doWith is do with extra request headers (If-Match, say).
func (c *Client) doWith(ctx context.Context, method, path string, query url.Values, header http.Header, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := c.newRequest(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if replayable(method, path) {
		// Go's transport replays a request marked idempotent when the server
		// closed the reused connection just as it was sent (a connection
		// dialed ahead and left idle past the server's header timeout, say),
		// instead of failing a heartbeat or a report.
		req.Header.Set("Idempotency-Key", tripcap.NewID())
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	c.noteServerProtocol(path, resp)
	if resp.StatusCode >= 300 {
		err := decodeError(resp)
		if t := resp.Header.Get(tripcap.EnrollmentTicketHeader); t != "" && path == enrollPath && resp.StatusCode == http.StatusConflict {
			// On hold for an admin's approval: the retries present the ticket.
			return &tripcap.EnrollmentHeldError{Ticket: t, Err: err}
		}
		return err
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
	}
	return nil
}

// replayable says whether a POST may be sent twice with no harm: every
// agent-protocol call is (the server keeps the newest report, the first
// metric point of a second, one upload target per file), except enrollment,
// which spends a single-use join token.
func replayable(method, path string) bool {
	return method == "POST" && isAgentPath(path) && path != enrollPath
}

// decodeError turns an error answer back into a *tripcap.Error.
func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb ErrorBody
	if json.Unmarshal(b, &eb) == nil && eb.Error.Code != "" {
		return &tripcap.Error{Code: eb.Error.Code, Message: eb.Error.Message}
	}
	code := tripcap.EINTERNAL
	for _, c := range []string{tripcap.EINVALID, tripcap.EUNAUTHORIZED, tripcap.EFORBIDDEN, tripcap.ENOTFOUND, tripcap.ECONFLICT, tripcap.EPRECONDITION} {
		if StatusOf(c) == resp.StatusCode {
			code = c
			break
		}
	}
	return tripcap.Errorf(code, "server answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
}

// listAll follows nextLink until the end.
func listAll[T any](ctx context.Context, c *Client, path string, query url.Values) ([]T, error) {
	var all []T
	for {
		var page List[T]
		if err := c.do(ctx, "GET", path, query, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Value...)
		if page.NextLink == "" {
			return all, nil
		}
		u, err := url.Parse(page.NextLink)
		if err != nil {
			return nil, fmt.Errorf("nextLink %q: %w", page.NextLink, err)
		}
		query = u.Query()
	}
}

func watcherQuery(watcher string) url.Values {
	q := url.Values{}
	if watcher != "" {
		q.Set("watcher", watcher)
	}
	return q
}

// ListHosts returns every host.
func (c *Client) ListHosts(ctx context.Context) ([]*tripcap.Host, error) {
	return listAll[*tripcap.Host](ctx, c, "/api/v1/hosts", url.Values{})
}

// GetHost returns a host by name, id or VM resource id.
func (c *Client) GetHost(ctx context.Context, ref string) (*tripcap.Host, error) {
	var h tripcap.Host
	return &h, c.do(ctx, "GET", "/api/v1/hosts/"+url.PathEscape(ref), nil, nil, &h)
}

// DeleteHost forgets a host.
func (c *Client) DeleteHost(ctx context.Context, ref string) error {
	return c.do(ctx, "DELETE", "/api/v1/hosts/"+url.PathEscape(ref), nil, nil, nil)
}

// CreateJoinToken creates a join token.
func (c *Client) CreateJoinToken(ctx context.Context, ttl time.Duration, uses int) (*tripcap.JoinToken, error) {
	return c.CreateHostJoinToken(ctx, "", ttl, uses)
}

// CreateHostJoinToken creates a join token bound to host ("" for none).
func (c *Client) CreateHostJoinToken(ctx context.Context, host string, ttl time.Duration, uses int) (*tripcap.JoinToken, error) {
	var t tripcap.JoinToken
	body := JoinTokenBody{Uses: uses, Host: host}
	if ttl > 0 {
		body.TTL = ttl.String()
	}
	return &t, c.do(ctx, "POST", "/api/v1/join-tokens", nil, body, &t)
}

// DeletePendingEnrollment refuses a pending enrollment.
func (c *Client) DeletePendingEnrollment(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", "/api/v1/enrollments/"+url.PathEscape(id), nil, nil, nil)
}

// ApproveEnrollment approves a pending enrollment under host's name (id
// picks one of several; "" the only one).
func (c *Client) ApproveEnrollment(ctx context.Context, host, id string) (*tripcap.PendingEnrollment, error) {
	var p tripcap.PendingEnrollment
	return &p, c.do(ctx, "POST", "/api/v1/hosts/"+url.PathEscape(host)+"/approve-enrollment", nil, ApproveEnrollmentBody{ID: id}, &p)
}

// ListPendingEnrollments lists enrollments awaiting approval.
func (c *Client) ListPendingEnrollments(ctx context.Context) ([]*tripcap.PendingEnrollment, error) {
	return listAll[*tripcap.PendingEnrollment](ctx, c, "/api/v1/enrollments", url.Values{})
}

// ListJoinTokens lists usable join tokens.
func (c *Client) ListJoinTokens(ctx context.Context) ([]*tripcap.JoinToken, error) {
	return listAll[*tripcap.JoinToken](ctx, c, "/api/v1/join-tokens", url.Values{})
}

// DeleteJoinToken revokes a join token.
func (c *Client) DeleteJoinToken(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", "/api/v1/join-tokens/"+url.PathEscape(id), nil, nil, nil)
}

// ListWatchers lists network watchers.
func (c *Client) ListWatchers(ctx context.Context) ([]*tripcap.NetworkWatcher, error) {
	return listAll[*tripcap.NetworkWatcher](ctx, c, "/api/v1/watchers", url.Values{})
}

// SetWatcherLimit changes a watcher's parallel limit.
func (c *Client) SetWatcherLimit(ctx context.Context, watcher string, limit int) (*tripcap.NetworkWatcher, error) {
	var w tripcap.NetworkWatcher
	return &w, c.do(ctx, "PATCH", "/api/v1/watchers/"+url.PathEscape(watcher), nil, WatcherBody{MaxCaptures: limit}, &w)
}

// ListCaptures lists captures, optionally of one watcher or host.
func (c *Client) ListCaptures(ctx context.Context, watcher, host string) ([]*tripcap.PacketCapture, error) {
	q := watcherQuery(watcher)
	if host != "" {
		q.Set("host", host)
	}
	return listAll[*tripcap.PacketCapture](ctx, c, "/api/v1/captures", q)
}

// CreateCapture creates a capture.
func (c *Client) CreateCapture(ctx context.Context, body CreateCaptureBody) (*tripcap.PacketCapture, error) {
	var pc tripcap.PacketCapture
	return &pc, c.do(ctx, "POST", "/api/v1/captures", nil, body, &pc)
}

// GetCapture returns a capture by id or name.
func (c *Client) GetCapture(ctx context.Context, watcher, ref string) (*tripcap.PacketCapture, error) {
	var pc tripcap.PacketCapture
	return &pc, c.do(ctx, "GET", "/api/v1/captures/"+url.PathEscape(ref), watcherQuery(watcher), nil, &pc)
}

// CaptureStatus returns a capture's queryStatus view.
func (c *Client) CaptureStatus(ctx context.Context, watcher, ref string) (*CaptureStatus, error) {
	var st CaptureStatus
	return &st, c.do(ctx, "GET", "/api/v1/captures/"+url.PathEscape(ref)+"/status", watcherQuery(watcher), nil, &st)
}

// StopCapture stops a capture.
func (c *Client) StopCapture(ctx context.Context, watcher, ref string) (*tripcap.PacketCapture, error) {
	var pc tripcap.PacketCapture
	return &pc, c.do(ctx, "POST", "/api/v1/captures/"+url.PathEscape(ref)+"/stop", watcherQuery(watcher), nil, &pc)
}

// DeleteCapture deletes a capture, and its stored files when deleteFile is set.
func (c *Client) DeleteCapture(ctx context.Context, watcher, ref string, deleteFile bool) error {
	q := watcherQuery(watcher)
	if deleteFile {
		q.Set("deleteFile", "true")
	}
	return c.do(ctx, "DELETE", "/api/v1/captures/"+url.PathEscape(ref), q, nil, nil)
}

// Enroll trades a join token for an agent credential.
func (c *Client) Enroll(ctx context.Context, req tripcap.EnrollRequest) (*tripcap.EnrollResponse, error) {
	var resp tripcap.EnrollResponse
	joinToken, ticket := req.JoinToken, req.Ticket
	req.JoinToken, req.Ticket = "", ""
	var h http.Header
	if ticket != "" {
		h = http.Header{tripcap.EnrollmentTicketHeader: {ticket}}
	}
	return &resp, c.WithToken(joinToken).doWith(ctx, "POST", enrollPath, nil, h, req, &resp)
}

// Heartbeat tells the server the agent is alive; the answer says how often to.
func (c *Client) Heartbeat(ctx context.Context, hb tripcap.Heartbeat) (*tripcap.HeartbeatResponse, error) {
	var resp tripcap.HeartbeatResponse
	return &resp, c.do(ctx, "POST", "/api/v1/agent/heartbeat", nil, hb, &resp)
}

// Assignments long-polls for the agent's desired state.
func (c *Client) Assignments(ctx context.Context, revision int64, wait time.Duration) (*tripcap.Assignments, error) {
	q := url.Values{"wait": {wait.String()}}
	if revision >= 0 {
		q.Set("revision", strconv.FormatInt(revision, 10))
	}
	var a tripcap.Assignments
	return &a, c.do(ctx, "GET", "/api/v1/agent/assignments", q, nil, &a)
}

// Report sends session reports.
func (c *Client) Report(ctx context.Context, reports []tripcap.SessionReport) (*tripcap.ReportResult, error) {
	var res tripcap.ReportResult
	return &res, c.do(ctx, "POST", "/api/v1/agent/reports", nil, reports, &res)
}

// ListStorageAccounts lists storage accounts.
func (c *Client) ListStorageAccounts(ctx context.Context) ([]*tripcap.StorageAccount, error) {
	return listAll[*tripcap.StorageAccount](ctx, c, "/api/v1/storage", url.Values{})
}

// AddStorageAccount adds a storage account.
func (c *Client) AddStorageAccount(ctx context.Context, name, u string) (*tripcap.StorageAccount, error) {
	var a tripcap.StorageAccount
	return &a, c.do(ctx, "POST", "/api/v1/storage", nil, StorageAccountBody{Name: name, URL: u}, &a)
}

// DeleteStorageAccount forgets an added storage account.
func (c *Client) DeleteStorageAccount(ctx context.Context, name string) error {
	return c.do(ctx, "DELETE", "/api/v1/storage/"+url.PathEscape(name), nil, nil, nil)
}
