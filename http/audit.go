package http

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/audit"
)

// What the audit log records of the API (see package audit):
//   - every call whose method is not GET or HEAD, with its outcome;
//   - every file download (packets are the most sensitive data tripcap holds);
//   - every refused credential or missing grant (401, 403), on any route;
//   - every call of /api/functions/{responder} (function keys).
//
// Not recorded, because they are not a person's changes but the agents'
// steady traffic (thousands a second on a fleet, which the log would drown
// in): heartbeats, session reports, metric ingest and upload targets. An
// agent's upload is recorded once per file, when it is stored (a stored
// file is answered 204 by its upload target and never sent again); its
// failed attempts, which the agent retries, are not, but a refused
// credential is. Request bodies, query strings and headers are never
// recorded: they are where secrets travel (join tokens, function keys'
// ?code=). A response's id, name and host are read from creations'
// answers, to name what was made (and an enrollment's agent credential is
// looked up to name the agent); nothing else of an answer is kept.

// WithAudit records the API's audited calls with rec.
func WithAudit(rec *audit.Recorder) Option { return func(s *Server) { s.audit = rec } }

// notAudited are agent calls of the steady traffic (see above).
var notAudited = map[string]bool{
	"agentHeartbeat": true, "agentReports": true, "agentUploadTarget": true, "agentPostMetrics": true, "agentMetricStream": true,
}

// auditedReads are GETs recorded as mutations are: file downloads.
var auditedReads = map[string]bool{"downloadCaptureFile": true, "downloadFile": true}

// auditedOnSuccess are recorded when they succeed (once per file) or are denied.
var auditedOnSuccess = map[string]bool{"agentUploadFile": true, "agentCompleteUpload": true}

// functionAction is the audit action of POST /api/functions/{responder}.
const functionAction = "invokeFunction"

// auditSlot carries, from authenticate out to the audit wrapper, the
// principal the request was authenticated as.
type auditSlot struct {
	p *tripcap.Principal
	// claimed is who an unauthenticated caller says it is (a login's user
	// name, a token request's client id), for the record of a refusal.
	claimed string
}

type auditSlotKey struct{}

// noteAuditPrincipal tells the audit wrapper (if any) who the caller is.
func noteAuditPrincipal(ctx context.Context, p *tripcap.Principal) {
	if slot, ok := ctx.Value(auditSlotKey{}).(*auditSlot); ok {
		slot.p = p
	}
}

// noteAuditClaim tells the audit wrapper who an unauthenticated caller
// claims to be.
func noteAuditClaim(ctx context.Context, who string) {
	if slot, ok := ctx.Value(auditSlotKey{}).(*auditSlot); ok {
		slot.claimed = who[:min(len(who), 80)] // the recorder makes it valid text
	}
}

// auditing wraps the handler of an operation (action, on path) with the
// audit record of its calls; nil recorder: h itself.
func (s *Server) auditing(action, method, path string, h http.Handler) http.Handler {
	if s.audit == nil {
		return h
	}
	mutating := method != http.MethodGet && method != http.MethodHead
	always := (mutating && !notAudited[action]) || auditedReads[action] || action == functionAction
	download := auditedReads[action]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		slot := &auditSlot{}
		aw := &auditWriter{ResponseWriter: w, sniff: always && !download}
		h.ServeHTTP(aw, r.WithContext(context.WithValue(r.Context(), auditSlotKey{}, slot)))
		code := aw.status()
		res := tripcap.AuditResultOf(code)
		switch {
		case res == tripcap.AuditDenied:
		case !always:
			return
		case auditedOnSuccess[action] && res != tripcap.AuditSuccess:
			return
		}
		e := s.auditEvent(action, path, r, slot.p, code, aw)
		if slot.p == nil && slot.claimed != "" {
			e.PrincipalName = slot.claimed
			e.Detail = strings.TrimPrefix(e.Detail+"; claimed, not authenticated", "; ")
		}
		// The client going away does not take its record with it.
		_ = s.audit.Record(context.WithoutCancel(r.Context()), e)
	})
}

