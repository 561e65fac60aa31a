package http

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
)

// CreateCaptureBody is the body of POST /api/v1/captures.
type CreateCaptureBody struct {
	Name       string                          `json:"name"`
	Watcher    string                          `json:"watcher,omitempty"`
	Cause      string                          `json:"cause,omitempty"`
	Parameters tripcap.PacketCaptureParameters `json:"parameters"`
}

// CaptureStatus is the body of GET /api/v1/captures/{capture}/status (Azure's queryStatus).
type CaptureStatus struct {
	Name               string                      `json:"name"`
	ID                 string                      `json:"id"`
	CaptureStartTime   *time.Time                  `json:"captureStartTime,omitempty"`
	PacketCaptureState tripcap.PacketCaptureStatus `json:"packetCaptureStatus"`
	StopReason         string                      `json:"stopReason,omitempty"`
	PacketCaptureError []string                    `json:"packetCaptureError"`
	ErrorMessage       string                      `json:"errorMessage,omitempty"`
	Statistics         tripcap.CaptureStats        `json:"statistics"`
}

// StatusOfCapture extracts the queryStatus view of a capture.
func StatusOfCapture(c *tripcap.PacketCapture) CaptureStatus {
	errs := c.Errors
	if errs == nil {
		errs = []string{}
	}
	return CaptureStatus{Name: c.Name, ID: c.ID, CaptureStartTime: c.CaptureStartTime, PacketCaptureState: c.Status,
		StopReason: c.StopReason, PacketCaptureError: errs, ErrorMessage: c.ErrorMessage, Statistics: c.Stats}
}

// JoinTokenBody is the body of POST /api/v1/join-tokens.
type JoinTokenBody struct {
	TTL  string `json:"ttl,omitempty"`
	Uses int    `json:"uses,omitempty"`
	// Host binds the token to one host name (see tripcap.JoinToken.HostName).
	Host string `json:"host,omitempty"`
}

// ApproveEnrollmentBody is the body of POST /api/v1/hosts/{host}/approve-enrollment.
type ApproveEnrollmentBody struct {
	// ID picks one of several pending enrollments of the host.
	ID string `json:"id,omitempty"`
}

// WatcherBody is the body of PATCH /api/v1/watchers/{watcher}.
type WatcherBody struct {
	MaxCaptures int `json:"maxCaptures"`
}

// StorageAccountBody is the body of POST /api/v1/storage.
type StorageAccountBody struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

var watcherParam = param{"watcher", "string", "the network watcher (needed when a capture name is used in several)"}

