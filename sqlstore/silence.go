package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tripcap/tripcap"
)

// Silences are kept whole as JSON documents beside the times listings
// filter on; an expired silence stays, as the record of who muted what.

var silenceNotFound = notFound("silence")

// CreateSilence inserts s. ECONFLICT when its id is taken.
func (s *Store) CreateSilence(ctx context.Context, sl *tripcap.Silence) error {
	if err := CheckID("silence id", sl.ID); err != nil {
		return err
	}
	if sl.StartsAt.IsZero() || sl.EndsAt.IsZero() {
		return tripcap.Errorf(tripcap.EINVALID, "silence startsAt, endsAt: required")
	}
	if sl.CreatedAt.IsZero() {
		sl.CreatedAt = utcNow()
	}
	doc, err := encodeDoc("silence "+sl.ID, sl)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `INSERT INTO silences (id, starts_at, ends_at, created_at, doc) VALUES (?, ?, ?, ?, ?)`,
		sl.ID, s.t(sl.StartsAt), s.t(sl.EndsAt), s.t(sl.CreatedAt), doc)
	if s.violation(err) == "primarykey" {
		return tripcap.Errorf(tripcap.ECONFLICT, "a silence with id %q already exists", sl.ID)
	}
	if err != nil {
		return fmt.Errorf("create silence: %w", err)
	}
	return nil
}

// FindSilences lists the silences f selects, by startsAt then id.
func (s *Store) FindSilences(ctx context.Context, f tripcap.SilenceFilter) ([]*tripcap.Silence, error) {
	w := &Where{}
	if f.ID != nil {
		if err := CheckID("silence id", *f.ID); err != nil {
			return nil, err
		}
		w.Add("id = ?", *f.ID)
	}
	if f.ActiveAt != nil {
		w.Add("starts_at <= ?", s.t(*f.ActiveAt))
		w.Add("ends_at > ?", s.t(*f.ActiveAt))
	}
	if f.EndedAfter != nil {
		w.Add("ends_at > ?", s.t(*f.EndedAfter))
	}
	rows, err := s.query(ctx, `SELECT id, doc FROM silences`+w.String()+` ORDER BY starts_at, id`, w.Args...)
	out, err := collect(rows, err, func(r rowScanner) (*tripcap.Silence, error) {
		var id string
		var doc []byte
		if err := r.Scan(&id, &doc); err != nil {
			return nil, err
		}
		var sl tripcap.Silence
		if err := json.Unmarshal(doc, &sl); err != nil {
			return nil, fmt.Errorf("decode silence %s: %w", id, err)
		}
		sl.ID = id
		return &sl, nil
	})
	if err != nil {
		return nil, fmt.Errorf("find silences: %w", err)
	}
	return out, nil
}

// ExpireSilence ends a silence at at, when it ends later. ENOTFOUND when unknown.
func (s *Store) ExpireSilence(ctx context.Context, id string, at time.Time) (*tripcap.Silence, error) {
	found, err := s.FindSilences(ctx, tripcap.SilenceFilter{ID: &id})
	sl, err := first(found, err, silenceNotFound, id)
	if err != nil {
		return nil, err
	}
	if !sl.EndsAt.After(at) {
		return sl, nil
	}
	sl.EndsAt = at.UTC()
	if sl.StartsAt.After(sl.EndsAt) {
		// Expired before it began: it never mutes anything.
		sl.StartsAt = sl.EndsAt
	}
	doc, err := encodeDoc("silence "+id, sl)
	if err != nil {
		return nil, err
	}
	n, err := s.exec(ctx, `UPDATE silences SET starts_at = ?, ends_at = ?, doc = ? WHERE id = ?`, s.t(sl.StartsAt), s.t(sl.EndsAt), doc, id)
	if err != nil {
		return nil, fmt.Errorf("expire silence %s: %w", id, err)
	}
	if n == 0 {
		return nil, silenceNotFound(id)
	}
	return sl, nil
}