// auditEvent is the record of one call.
func (s *Server) auditEvent(action, path string, r *http.Request, p *tripcap.Principal, code int, aw *auditWriter) tripcap.AuditEvent {
	e := tripcap.AuditEvent{Action: action, Resource: auditResource(path, r), RemoteAddr: r.RemoteAddr, Status: code, Result: tripcap.AuditResultOf(code)}
	if p != nil {
		e.PrincipalID, e.PrincipalKind, e.PrincipalName, e.HostID, e.CredentialID = p.ID, p.Kind, p.Name, p.HostID, p.CredentialID
	}
	ans := aw.answer()
	if e.HostID == "" {
		e.HostID = cmp.Or(ans.HostID, ans.Host.ID)
	}
	var details []string
	switch {
	case e.Result == tripcap.AuditDenied && action == functionAction:
		details = append(details, "missing or wrong function key")
	case e.Result == tripcap.AuditDenied && p == nil:
		details = append(details, describeCredential(r))
	case e.Result != tripcap.AuditSuccess && ans.Error.Code != "":
		// The code, not the message: a message may quote the input.
		details = append(details, ans.Error.Code)
	}
	switch action {
	case functionAction:
		e.PrincipalKind = tripcap.PrincipalFunctionKey
		if e.Result == tripcap.AuditSuccess {
			// The key was accepted: it is the responder's.
			e.PrincipalName = r.PathValue("responder")
			for _, run := range ans.Runs {
				details = append(details, "run "+run.ID+" "+run.Decision)
			}
		}
	case "agentEnroll":
		if ans.Host.Name != "" {
			e.Resource = "hosts/" + ans.Host.Name
		}
		// Who enrolled is the agent the new credential makes (looked up by
		// it, then forgotten): its later calls are recorded as it.
		if ans.Credential != "" {
			if p, err := s.svc.Authenticate(context.WithoutCancel(r.Context()), ans.Credential); err == nil {
				e.PrincipalID, e.PrincipalKind, e.PrincipalName, e.HostID = p.ID, p.Kind, p.Name, p.HostID
			}
		}
	}
	if code == http.StatusCreated && action != "agentEnroll" && action != "login" {
		e.Resource = auditCreated(path, r, e.Resource, cmp.Or(ans.Name, ans.ID))
	}
	if w := r.URL.Query().Get("watcher"); w != "" {
		details = append(details, "watcher "+w)
	}
	if n := r.URL.Query().Get("name"); n != "" && auditedReads[action] {
		details = append(details, "file "+n)
	}
	e.Detail = strings.Join(details, "; ")
	return e
}

// auditResource is a route's path with its parameters filled in, without
// the /api/v1/ (and agent/) prefix and what follows the last parameter:
// "captures/cap1" for /api/v1/captures/{capture}/stop.
func auditResource(path string, r *http.Request) string {
	if strings.HasPrefix(path, "/api/functions/") {
		return "responders/" + r.PathValue("responder")
	}
	segs := auditSegments(path, r)
	last := -1
	for i, seg := range strings.Split(auditPath(path), "/") {
		if isParam(seg) {
			last = i
		}
	}
	if last >= 0 {
		segs = segs[:last+1]
	}
	return strings.Join(segs, "/")
}

// auditVerbs are path segments after a parameter that name an action, not
// a collection.
var auditVerbs = map[string]bool{"stop": true, "rotate": true, "complete": true, "target": true, "file": true, "content": true, "status": true}

// auditCreated names what a creation (201) made: the collection it was
// posted to, and the new object's name or id from the answer
// ("responders/r1/keys/k1" for POST /api/v1/responders/{responder}/keys).
func auditCreated(path string, r *http.Request, resource, ref string) string {
	segs := auditSegments(path, r)
	tail := strings.Split(auditPath(path), "/")
	if ref == "" || isParam(tail[len(tail)-1]) || auditVerbs[tail[len(tail)-1]] {
		return resource
	}
	return strings.Join(segs, "/") + "/" + ref
}

func auditPath(path string) string {
	return strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(path, "/api/v1/"), "agent/"), "/")
}

// auditSegments are path's segments, its parameters filled in from r.
func auditSegments(path string, r *http.Request) []string {
	segs := strings.Split(auditPath(path), "/")
	for i, seg := range segs {
		if isParam(seg) {
			segs[i] = r.PathValue(strings.TrimSuffix(strings.Trim(seg, "{}"), "..."))
		}
	}
	return segs
}

func isParam(seg string) bool { return strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") }

var secretPrefix = regexp.MustCompile(`^tc_[a-z]+_`)

// describeCredential says what kind of credential a refused request
// carried, never any of its secret part.
func describeCredential(r *http.Request) string {
	tok := BearerToken(r)
	switch {
	case tok == "" && r.Header.Get("Authorization") == "":
		return "no credential"
	case tok == "":
		return "credential refused: not a bearer credential"
	case secretPrefix.MatchString(tok):
		return "credential refused: " + secretPrefix.FindString(tok) + "…"
	case strings.HasPrefix(tok, "eyJ"):
		return "credential refused: a JWT"
	}
	return "credential refused: unrecognized"
}

// maxSniff bounds what of an answer is kept to read its id and name.
const maxSniff = 64 << 10

// auditWriter notes the status and, when asked, the start of a JSON answer.
type auditWriter struct {
	http.ResponseWriter
	code  int
	sniff bool
	buf   bytes.Buffer
}

func (w *auditWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *auditWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	// An error's body is read whatever the route: its code is recorded.
	if (w.sniff || w.code >= 400) && w.buf.Len() < maxSniff {
		w.buf.Write(p[:min(len(p), maxSniff-w.buf.Len())])
	}
	return w.ResponseWriter.Write(p)
}

func (w *auditWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
func (w *auditWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *auditWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// auditAnswer is what the log reads of an answer.
type auditAnswer struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	HostID string `json:"hostId"`
	Host   struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"host"`
	// Credential is an enrollment's new agent credential: it is looked up,
	// never recorded.
	Credential string      `json:"credential"`
	Runs       []InvokeRun `json:"runs"`
	Error      struct {
		Code string `json:"code"`
	} `json:"error"`
}

func (w *auditWriter) answer() auditAnswer {
	var a auditAnswer
	if w.buf.Len() > 0 {
		// A truncated or non-JSON answer leaves the fields empty.
		_ = json.Unmarshal(w.buf.Bytes(), &a)
	}
	return a
}