func (s *Server) routeTable() []route {
	pageQuery := []param{{"cursor", "string", "from a previous page's nextLink"}, {"limit", "integer", "page size, 1..1000 (default 100)"}}
	return []route{
		{Method: "GET", Path: "/api/v1/openapi.json", ID: "openapi", Summary: "This API's OpenAPI document.", Response: map[string]any{}, Handler: s.handleOpenAPI},

		{Method: "GET", Path: "/api/v1/hosts", ID: "listHosts", Summary: "List hosts.", Perm: tripcap.PermRead, Query: pageQuery, Response: List[*tripcap.Host]{}, Handler: s.handleListHosts},
		{Method: "GET", Path: "/api/v1/hosts/{host}", ID: "getHost", Summary: "Get a host by name, id or VM resource id.", Perm: tripcap.PermRead, Response: &tripcap.Host{}, Handler: s.handleGetHost},
		{Method: "DELETE", Path: "/api/v1/hosts/{host}", ID: "deleteHost", Summary: "Forget a host and revoke its agent's credentials.", Perm: tripcap.PermHostsWrite, Status: 204, Handler: s.handleDeleteHost},

		{Method: "POST", Path: "/api/v1/hosts/{host}/approve-enrollment", ID: "approveEnrollment", Summary: "Approve an agent's pending enrollment under this enrolled host's name (revokes the host's agent when it enrolls).", Perm: tripcap.PermHostsWrite, Request: ApproveEnrollmentBody{}, Response: &tripcap.PendingEnrollment{}, Handler: s.handleApproveEnrollment},
		{Method: "DELETE", Path: "/api/v1/enrollments/{id}", ID: "deletePendingEnrollment", Summary: "Refuse a pending enrollment: forget it (the agent asks anew if it tries again).", Perm: tripcap.PermHostsWrite, Status: 204, Handler: s.handleDeletePendingEnrollment},
		{Method: "GET", Path: "/api/v1/enrollments", ID: "listPendingEnrollments", Summary: "List enrollments under enrolled hosts' names awaiting approval.", Perm: tripcap.PermHostsWrite, Response: List[*tripcap.PendingEnrollment]{}, Handler: s.handleListPendingEnrollments},

		{Method: "POST", Path: "/api/v1/join-tokens", ID: "createJoinToken", Summary: "Create a join token for enrolling agents.", Perm: tripcap.PermHostsWrite, Request: JoinTokenBody{}, Response: &tripcap.JoinToken{}, Status: 201, Handler: s.handleCreateJoinToken},
		{Method: "GET", Path: "/api/v1/join-tokens", ID: "listJoinTokens", Summary: "List usable join tokens.", Perm: tripcap.PermHostsWrite, Response: List[*tripcap.JoinToken]{}, Handler: s.handleListJoinTokens},
		{Method: "DELETE", Path: "/api/v1/join-tokens/{id}", ID: "deleteJoinToken", Summary: "Revoke a join token.", Perm: tripcap.PermHostsWrite, Status: 204, Handler: s.handleDeleteJoinToken},

		{Method: "GET", Path: "/api/v1/watchers", ID: "listWatchers", Summary: "List network watchers.", Perm: tripcap.PermRead, Response: List[*tripcap.NetworkWatcher]{}, Handler: s.handleListWatchers},
		{Method: "PATCH", Path: "/api/v1/watchers/{watcher}", ID: "updateWatcher", Summary: "Change a watcher's parallel-capture limit.", Perm: tripcap.PermHostsWrite, Request: WatcherBody{}, Response: &tripcap.NetworkWatcher{}, Handler: s.handleUpdateWatcher},

		{Method: "GET", Path: "/api/v1/captures", ID: "listCaptures", Summary: "List captures.", Perm: tripcap.PermRead, Query: append([]param{watcherParam, {"host", "string", "only this host's captures"}}, pageQuery...), Response: List[*tripcap.PacketCapture]{}, Handler: s.handleListCaptures},
		{Method: "POST", Path: "/api/v1/captures", ID: "createCapture", Summary: "Create a capture; the host's agent starts it at once.", Perm: tripcap.PermCaptureWrite, Request: CreateCaptureBody{}, Response: &tripcap.PacketCapture{}, Status: 201, Handler: s.handleCreateCapture},
		{Method: "GET", Path: "/api/v1/captures/{capture}", ID: "getCapture", Summary: "Get a capture by id or name (ETag, If-None-Match).", Perm: tripcap.PermRead, Query: []param{watcherParam}, Response: &tripcap.PacketCapture{}, Handler: s.handleGetCapture},
		{Method: "DELETE", Path: "/api/v1/captures/{capture}", ID: "deleteCapture", Summary: "Delete a capture (stops it; keeps its files unless deleteFile=true; If-Match).", Perm: tripcap.PermCaptureWrite, Query: []param{watcherParam, {"deleteFile", "boolean", "also delete the stored files"}}, Status: 204, Handler: s.handleDeleteCapture},
		{Method: "POST", Path: "/api/v1/captures/{capture}/stop", ID: "stopCapture", Summary: "Stop a running capture (If-Match).", Perm: tripcap.PermCaptureWrite, Query: []param{watcherParam}, Response: &tripcap.PacketCapture{}, Handler: s.handleStopCapture},
		{Method: "GET", Path: "/api/v1/captures/{capture}/status", ID: "getCaptureStatus", Summary: "A capture's status and live statistics.", Perm: tripcap.PermRead, Query: []param{watcherParam}, Response: CaptureStatus{}, Handler: s.handleCaptureStatus},
		{Method: "GET", Path: "/api/v1/captures/{capture}/file", ID: "downloadCaptureFile", Summary: "Download a capture file (Range supported).", Perm: tripcap.PermFileRead, Query: []param{watcherParam, {"name", "string", "which file (default the first)"}}, Response: "binary", Transfer: transferDownload, Handler: s.handleDownload},

		{Method: "GET", Path: "/api/v1/files", ID: "listFiles", Summary: "List stored capture files, those of deleted and replaced captures too.", Perm: tripcap.PermRead, Query: append([]param{{"host", "string", "a host name or id"}, {"since", "string", "RFC 3339: files created at or after"}, {"until", "string", "RFC 3339: files created before"}, {"alert", "string", "the alert id a responder captured for"}, {"capture", "string", "capture name"}, {"deleted", "boolean", "include files whose stored copy was deleted"}}, pageQuery...), Response: List[*tripcap.StoredFile]{}, Handler: s.handleListFiles},
		{Method: "GET", Path: "/api/v1/files/{id}", ID: "getFile", Summary: "A stored file's record.", Perm: tripcap.PermRead, Response: &tripcap.StoredFile{}, Handler: s.handleGetFile},
		{Method: "GET", Path: "/api/v1/files/{id}/content", ID: "downloadFile", Summary: "Download a stored file (Range supported; X-Tripcap-Sha256).", Perm: tripcap.PermFileRead, Response: "binary", Transfer: transferDownload, Handler: s.handleFileContent},
		{Method: "DELETE", Path: "/api/v1/files/{id}", ID: "deleteFile", Summary: "Delete a stored file's copy in storage; its record stays, marked deleted.", Perm: tripcap.PermFileDelete, Response: &tripcap.StoredFile{}, Handler: s.handleDeleteFile},

		{Method: "POST", Path: "/api/v1/agent/enroll", ID: "agentEnroll", Summary: "Trade a join token (as the bearer credential) for an agent credential.", Auth: "join", Request: tripcap.EnrollRequest{}, Response: &tripcap.EnrollResponse{}, Status: 201, Handler: s.handleEnroll},
		{Method: "POST", Path: "/api/v1/agent/heartbeat", ID: "agentHeartbeat", Summary: "An agent's heartbeat, with its inventory when changed; answers the expected interval.", Auth: "agent", Request: tripcap.Heartbeat{}, Response: &tripcap.HeartbeatResponse{}, Handler: s.handleHeartbeat},
		{Method: "GET", Path: "/api/v1/agent/assignments", ID: "agentAssignments", Summary: "Long poll for the agent's desired state.", Auth: "agent", Query: []param{{"revision", "integer", "the revision the agent has"}, {"wait", "string", "how long to wait for a change, e.g. 30s"}}, Response: &tripcap.Assignments{}, Transfer: transferPoll, Handler: s.handleAssignments},
		{Method: "POST", Path: "/api/v1/agent/reports", ID: "agentReports", Summary: "Report session status and statistics.", Auth: "agent", Request: []tripcap.SessionReport{}, Response: &tripcap.ReportResult{}, Handler: s.handleReports},
		{Method: "GET", Path: "/api/v1/storage", ID: "listStorageAccounts", Summary: "List storage accounts.", Perm: tripcap.PermRead, Response: List[*tripcap.StorageAccount]{}, Handler: s.handleListStorage},
		{Method: "POST", Path: "/api/v1/storage", ID: "addStorageAccount", Summary: "Add a storage account (file://, s3://, azblob:// URL; credentials from the server's environment).", Perm: tripcap.PermStorageWrite, Request: StorageAccountBody{}, Response: &tripcap.StorageAccount{}, Status: 201, Handler: s.handleAddStorage},
		{Method: "DELETE", Path: "/api/v1/storage/{name}", ID: "deleteStorageAccount", Summary: "Forget an added storage account (its files stay).", Perm: tripcap.PermStorageWrite, Status: 204, Handler: s.handleDeleteStorage},

		{Method: "POST", Path: "/api/v1/agent/captures/{id}/files/{name}/target", ID: "agentUploadTarget", Summary: "Where to send a file: presigned storage URLs, or this server (204: already stored).", Auth: "agent", Request: tripcap.UploadTargetRequest{}, Response: &tripcap.UploadTarget{}, Handler: s.handleUploadTarget},
		{Method: "POST", Path: "/api/v1/agent/captures/{id}/files/{name}/complete", ID: "agentCompleteUpload", Summary: "Commit a direct upload; the stored SHA-256 must match.", Auth: "agent", Request: CompleteUploadBody{}, Response: &tripcap.CaptureFile{}, Handler: s.handleCompleteUpload},
		{Method: "PUT", Path: "/api/v1/agent/captures/{id}/files/{name}", ID: "agentUploadFile", Summary: "Upload a capture file (X-Tripcap-Sha256 is checked).", Auth: "agent", Request: "binary", Response: &tripcap.CaptureFile{}, Transfer: transferUpload, Handler: s.handleUpload},
	}
}

