package tripcap

import "time"

// The agent protocol: an agent enrolls once with a join token, then keeps a
// long poll open for its assignments (the open poll is its heartbeat; a
// separate one carries inventory changes), reports session status every
// second while captures run, and uploads files, all over one HTTP/2
// connection. Desired state lives on the server; the agent reconciles
// toward it after any disconnect.

// EnrollRequest trades a join token for an agent credential.
type EnrollRequest struct {
	// JoinToken travels as the bearer credential, never in the body.
	JoinToken string            `json:"-"`
	Name      string            `json:"name"`
	Location  string            `json:"location,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Inventory Inventory         `json:"inventory"`
}

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
