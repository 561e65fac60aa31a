package http

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/responder"
	"github.com/tripcap/tripcap/responder/payload"
)

// FunctionKeyHeader carries a responder's function key, as Azure Functions'
// does; ?code= is the other place.
const FunctionKeyHeader = "x-functions-key"

// WithResponders serves the responders' API and the inbound trigger
// POST /api/functions/{responder}.
func WithResponders(r *responder.Responders) Option {
	return func(s *Server) { s.responders = r }
}

// ResponderKeyBody is the body of POST /api/v1/responders/{responder}/keys.
type ResponderKeyBody struct {
	Name string `json:"name,omitempty"`
}

// InvokeResult is the 202 answer of POST /api/functions/{responder}: the
// runs recorded, one per alert in the payload; their outcome is in
// GET /api/v1/responders/{responder}/runs.
type InvokeResult struct {
	Runs []InvokeRun `json:"runs"`
}

// InvokeRun is a recorded run as the sender sees it.
type InvokeRun struct {
	ID       string `json:"id"`
	Decision string `json:"decision"`
	Reason   string `json:"reason,omitempty"`
}

// responderRoutes are the API of responder.Responders; NewServer adds
// them when WithResponders is given.
func (s *Server) responderRoutes() []route {
	return []route{
		{Method: "POST", Path: "/api/v1/responders", ID: "createResponder", Summary: "Create a responder: the alert-triggered capture function. Needs captures/write at * besides monitoring/write: a responder captures wherever its alerts point.", Perm: tripcap.PermMonitoringWrite, Request: &tripcap.Responder{}, Response: &tripcap.Responder{}, Status: 201, Handler: s.handleCreateResponder},
		{Method: "GET", Path: "/api/v1/responders", ID: "listResponders", Summary: "List responders.", Perm: tripcap.PermRead, Response: List[*tripcap.Responder]{}, Handler: s.handleListResponders},
		{Method: "GET", Path: "/api/v1/responders/{responder}", ID: "getResponder", Summary: "Get a responder by name or id (ETag, If-None-Match).", Perm: tripcap.PermRead, Response: &tripcap.Responder{}, Handler: s.handleGetResponder},
		{Method: "PUT", Path: "/api/v1/responders/{responder}", ID: "updateResponder", Summary: "Replace a responder's settings, checked as for create; its id, keys and runs stay (If-Match). Needs captures/write at * besides monitoring/write: a responder captures wherever its alerts point.", Perm: tripcap.PermMonitoringWrite, Request: &tripcap.Responder{}, Response: &tripcap.Responder{}, Handler: s.handleUpdateResponder},
		{Method: "DELETE", Path: "/api/v1/responders/{responder}", ID: "deleteResponder", Summary: "Delete a responder and its keys; its runs stay.", Perm: tripcap.PermMonitoringWrite, Status: 204, Handler: s.handleDeleteResponder},
		{Method: "GET", Path: "/api/v1/responders/{responder}/runs", ID: "listResponderRuns", Summary: "A responder's invocations, newest first: input, hosts, decisions, captures, errors.", Perm: tripcap.PermRead,
			Query: []param{{"limit", "integer", "at most this many (default 100, at most 1000)"}}, Response: List[*tripcap.ResponderRun]{}, Handler: s.handleListResponderRuns},
		{Method: "POST", Path: "/api/v1/responders/{responder}/keys", ID: "createResponderKey", Summary: "Create a function key; its secret is in this answer only. Needs captures/write at * besides monitoring/write: a responder captures wherever its alerts point.", Perm: tripcap.PermMonitoringWrite, Request: &ResponderKeyBody{}, Response: &tripcap.ResponderKey{}, Status: 201, Handler: s.handleCreateResponderKey},
		{Method: "GET", Path: "/api/v1/responders/{responder}/keys", ID: "listResponderKeys", Summary: "List a responder's function keys (without secrets).", Perm: tripcap.PermRead, Response: List[*tripcap.ResponderKey]{}, Handler: s.handleListResponderKeys},
		{Method: "POST", Path: "/api/v1/responders/{responder}/keys/{key}/rotate", ID: "rotateResponderKey", Summary: "Replace a key's secret; the old one stops working at once. Needs captures/write at * besides monitoring/write: a responder captures wherever its alerts point.", Perm: tripcap.PermMonitoringWrite, Response: &tripcap.ResponderKey{}, Status: 201, Handler: s.handleRotateResponderKey},
		{Method: "DELETE", Path: "/api/v1/responders/{responder}/keys/{key}", ID: "revokeResponderKey", Summary: "Revoke a function key.", Perm: tripcap.PermMonitoringWrite, Status: 204, Handler: s.handleRevokeResponderKey},
	}
}