func (s *Server) handleListHosts(w http.ResponseWriter, r *http.Request) error {
	cursor, limit, err := pageParams(r)
	if err != nil {
		return err
	}
	hosts, next, err := s.svc.FindHosts(r.Context(), tripcap.HostFilter{Cursor: cursor, Limit: limit})
	if err != nil {
		return err
	}
	writeJSON(w, 200, List[*tripcap.Host]{Value: nonNil(hosts), NextLink: nextLink(r, next)})
	return nil
}

func (s *Server) handleGetHost(w http.ResponseWriter, r *http.Request) error {
	h, err := s.svc.FindHost(r.Context(), r.PathValue("host"))
	if err != nil {
		return err
	}
	writeJSON(w, 200, h)
	return nil
}

func (s *Server) handleDeleteHost(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.DeleteHost(r.Context(), r.PathValue("host")); err != nil {
		return err
	}
	w.WriteHeader(204)
	return nil
}

func (s *Server) handleCreateJoinToken(w http.ResponseWriter, r *http.Request) error {
	var body JoinTokenBody
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &body); err != nil {
			return err
		}
	}
	var ttl time.Duration
	if body.TTL != "" {
		var err error
		if ttl, err = time.ParseDuration(body.TTL); err != nil {
			return tripcap.Errorf(tripcap.EINVALID, "ttl: %q is not a duration like 1h", body.TTL)
		}
	}
	t, err := s.svc.CreateHostJoinToken(r.Context(), body.Host, ttl, body.Uses)
	if err != nil {
		return err
	}
	writeJSON(w, 201, t)
	return nil
}

