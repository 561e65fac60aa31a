package tripcap

import (
	"context"
	"strings"
	"time"
)

// Silence mutes alerts for a period, as Alertmanager's silences (and
// Azure's alert processing rules that suppress actions) do: an alert whose
// transition a silence matches is still recorded, marked Silenced, and
// delivered to no action group, so no responder captures either. A silence
// matches when every matcher it has matches; it needs at least one.
type Silence struct {
	ID string `json:"id,omitempty"`
	// Rule is the muted rule's id (given by name or id; the server stores the id).
	Rule string `json:"rule,omitempty"`
	// Host is the muted host's id (given by name or id; the server stores the id).
	Host string `json:"host,omitempty"`
	// Labels select hosts by their labels, in the rules' scope syntax
	// (label:K=V, label:K!=V, label:K); every one must match.
	Labels    []Scope   `json:"labels,omitempty"`
	StartsAt  time.Time `json:"startsAt"`
	EndsAt    time.Time `json:"endsAt"`
	CreatedBy string    `json:"createdBy"`
	Comment   string    `json:"comment"`
	CreatedAt time.Time `json:"createdAt,omitzero"`
}

// MaxSilenceCommentLength bounds a silence's comment.
const MaxSilenceCommentLength = 1024

// Validate checks the silence's fields; the error names the field.
func (s *Silence) Validate() error {
	if s.Rule == "" && s.Host == "" && len(s.Labels) == 0 {
		return Errorf(EINVALID, "matchers: give at least one of rule, host, labels (a silence of everything is not allowed)")
	}
	for i, l := range s.Labels {
		if !strings.HasPrefix(string(l), "label:") {
			return Errorf(EINVALID, "labels[%d]: %q is not a label selector (label:K=V, label:K!=V or label:K)", i, clip(string(l)))
		}
		if err := l.Validate(); err != nil {
			return Errorf(EINVALID, "labels[%d]: %v", i, err)
		}
	}
	if s.StartsAt.IsZero() || s.EndsAt.IsZero() {
		return Errorf(EINVALID, "startsAt, endsAt: required")
	}
	if !s.EndsAt.After(s.StartsAt) {
		return Errorf(EINVALID, "endsAt: %s is not after startsAt %s", s.EndsAt.Format(time.RFC3339), s.StartsAt.Format(time.RFC3339))
	}
	if strings.TrimSpace(s.Comment) == "" {
		return Errorf(EINVALID, "comment: required (say why alerts are muted)")
	}
	if len(s.Comment) > MaxSilenceCommentLength {
		return Errorf(EINVALID, "comment: longer than %d characters", MaxSilenceCommentLength)
	}
	return nil
}

// Active reports whether the silence mutes alerts at t.
func (s *Silence) Active(t time.Time) bool {
	return !t.Before(s.StartsAt) && t.Before(s.EndsAt)
}

// Matches reports whether the silence mutes a transition of a on host h
// (h may be nil when the host is gone: label matchers then fail).
func (s *Silence) Matches(a *Alert, h *Host) bool {
	if s.Rule != "" && s.Rule != a.RuleID {
		return false
	}
	if s.Host != "" && s.Host != a.HostID {
		return false
	}
	for _, l := range s.Labels {
		if h == nil || !l.Matches(h) {
			return false
		}
	}
	return true
}

// SilenceFilter selects silences in a listing.
type SilenceFilter struct {
	ID *string
	// ActiveAt selects the silences active then.
	ActiveAt *time.Time
	// EndedAfter selects silences that end after it (not yet expired then).
	EndedAfter *time.Time
}

// SilenceStore persists silences; AlertStore embeds it.
type SilenceStore interface {
	// CreateSilence inserts s, whose ID the caller sets; a zero CreatedAt
	// becomes now. ECONFLICT when the id is taken.
	CreateSilence(ctx context.Context, s *Silence) error
	// FindSilences lists the silences f selects, by StartsAt then id.
	FindSilences(ctx context.Context, f SilenceFilter) ([]*Silence, error)
	// ExpireSilence sets a silence's EndsAt to at when it ends later
	// (an expired silence is kept, as a record). ENOTFOUND when unknown.
	ExpireSilence(ctx context.Context, id string, at time.Time) (*Silence, error)
}
