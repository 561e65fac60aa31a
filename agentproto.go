package tripcap

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// The agent protocol: an agent enrolls once with a join token, then keeps a
// long poll open for its assignments (the open poll is its heartbeat; a
// separate one carries inventory changes), reports session status every
// second while captures run, and uploads files, all over one HTTP/2
// connection. Desired state lives on the server; the agent reconciles
// toward it after any disconnect.

// AgentProtocolVersion is the version of the agent protocol this build
// speaks. Both sides send it on every exchange, in the AgentProtocolHeader
// of each agent request and of each answer to one, and each side gates what
// it does on the version its peer sent (peer >= N), so that any agent works
// with any server. A peer that sends no version is at version 0.
//
// A header rather than a field of the enroll or heartbeat body, because
// every call must carry it, and some have no JSON body to put it in (the
// long poll is a GET, an upload a PUT of the file's bytes); because the
// server reads it before it decodes anything, and answers it even with an
// error; and because replicas behind one address may run different
// releases during an upgrade, so the version must come with each answer,
// not once at enrollment. A peer that does not know the header ignores it.
//
// Bump it when one side starts to rely on something new from the other,
// and say here what the new version added. Never reuse a number.
//
//   - 0: no version sent (releases before versions). Enroll, heartbeat, the
//     long poll for assignments, session reports, metric batches, uploads
//     through the server or straight to storage with upload targets. A
//     server said in its heartbeat answer, with OpenPollIsHeartbeat, that it
//     counts an open long poll as a heartbeat.
//   - 1: the version is sent both ways. A server at 1 counts an agent's
//     open long poll as a heartbeat every interval (it pings a silent
//     connection and closes it when no answer comes, which ends the poll),
//     so an agent whose server is at 1 sends no heartbeat while its poll is
//     open and its inventory unchanged. It replaces OpenPollIsHeartbeat,
//     which a server sends only to agents at 0.
//   - 2: metrics in metricwire's binary frames. An agent whose server is at
//     2 ships each second's sample as one frame on a single long-lived
//     streaming request over HTTP/2 (POST /api/v1/agent/metrics/stream),
//     which the server reads as frames arrive and answers on the same
//     exchange: acknowledgements, each of every frame up to its second
//     (the server coalesces them, one every few seconds; unacknowledged
//     points are sent again after a reconnect) and, when it attaches the host (its
//     points arrive after a gap or for the first time on this server), a
//     request for the host's history, which the agent keeps and sends back
//     as frames. Where the stream cannot be held (HTTP/1.1, a buffering
//     proxy) the agent POSTs each second's frames to /api/v1/agent/metrics
//     and gets the same answers as frames. To a server below 2 the agent
//     sends JSON batches as before; a server at 2 takes both.
const AgentProtocolVersion = 2

// AgentProtocolHeader carries the sender's AgentProtocolVersion: the
// agent's on its requests, the server's on its answers.
const AgentProtocolHeader = "Tripcap-Agent-Protocol"

// ParseAgentProtocol reads an AgentProtocolHeader value: none is version 0.
func ParseAgentProtocol(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	// Digits only, and few: Atoi would take "+1" and " 1" is no version.
	n, err := strconv.Atoi(v)
	if err != nil || len(v) > 9 || strings.Trim(v, "0123456789") != "" {
		return 0, Errorf(EINVALID, "%s: %q is not a protocol version (a whole number from 0)", AgentProtocolHeader, v)
	}
	return n, nil
}

type agentProtocolKey struct{}

// NewContextWithAgentProtocol returns a context carrying the calling
// agent's protocol version.
func NewContextWithAgentProtocol(ctx context.Context, version int) context.Context {
	return context.WithValue(ctx, agentProtocolKey{}, version)
}

// AgentProtocolFromContext returns the calling agent's protocol version: 0
// when it sent none.
func AgentProtocolFromContext(ctx context.Context) int {
	v, _ := ctx.Value(agentProtocolKey{}).(int)
	return v
}