func (s *Server) handleApproveEnrollment(w http.ResponseWriter, r *http.Request) error {
	var body ApproveEnrollmentBody
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &body); err != nil {
			return err
		}
	}
	p, err := s.svc.ApproveEnrollment(r.Context(), r.PathValue("host"), body.ID)
	if err != nil {
		return err
	}
	writeJSON(w, 200, p)
	return nil
}

func (s *Server) handleListPendingEnrollments(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.svc.FindPendingEnrollments(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, 200, List[*tripcap.PendingEnrollment]{Value: nonNil(ps)})
	return nil
}

func (s *Server) handleDeletePendingEnrollment(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.DeletePendingEnrollment(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(204)
	return nil
}

func (s *Server) handleListJoinTokens(w http.ResponseWriter, r *http.Request) error {
	ts, err := s.svc.FindJoinTokens(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, 200, List[*tripcap.JoinToken]{Value: nonNil(ts)})
	return nil
}

func (s *Server) handleDeleteJoinToken(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.DeleteJoinToken(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(204)
	return nil
}

func (s *Server) handleListWatchers(w http.ResponseWriter, r *http.Request) error {
	ws, err := s.svc.FindWatchers(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, 200, List[*tripcap.NetworkWatcher]{Value: nonNil(ws)})
	return nil
}

func (s *Server) handleUpdateWatcher(w http.ResponseWriter, r *http.Request) error {
	var body WatcherBody
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	wt, err := s.svc.SetWatcherLimit(r.Context(), r.PathValue("watcher"), body.MaxCaptures)
	if err != nil {
		return err
	}
	writeJSON(w, 200, wt)
	return nil
}

func (s *Server) handleListCaptures(w http.ResponseWriter, r *http.Request) error {
	cursor, limit, err := pageParams(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	caps, next, err := s.svc.FindCaptures(r.Context(), q.Get("watcher"), q.Get("host"), cursor, limit)
	if err != nil {
		return err
	}
	writeJSON(w, 200, List[*tripcap.PacketCapture]{Value: nonNil(caps), NextLink: nextLink(r, next)})
	return nil
}

func (s *Server) handleCreateCapture(w http.ResponseWriter, r *http.Request) error {
	var body CreateCaptureBody
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	c, err := s.svc.CreateCapture(r.Context(), controlplane.CreateCaptureRequest{Name: body.Name, Watcher: body.Watcher, Parameters: body.Parameters, Cause: body.Cause})
	if err != nil {
		return err
	}
	w.Header().Set("ETag", c.ETag())
	w.Header().Set("Location", "/api/v1/captures/"+c.ID)
	writeJSON(w, 201, c)
	return nil
}

func (s *Server) handleGetCapture(w http.ResponseWriter, r *http.Request) error {
	c, err := s.svc.FindCapture(r.Context(), r.URL.Query().Get("watcher"), r.PathValue("capture"))
	if err != nil {
		return err
	}
	if notModified(w, r, c.ETag()) {
		return nil
	}
	writeJSON(w, 200, c)
	return nil
}

// notModified sets the ETag and answers 304 when If-None-Match has it.
func notModified(w http.ResponseWriter, r *http.Request, etag string) bool {
	w.Header().Set("ETag", etag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && (inm == etag || inm == "*") {
		w.WriteHeader(http.StatusNotModified)
		return true
	}
	return false
}

func (s *Server) handleDeleteCapture(w http.ResponseWriter, r *http.Request) error {
	deleteFile, err := boolParam(r, "deleteFile")
	if err != nil {
		return err
	}
	if err := s.svc.DeleteCapture(r.Context(), r.URL.Query().Get("watcher"), r.PathValue("capture"), r.Header.Get("If-Match"), deleteFile); err != nil {
		return err
	}
	w.WriteHeader(204)
	return nil
}

func (s *Server) handleStopCapture(w http.ResponseWriter, r *http.Request) error {
	c, err := s.svc.StopCapture(r.Context(), r.URL.Query().Get("watcher"), r.PathValue("capture"), r.Header.Get("If-Match"))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", c.ETag())
	writeJSON(w, 200, c)
	return nil
}

func (s *Server) handleCaptureStatus(w http.ResponseWriter, r *http.Request) error {
	c, err := s.svc.QueryStatus(r.Context(), r.URL.Query().Get("watcher"), r.PathValue("capture"))
	if err != nil {
		return err
	}
	writeJSON(w, 200, StatusOfCapture(c))
	return nil
}

// agentProtocol answers every agent call with the server's agent protocol
// version, and hands the agent's to the control plane in the context, which
// gates on it (tripcap.AgentProtocolVersion).
func (s *Server) agentProtocol(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(tripcap.AgentProtocolHeader, strconv.Itoa(tripcap.AgentProtocolVersion))
		v, err := tripcap.ParseAgentProtocol(r.Header.Get(tripcap.AgentProtocolHeader))
		if err != nil {
			s.Error(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(tripcap.NewContextWithAgentProtocol(r.Context(), v)))
	})
}

func (s *Server) handleEnroll(w http.ResponseWriter, r *http.Request) error {
	// The join token is checked before the body is read: a caller without
	// one costs no more than its headers.
	token := BearerToken(r)
	if err := s.admit(w, r, credJoinToken, token, func() error { return s.svc.CheckJoinToken(r.Context(), token) }); err != nil {
		return err
	}
	var req tripcap.EnrollRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	req.JoinToken = token
	req.Ticket = r.Header.Get(tripcap.EnrollmentTicketHeader)
	req.Remote = r.RemoteAddr
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		req.Remote = host
	}
	resp, err := s.svc.Enroll(r.Context(), req)
	if held := (*tripcap.EnrollmentHeldError)(nil); errors.As(err, &held) {
		w.Header().Set(tripcap.EnrollmentTicketHeader, held.Ticket)
	}
	if err != nil {
		return err
	}
	writeJSON(w, 201, resp)
	return nil
}

func (s *Server) handleHeartbeat(w http.ResponseWriter, r *http.Request) error {
	var hb tripcap.Heartbeat
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &hb); err != nil {
			return err
		}
	}
	resp, err := s.svc.Heartbeat(r.Context(), hb)
	if err != nil {
		return err
	}
	writeJSON(w, 200, resp)
	return nil
}

