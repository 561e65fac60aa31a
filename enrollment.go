package tripcap

import (
	"context"
	"time"
)

// PendingEnrollment is an agent's enrollment under the name of a host that
// is already enrolled, with a join token not bound to that host: enrolling
// would revoke the host's agent and hand its captures to the caller, so it
// waits for an admin's approval (`tripcap host approve NAME`). The agent
// retries, presenting the ticket the refusal gave it
// (EnrollmentTicketHeader); once approved, its next try from the same
// address with the same token and that ticket enrolls. A join token bound to the host (JoinToken.HostName) needs
// no approval: that is how an admin re-enrolls an agent that lost its state.
type PendingEnrollment struct {
	ID string `json:"id"`
	// HostName is the enrolled host's name, as stored.
	HostName string `json:"hostName"`
	// JoinTokenID is the token the agent presented; ExpiresAt is its
	// expiry, after which the approval is of no use.
	JoinTokenID string    `json:"joinTokenId"`
	ExpiresAt   time.Time `json:"expiresAt,omitzero"`
	// Remote is the address the request came from; Hostname the host name
	// the agent's inventory gives, for the admin to tell who is asking.
	Remote string `json:"remoteAddress"`
	// TicketHash is the hash (HashSecret) of the ticket the agent was
	// given; never shown, so that seeing the list does not let one enroll.
	TicketHash string     `json:"-"`
	Hostname   string     `json:"hostname,omitempty"`
	CreatedAt  time.Time  `json:"createdAt"`
	ApprovedAt *time.Time `json:"approvedAt,omitempty"`
	ApprovedBy string     `json:"approvedBy,omitempty"`
}

// EnrollmentStore keeps enrollments waiting for approval. Store embeds it.
type EnrollmentStore interface {
	// FindJoinTokenByHash returns the token with this hash if it is usable
	// at now, without using it up; EUNAUTHORIZED otherwise, as
	// ConsumeJoinToken.
	FindJoinTokenByHash(ctx context.Context, hash string, now time.Time) (*JoinToken, error)
	// CreatePendingEnrollment stores e, and forgets those whose token is
	// no longer usable at e.CreatedAt. ECONFLICT when one with the same
	// ticket hash exists.
	CreatePendingEnrollment(ctx context.Context, e *PendingEnrollment) error
	// FindPendingEnrollments lists the enrollments of hostName ("" for all)
	// whose join token is still usable at now, ordered by id, with the
	// token's expiry.
	FindPendingEnrollments(ctx context.Context, hostName string, now time.Time) ([]*PendingEnrollment, error)
	// ApprovePendingEnrollment records an admin's approval. ENOTFOUND when unknown.
	ApprovePendingEnrollment(ctx context.Context, id, by string, at time.Time) error
	// DeletePendingEnrollment forgets one (used, evicted, or refused by an
	// admin). ENOTFOUND when unknown.
	DeletePendingEnrollment(ctx context.Context, id string) error
}