// EnrollRequest trades a join token for an agent credential.
type EnrollRequest struct {
	// JoinToken travels as the bearer credential, never in the body.
	JoinToken string `json:"-"`
	// Remote is the address the request came from (set by the server).
	Remote string `json:"-"`
	// Ticket is the enrollment ticket an earlier answer put this
	// enrollment on hold with (EnrollmentHeldError); it travels in the
	// EnrollmentTicketHeader, never in the body.
	Ticket    string            `json:"-"`
	Name      string            `json:"name"`
	Location  string            `json:"location,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Inventory Inventory         `json:"inventory"`
}

// EnrollmentTicketHeader carries an enrollment ticket: the server's 409
// answer that puts an enrollment under an enrolled host's name on hold
// gives one, and the agent sends it back with each retry, so that an
// admin's approval goes to that agent alone, not to whoever else holds the
// same join token and address. A header, as AgentProtocolHeader, so that
// neither side needs a new protocol version: a server that does not know
// it gives none, an agent that does not know it sends none (and is never
// approved: a join token bound to the host re-enrolls it).
const EnrollmentTicketHeader = "Tripcap-Enrollment-Ticket"

// SecretPrefixEnrollment starts an enrollment ticket.
const SecretPrefixEnrollment = "tc_enroll_"

// EnrollmentHeldError is the error of an enrollment put on hold for an
// admin's approval (ECONFLICT): Ticket is what the agent must present with
// its retries for the approval to apply to it.
type EnrollmentHeldError struct {
	Ticket string
	Err    error
}

func (e *EnrollmentHeldError) Error() string { return e.Err.Error() }
func (e *EnrollmentHeldError) Unwrap() error { return e.Err }

// EnrollResponse carries the agent's own credential, shown once.
type EnrollResponse struct {
	Host       *Host  `json:"host"`
	Credential string `json:"credential"`
	// HeartbeatSeconds is how often the server expects a heartbeat.
	HeartbeatSeconds float64 `json:"heartbeatSeconds"`
}

// Heartbeat is an agent's periodic sign of life; Inventory is sent when it changed.
type Heartbeat struct {
	Inventory *Inventory `json:"inventory,omitempty"`
}

// HeartbeatResponse tells the agent how often the server expects heartbeats,
// so one setting on the server governs the whole fleet.
type HeartbeatResponse struct {
	HeartbeatSeconds float64 `json:"heartbeatSeconds"`
	// OpenPollIsHeartbeat says the server counts an agent's open long poll
	// as a heartbeat every interval, so the agent need not send one while
	// its poll is open and its inventory unchanged.
	// It is sent only to agents at protocol version 0, which still read it;
	// newer agents go by the server's version instead (AgentProtocolVersion
	// 1). Drop it when no such agent is left.
	OpenPollIsHeartbeat bool `json:"openPollIsHeartbeat,omitempty"`
}

// Assignment is one capture the server wants the agent to run, stop or drop.
type Assignment struct {
	ID         string                  `json:"id"`
	Name       string                  `json:"name"`
	Desired    DesiredState            `json:"desired"`
	Status     PacketCaptureStatus     `json:"status"`
	Parameters PacketCaptureParameters `json:"parameters"`
	Cause      string                  `json:"cause,omitempty"`
	CreatedAt  time.Time               `json:"createdAt"`
}

// Assignments is the whole desired state of one host at a revision.
type Assignments struct {
	Revision    int64        `json:"revision"`
	Assignments []Assignment `json:"assignments"`
}

// SessionReport is an agent's report on one capture session.
type SessionReport struct {
	CaptureID  string              `json:"captureId"`
	Status     PacketCaptureStatus `json:"status"`
	StopReason string              `json:"stopReason,omitempty"`
	Errors     []string            `json:"errors,omitempty"`
	Message    string              `json:"message,omitempty"`
	StartTime  *time.Time          `json:"startTime,omitempty"`
	StopTime   *time.Time          `json:"stopTime,omitempty"`
	Stats      CaptureStats        `json:"stats"`
	// Files are the session's files so far; Size and SHA256 are final once Status is terminal.
	Files []CaptureFile `json:"files,omitempty"`
	// Summary is what the files hold (triage), with a final report.
	Summary *CaptureSummary `json:"summary,omitempty"`
}

// ReportResult tells the agent which reports were applied and which captures
// the server no longer knows, so it can forget them.
type ReportResult struct {
	Unknown []string `json:"unknown,omitempty"`
}

// UploadTargetRequest asks the server where to send a finished file.
type UploadTargetRequest struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// ResumeID continues an earlier, unfinished upload of the same file.
	ResumeID string `json:"resumeId,omitempty"`
}