// functionHandler is POST /api/functions/{responder}: no bearer token, the
// responder's function key instead (Azure Functions' auth level
// "function"). It answers 202 as soon as the runs are recorded, so senders
// do not retry while the capture is set up.
func (s *Server) functionHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.URL.Query().Get("code")
		if key == "" {
			key = r.Header.Get(FunctionKeyHeader)
		}
		name := r.PathValue("responder")
		// The key is checked before the body is read: a sender without one
		// costs its headers, not a megabyte of memory held while it dawdles.
		if err := s.admit(w, r, credFunctionKey, key, func() error { return s.responders.CheckKey(r.Context(), name, key) }); err != nil {
			s.Error(w, r, err)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, payload.MaxBodyBytes))
		var big *http.MaxBytesError
		if errors.As(err, &big) {
			writeJSON(w, http.StatusRequestEntityTooLarge, ErrorBody{Error: ErrorDetail{Code: tripcap.EINVALID,
				Message: "body: larger than " + strconv.Itoa(payload.MaxBodyBytes) + " bytes"}})
			return
		} else if err != nil {
			s.Error(w, r, tripcap.Errorf(tripcap.EINVALID, "body: %v", err))
			return
		}
		runs, err := s.responders.Invoke(r.Context(), name, key, body)
		if tripcap.ErrorCode(err) == tripcap.EUNAVAILABLE {
			// A 5xx makes Alertmanager and Azure retry later.
			w.Header().Set("Retry-After", "5")
			writeJSON(w, http.StatusServiceUnavailable, ErrorBody{Error: ErrorDetail{Code: tripcap.EUNAVAILABLE, Message: tripcap.ErrorMessage(err)}})
			return
		}
		if err != nil {
			s.Error(w, r, err)
			return
		}
		res := InvokeResult{Runs: []InvokeRun{}}
		for _, run := range runs {
			res.Runs = append(res.Runs, InvokeRun{ID: run.ID, Decision: run.Decision, Reason: run.Reason})
		}
		writeJSON(w, http.StatusAccepted, res)
	})
}

func (s *Server) handleCreateResponder(w http.ResponseWriter, r *http.Request) error {
	var in tripcap.Responder
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	created, err := s.responders.CreateResponder(r.Context(), &in)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", created.ETag())
	w.Header().Set("Location", "/api/v1/responders/"+created.ID)
	writeJSON(w, 201, created)
	return nil
}

func (s *Server) handleListResponders(w http.ResponseWriter, r *http.Request) error {
	rs, err := s.responders.FindResponders(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, 200, List[*tripcap.Responder]{Value: nonNil(rs)})
	return nil
}

func (s *Server) handleGetResponder(w http.ResponseWriter, r *http.Request) error {
	rs, err := s.responders.FindResponder(r.Context(), r.PathValue("responder"))
	if err != nil {
		return err
	}
	if notModified(w, r, rs.ETag()) {
		return nil
	}
	writeJSON(w, 200, rs)
	return nil
}

func (s *Server) handleUpdateResponder(w http.ResponseWriter, r *http.Request) error {
	var in tripcap.Responder
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	updated, err := s.responders.UpdateResponder(r.Context(), r.PathValue("responder"), &in, r.Header.Get("If-Match"))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", updated.ETag())
	writeJSON(w, 200, updated)
	return nil
}

func (s *Server) handleDeleteResponder(w http.ResponseWriter, r *http.Request) error {
	if err := s.responders.DeleteResponder(r.Context(), r.PathValue("responder")); err != nil {
		return err
	}
	w.WriteHeader(204)
	return nil
}

func (s *Server) handleListResponderRuns(w http.ResponseWriter, r *http.Request) error {
	limit := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return tripcap.Errorf(tripcap.EINVALID, "limit: %q is not a number from 1 to 1000", v)
		}
		limit = n
	}
	runs, err := s.responders.FindRuns(r.Context(), r.PathValue("responder"), limit)
	if err != nil {
		return err
	}
	writeJSON(w, 200, List[*tripcap.ResponderRun]{Value: nonNil(runs)})
	return nil
}

func (s *Server) handleCreateResponderKey(w http.ResponseWriter, r *http.Request) error {
	var in ResponderKeyBody
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	k, err := s.responders.CreateKey(r.Context(), r.PathValue("responder"), in.Name)
	if err != nil {
		return err
	}
	writeJSON(w, 201, k)
	return nil
}

func (s *Server) handleListResponderKeys(w http.ResponseWriter, r *http.Request) error {
	ks, err := s.responders.FindKeys(r.Context(), r.PathValue("responder"))
	if err != nil {
		return err
	}
	writeJSON(w, 200, List[*tripcap.ResponderKey]{Value: nonNil(ks)})
	return nil
}

func (s *Server) handleRotateResponderKey(w http.ResponseWriter, r *http.Request) error {
	k, err := s.responders.RotateKey(r.Context(), r.PathValue("responder"), r.PathValue("key"))
	if err != nil {
		return err
	}
	writeJSON(w, 201, k)
	return nil
}

func (s *Server) handleRevokeResponderKey(w http.ResponseWriter, r *http.Request) error {
	if err := s.responders.RevokeKey(r.Context(), r.PathValue("responder"), r.PathValue("key")); err != nil {
		return err
	}
	w.WriteHeader(204)
	return nil
}
