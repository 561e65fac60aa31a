package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
)

// Audit events are appended in batches (audit.Recorder's writer), in one
// transaction of multi-row INSERTs, and listed newest first by id:
// ids are tripcap.NewID's, which sort by time, so a page's cursor is an id
// as in every other listing.

// auditInsertRows bounds the rows of one INSERT (8 parameters a row, well
// under either database's limit, and few distinct statement texts).
const auditInsertRows = 64

// AppendAuditEvents inserts events in one transaction. ECONFLICT when an id is taken.
func (s *Store) AppendAuditEvents(ctx context.Context, events []*tripcap.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	type row struct {
		e   *tripcap.AuditEvent
		doc string
	}
	rows := make([]row, 0, len(events))
	for i, e := range events {
		if err := checkAuditEvent(i, e); err != nil {
			return err
		}
		e.Time = e.Time.UTC()
		doc, err := encodeDoc("audit event "+e.ID, e)
		if err != nil {
			return err
		}
		rows = append(rows, row{e, doc})
	}
	err := s.write(ctx, func(tx *Tx) error {
		// One statement a chunk of rows: a batch costs a round trip or
		// two, not one a row.
		for start := 0; start < len(rows); start += auditInsertRows {
			chunk := rows[start:min(start+auditInsertRows, len(rows))]
			args := make([]any, 0, len(chunk)*8)
			for _, r := range chunk {
				e := r.e
				args = append(args, e.ID, tx.Time(e.Time), e.PrincipalID, e.PrincipalName, e.Action, e.Resource, string(e.Result), r.doc)
			}
			q := `INSERT INTO audit_events (id, time, principal_id, principal_name, action, resource, result, doc) VALUES ` +
				strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?), ", len(chunk)-1) + "(?, ?, ?, ?, ?, ?, ?, ?)"
			if _, err := tx.Exec(ctx, q, args...); err != nil {
				if s.violation(err) == "primarykey" {
					return tripcap.Errorf(tripcap.ECONFLICT, "an audit event of this batch has an id that already exists")
				}
				return err
			}
		}
		return nil
	})
	if tripcap.ErrorCode(err) == tripcap.ECONFLICT {
		return err
	}
	if err != nil {
		return fmt.Errorf("append %d audit events: %w", len(events), err)
	}
	return nil
}

// checkAuditEvent refuses what the log cannot list: no id, action, time or
// result, or text a store cannot hold.
func checkAuditEvent(i int, e *tripcap.AuditEvent) error {
	field := fmt.Sprintf("events[%d]", i)
	if err := CheckID(field+".id", e.ID); err != nil {
		return err
	}
	if e.Action == "" {
		return tripcap.Errorf(tripcap.EINVALID, "%s.action: required", field)
	}
	if e.Time.IsZero() {
		return tripcap.Errorf(tripcap.EINVALID, "%s.time: required", field)
	}
	if err := tripcap.ValidateAuditResult(field+".result", e.Result); err != nil {
		return err
	}
	return checkTexts(field+".principalId", e.PrincipalID, field+".principalKind", string(e.PrincipalKind),
		field+".principalName", e.PrincipalName, field+".action", e.Action, field+".resource", e.Resource,
		field+".hostId", e.HostID, field+".remoteAddr", e.RemoteAddr, field+".detail", e.Detail)
}

// FindAuditEvents lists the events f selects, newest first, and the next page's cursor.
func (s *Store) FindAuditEvents(ctx context.Context, f tripcap.AuditFilter) ([]*tripcap.AuditEvent, string, error) {
	if err := CheckPage(f.Cursor, f.Limit); err != nil {
		return nil, "", err
	}
	w := &Where{}
	if f.Principal != nil {
		if err := checkText("principal", *f.Principal); err != nil {
			return nil, "", err
		}
		w.Add("(principal_id = ? OR principal_name = ?)", *f.Principal, *f.Principal)
	}
	if f.Action != nil {
		if err := checkText("action", *f.Action); err != nil {
			return nil, "", err
		}
		w.Add("action = ?", *f.Action)
	}
	if f.ResourcePrefix != nil && *f.ResourcePrefix != "" {
		if err := checkText("resource", *f.ResourcePrefix); err != nil {
			return nil, "", err
		}
		// substr, not LIKE: the prefix is matched as given, '%' and '_' too.
		w.Add("substr(resource, 1, ?) = ?", len([]rune(*f.ResourcePrefix)), *f.ResourcePrefix)
	}
	if f.Result != nil {
		if err := tripcap.ValidateAuditResult("result", *f.Result); err != nil {
			return nil, "", err
		}
		w.Add("result = ?", string(*f.Result))
	}
	if f.Since != nil {
		w.Add("time >= ?", s.t(*f.Since))
	}
	if f.Until != nil {
		w.Add("time < ?", s.t(*f.Until))
	}
	if f.Cursor != "" {
		w.Add("id < ?", f.Cursor)
	}
	q := `SELECT id, doc FROM audit_events` + w.String() + ` ORDER BY id DESC`
	if n := FetchLimit(f.Limit); n > 0 {
		q += fmt.Sprintf(" LIMIT %d", n)
	}
	rows, err := s.query(ctx, q, w.Args...)
	events, err := collect(rows, err, func(r rowScanner) (*tripcap.AuditEvent, error) {
		var id string
		var doc []byte
		if err := r.Scan(&id, &doc); err != nil {
			return nil, err
		}
		var e tripcap.AuditEvent
		if err := json.Unmarshal(doc, &e); err != nil {
			return nil, fmt.Errorf("decode audit event %s: %w", id, err)
		}
		e.ID = id
		e.Time = e.Time.UTC()
		return &e, nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("find audit events: %w", err)
	}
	events, next := Page(events, f.Limit, func(e *tripcap.AuditEvent) string { return e.ID })
	return events, next, nil
}

// DeleteAuditEventsBefore removes the events older than t.
func (s *Store) DeleteAuditEventsBefore(ctx context.Context, t time.Time) (int64, error) {
	n, err := s.exec(ctx, `DELETE FROM audit_events WHERE time < ?`, s.t(t))
	if err != nil {
		return 0, fmt.Errorf("delete audit events before %s: %w", t.Format(time.RFC3339), err)
	}
	return n, nil
}
