package sqlstore

// The file index: capture_files holds one row per file of a capture,
// written by syncFiles in the transaction that writes the capture, so the
// index and the capture's own file records never disagree. A row outlives
// its capture being deleted or replaced; it is what `tripcap file list`
// reads, by host, time, alert or capture name, without decoding captures.

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/tripcap/tripcap"
)

// syncFiles writes the index rows of c's files (new ones get an id, known
// ones keep theirs).
func syncFiles(ctx context.Context, tx *Tx, c *tripcap.PacketCapture) error {
	for _, f := range c.Files {
		if f.CreatedAt.IsZero() {
			f.CreatedAt = c.CreatedAt // an agent's report without a time
		}
		sf := tripcap.StoredFile{CaptureID: c.ID, CaptureName: c.Name, WatcherID: c.WatcherID, HostID: c.HostID,
			AlertID: c.AlertID, CaptureDeleted: c.DeletedAt != nil, CaptureFile: f}
		doc, err := json.Marshal(sf)
		if err != nil {
			return fmt.Errorf("encode file %s of capture %s: %w", f.Name, c.ID, err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO capture_files (id, capture_id, name, host_id, capture_name, alert_id, stored, created_at, deleted_at, doc)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (capture_id, name) DO UPDATE SET alert_id = excluded.alert_id, stored = excluded.stored,
				created_at = excluded.created_at, deleted_at = excluded.deleted_at, doc = excluded.doc`,
			tripcap.NewID(), c.ID, f.Name, c.HostID, c.Name, c.AlertID, f.Stored, tx.Time(f.CreatedAt), tx.s.tp(f.DeletedAt), string(doc))
		if err != nil {
			return fmt.Errorf("index file %s of capture %s: %w", f.Name, c.ID, err)
		}
	}
	return nil
}

// CheckFileFilter checks f.
func CheckFileFilter(f tripcap.FileFilter) error {
	for _, id := range []struct {
		what string
		v    *string
	}{{"file id", f.ID}, {"capture id", f.CaptureID}, {"host id", f.HostID}} {
		if id.v != nil {
			if err := CheckID(id.what, *id.v); err != nil {
				return err
			}
		}
	}
	for _, t := range []struct {
		what string
		v    *string
	}{{"capture name", f.CaptureName}, {"alert id", f.AlertID}} {
		if t.v != nil {
			if *t.v == "" {
				return tripcap.Errorf(tripcap.EINVALID, "%s: must not be empty", t.what)
			}
			if err := checkText(t.what, *t.v); err != nil {
				return err
			}
		}
	}
	if f.Since != nil && f.Until != nil && !f.Since.Before(*f.Until) {
		return tripcap.Errorf(tripcap.EINVALID, "since: %s is not before until %s", f.Since.Format("2006-01-02T15:04:05Z07:00"), f.Until.Format("2006-01-02T15:04:05Z07:00"))
	}
	return CheckPage(f.Cursor, f.Limit)
}

// FindFiles lists indexed files ordered by id, and the cursor of the next page.
func (s *Store) FindFiles(ctx context.Context, f tripcap.FileFilter) ([]*tripcap.StoredFile, string, error) {
	if err := CheckFileFilter(f); err != nil {
		return nil, "", err
	}
	w := &Where{}
	for _, c := range []struct {
		col string
		v   *string
	}{{"id", f.ID}, {"capture_id", f.CaptureID}, {"host_id", f.HostID}, {"capture_name", f.CaptureName}, {"alert_id", f.AlertID}} {
		if c.v != nil {
			w.Add(c.col+" = ?", *c.v)
		}
	}
	if f.Since != nil {
		w.Add("created_at >= ?", s.t(*f.Since))
	}
	if f.Until != nil {
		w.Add("created_at < ?", s.t(*f.Until))
	}
	if f.StoredOnly {
		w.Add("stored = " + s.d.True)
	}
	if !f.IncludeDeleted {
		w.Add("deleted_at IS NULL")
	}
	if f.Cursor != "" {
		w.Add("id > ?", f.Cursor)
	}
	rows, err := s.query(ctx, `SELECT doc, id FROM capture_files`+w.String()+OrderLimit(FetchLimit(f.Limit)), w.Args...)
	files, err := collect(rows, err, func(r rowScanner) (*tripcap.StoredFile, error) {
		var doc []byte
		var sf tripcap.StoredFile
		var id string
		if err := r.Scan(&doc, &id); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(doc, &sf); err != nil {
			return nil, fmt.Errorf("decode file %s: %w", id, err)
		}
		sf.ID = id
		sf.CreatedAt = sf.CreatedAt.UTC()
		if sf.DeletedAt != nil {
			t := sf.DeletedAt.UTC()
			sf.DeletedAt = &t
		}
		return &sf, nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("find files: %w", err)
	}
	files, next := Page(files, f.Limit, func(sf *tripcap.StoredFile) string { return sf.ID })
	return files, next, nil
}
