package arm

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Operation is a long-running operation. Its progress is derived from the
// resource it acts on each time a client polls (the provider's
// OperationFunc), so nothing is kept: any replica answers, a restart loses
// nothing. Its id, in the polling URLs, encodes the operation itself.
type Operation struct {
	// Kind names the provider's OperationFunc (e.g. "packetCaptures/delete").
	Kind string `json:"k"`
	// ResourceID is the resource acted on; its subscription must be the
	// polling URL's.
	ResourceID string `json:"r"`
	// Location is the resource's location, in the polling URL as in Azure's.
	Location string `json:"l,omitempty"`
	// Ref is the provider's own handle of the resource (tripcap's id of a
	// capture, which a deleted one keeps while its name is reused).
	Ref string `json:"i,omitempty"`
	// Started is when the operation began (seconds).
	Started int64 `json:"t"`
	// Nonce makes two operations on one resource distinct.
	Nonce string `json:"n"`
}

// Operation statuses (ARM's terminal ones are Succeeded, Failed and Canceled).
const (
	StatusInProgress = "InProgress"
	StatusSucceeded  = "Succeeded"
	StatusFailed     = "Failed"
	StatusCanceled   = "Canceled"
)

// Progress is where an operation stands.
type Progress struct {
	Status string
	// Error says why, when Failed.
	Error *Error
	// Result is the operation's result (operationResults' body) when it
	// succeeded; nil answers 204.
	Result any
}

// OperationFunc reports an operation's progress. It runs with the poller's
// request (its principal), so looking the resource up authorizes it.
type OperationFunc func(r *Request, op *Operation) (*Progress, error)

// Operation registers the function reporting operations of kind.
func (p *Provider) Operation(kind string, f OperationFunc) { p.ops[kind] = f }

// registerOperations adds the provider's operation-status resources:
// …/locations/{location}/operations/{id} (what Azure-AsyncOperation names:
// {"status":…}) and …/operationResults/{id} (what Location names: 202 while
// running, then the result).
func (p *Provider) registerOperations() {
	base := "/subscriptions/{subscriptionId}/providers/" + p.Namespace + "/locations/{location}/"
	p.Handle(http.MethodGet, base+"operations/{operationId}", p.Namespace+"_GetOperationStatus", p.operationStatus)
	p.Handle(http.MethodGet, base+"operationResults/{operationId}", p.Namespace+"_GetOperationResult", p.operationResult)
}

// NewOperation starts an operation of kind on the resource id.
func (r *Request) NewOperation(kind, resourceID, location string) *Operation {
	var n [6]byte
	_, _ = rand.Read(n[:])
	return &Operation{Kind: kind, ResourceID: resourceID, Location: location, Started: r.api.now().Unix(), Nonce: hex.EncodeToString(n[:])}
}

func (op *Operation) id() string {
	b, _ := json.Marshal(op)
	return base64.RawURLEncoding.EncodeToString(b)
}

// paths are the operation's status and result paths.
func (op *Operation) paths(p *Provider, sub string) (status, result string) {
	loc := op.Location
	if loc == "" {
		loc = "global"
	}
	base := "/subscriptions/" + sub + "/providers/" + p.Namespace + "/locations/" + loc + "/"
	return base + "operations/" + op.id(), base + "operationResults/" + op.id()
}

// Accepted answers the start of a long-running operation: status (201 for
// a PUT, 202 otherwise) with body (nil for none) and the headers the SDK's
// pollers follow: Azure-AsyncOperation (the status resource), Location
// (the result resource), both absolute, and Retry-After.
func (r *Request) Accepted(w http.ResponseWriter, status int, op *Operation, body any) error {
	sub := r.Param("subscriptionId")
	statusPath, resultPath := op.paths(r.route.provider, sub)
	q := url.Values{"api-version": {r.APIVersion}}
	h := w.Header()
	h.Set("Azure-AsyncOperation", r.AbsURL(statusPath, q))
	h.Set("Location", r.AbsURL(resultPath, q))
	h.Set("Retry-After", r.api.retryAfter())
	return WriteJSON(w, status, body)
}

func (a *API) retryAfter() string {
	return strconv.Itoa(max(1, int(a.retry.Round(time.Second)/time.Second)))
}

// lookupOperation decodes the path's operation and asks its provider where
// it stands.
func (p *Provider) lookupOperation(r *Request) (*Operation, *Progress, error) {
	notFound := Errorf(http.StatusNotFound, "OperationNotFound", "The operation '%.64s' could not be found.", r.Param("operationId"))
	raw, err := base64.RawURLEncoding.DecodeString(r.Param("operationId"))
	if err != nil {
		return nil, nil, notFound
	}
	var op Operation
	if err := json.Unmarshal(raw, &op); err != nil {
		return nil, nil, notFound
	}
	f := p.ops[op.Kind]
	id, err := ParseResourceID("", op.ResourceID)
	loc := op.Location
	if loc == "" {
		loc = "global"
	}
	if f == nil || err != nil || !strings.EqualFold(id.Subscription, r.Param("subscriptionId")) || !strings.EqualFold(loc, r.Param("location")) {
		return nil, nil, notFound
	}
	pr, err := f(r, &op)
	if err != nil {
		return nil, nil, err
	}
	return &op, pr, nil
}

// OperationStatus is the body of …/operations/{id}.
type OperationStatus struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	Status    string       `json:"status"`
	StartTime string       `json:"startTime,omitempty"`
	EndTime   string       `json:"endTime,omitempty"`
	Error     *ErrorDetail `json:"error,omitempty"`
}

func (p *Provider) operationStatus(w http.ResponseWriter, r *Request) error {
	op, pr, err := p.lookupOperation(r)
	if err != nil {
		return err
	}
	st := OperationStatus{ID: r.URL.Path, Name: r.Param("operationId"), Status: pr.Status,
		StartTime: time.Unix(op.Started, 0).UTC().Format(time.RFC3339)}
	switch pr.Status {
	case StatusInProgress:
		w.Header().Set("Retry-After", p.api.retryAfter())
	case StatusFailed:
		if pr.Error != nil {
			st.Error = pr.Error.Detail()
		}
		fallthrough
	default:
		st.EndTime = p.api.now().UTC().Format(time.RFC3339)
	}
	return WriteJSON(w, http.StatusOK, st)
}

func (p *Provider) operationResult(w http.ResponseWriter, r *Request) error {
	_, pr, err := p.lookupOperation(r)
	if err != nil {
		return err
	}
	switch pr.Status {
	case StatusInProgress:
		w.Header().Set("Location", r.AbsURL(r.URL.Path, r.URL.Query()))
		w.Header().Set("Retry-After", p.api.retryAfter())
		return WriteJSON(w, http.StatusAccepted, nil)
	case StatusSucceeded:
		if pr.Result == nil {
			return WriteJSON(w, http.StatusNoContent, nil)
		}
		return WriteJSON(w, http.StatusOK, pr.Result)
	}
	if pr.Error != nil {
		return pr.Error
	}
	return Errorf(http.StatusConflict, "Operation"+pr.Status, "The operation ended %s.", strings.ToLower(pr.Status))
}