func (s *Server) handleAssignments(w http.ResponseWriter, r *http.Request) error {
	var known int64
	if v := r.URL.Query().Get("revision"); v != "" {
		if _, err := fmt.Sscan(v, &known); err != nil {
			return tripcap.Errorf(tripcap.EINVALID, "revision: %q is not an integer", v)
		}
	} else {
		known = -1
	}
	wait, err := durationParam(r, "wait", 0)
	if err != nil {
		return err
	}
	a, err := s.svc.Assignments(r.Context(), known, wait)
	if err != nil {
		return err
	}
	writeJSON(w, 200, a)
	return nil
}

func (s *Server) handleReports(w http.ResponseWriter, r *http.Request) error {
	var reports []tripcap.SessionReport
	if err := decodeJSON(r, &reports); err != nil {
		return err
	}
	res, err := s.svc.Report(r.Context(), reports)
	if err != nil {
		return err
	}
	writeJSON(w, 200, res)
	return nil
}

func (s *Server) handleListStorage(w http.ResponseWriter, r *http.Request) error {
	as, err := s.svc.FindStorageAccounts(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, 200, List[*tripcap.StorageAccount]{Value: nonNil(as)})
	return nil
}

func (s *Server) handleAddStorage(w http.ResponseWriter, r *http.Request) error {
	var body StorageAccountBody
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	a, err := s.svc.AddStorageAccount(r.Context(), body.Name, body.URL)
	if err != nil {
		return err
	}
	writeJSON(w, 201, a)
	return nil
}

func (s *Server) handleDeleteStorage(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.DeleteStorageAccount(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(204)
	return nil
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}
