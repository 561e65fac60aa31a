package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
)

const captureColumns = "id, name, watcher_id, host_id, version, status, desired, deleted_at, created_at, updated_at, doc, scale_set_id"

func scanCapture(r rowScanner) (*tripcap.PacketCapture, error) {
	var c tripcap.PacketCapture
	var doc []byte
	if err := r.Scan(&c.ID, &c.Name, &c.WatcherID, &c.HostID, &c.Version, &c.Status, &c.Desired,
		nullTimeCol{&c.DeletedAt}, timeCol{&c.CreatedAt}, timeCol{&c.UpdatedAt}, &doc, &c.ScaleSetID); err != nil {
		return nil, err
	}
	if err := DecodeCapture(doc, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// errNameTaken marks a violation of the live-name index inside a
// transaction, which PostgreSQL has aborted: the watcher's name is looked
// up after it.
var errNameTaken = errors.New("capture name taken")

// CreateCapture inserts c with Version 1 and bumps its host's revision, in
// one transaction. ECONFLICT when a live capture of that name exists in the
// watcher; ELIMIT when the watcher already has MaxCaptures active captures;
// ENOTFOUND when the watcher or the host does not exist. Zero
// CreatedAt/UpdatedAt are set to now.
func (s *Store) CreateCapture(ctx context.Context, c *tripcap.PacketCapture) error {
	if c.IsScaleSet() || c.ScaleSetID != "" {
		return tripcap.Errorf(tripcap.EINVALID, "capture %s: a scale-set capture and its sessions are created together (CreateScaleSetCapture)", c.Name)
	}
	return s.createCaptures(ctx, c, nil)
}

// CreateScaleSetCapture inserts a scale-set capture and its sessions in
// one transaction (tripcap.ScaleSetCaptureStore).
func (s *Store) CreateScaleSetCapture(ctx context.Context, set *tripcap.PacketCapture, sessions []*tripcap.PacketCapture) error {
	if !set.IsScaleSet() {
		return tripcap.Errorf(tripcap.EINVALID, "capture %s: not a scale-set capture (targetType AzureVMSS, no host)", set.Name)
	}
	if len(sessions) == 0 {
		return tripcap.Errorf(tripcap.EINVALID, "capture %s: a scale-set capture needs a session", set.Name)
	}
	for _, c := range sessions {
		if c.ScaleSetID != set.ID || c.Name != set.Name || c.WatcherID != set.WatcherID {
			return tripcap.Errorf(tripcap.EINVALID, "capture %s: session %s is not the scale-set capture's (same name, watcher, and scaleSetCaptureId %s)", set.Name, c.ID, set.ID)
		}
	}
	return s.createCaptures(ctx, set, sessions)
}

// createCaptures inserts c and then its sessions, if any, in one
// transaction; each gets Version 1.
//
// The transaction locks the watcher's row first, so creations in one
// watcher run one at a time (across replicas) and the count of active
// captures it checks stays true until it commits.
func (s *Store) createCaptures(ctx context.Context, c *tripcap.PacketCapture, sessions []*tripcap.PacketCapture) error {
	all := append([]*tripcap.PacketCapture{c}, sessions...)
	docs := make([][]byte, len(all))
	for i, c := range all {
		var err error
		if docs[i], err = checkedCapture(c); err != nil {
			return err
		}
	}
	err := s.write(ctx, func(tx *Tx) error {
		var watcher string
		var limit, active int
		err := tx.QueryRow(ctx, `SELECT name, max_captures FROM watchers WHERE id = ?`+s.d.Lock, c.WatcherID).Scan(&watcher, &limit)
		if isNoRows(err) {
			return WatcherNotFound(c.WatcherID)
		}
		if err != nil {
			return err
		}
		var taken bool
		// In any case, as the live-name index compares them (and so
		// through it, not through every live capture of the watcher).
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM captures WHERE watcher_id = ? AND lower(name) = lower(?) AND deleted_at IS NULL AND scale_set_id = '')`,
			c.WatcherID, c.Name).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return CaptureNameTaken(c.Name, watcher)
		}
		// A scale-set capture runs nowhere: its sessions count, it does not.
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM captures WHERE watcher_id = ? AND host_id <> '' AND `+ActiveCapture, c.WatcherID).Scan(&active); err != nil {
			return err
		}
		running := 0
		for _, c := range all {
			if c.HostID != "" && c.Active() {
				running++
			}
		}
		if active+max(running, 1) > limit {
			return CaptureLimit(watcher, limit)
		}
		for i, c := range all {
			if err := s.insertCapture(ctx, tx, c, docs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, errNameTaken) {
		return s.nameTaken(ctx, c)
	}
	if err != nil {
		return Wrap(err, "create capture %s", c.Name)
	}
	for _, c := range all {
		c.Version = 1
	}
	return nil
}

// insertCapture inserts one capture row and its files and bumps its host's
// revision (a scale-set capture has no host).
func (s *Store) insertCapture(ctx context.Context, tx *Tx, c *tripcap.PacketCapture, doc []byte) error {
	_, err := tx.Exec(ctx, `INSERT INTO captures (`+captureColumns+`) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Name, c.WatcherID, c.HostID, string(c.Status), string(c.Desired), s.tp(c.DeletedAt), s.t(c.CreatedAt), s.t(c.UpdatedAt), string(doc), c.ScaleSetID)
	switch s.violation(err) {
	case "primarykey":
		return CaptureIDTaken(c.ID)
	case "unique":
		return errNameTaken
	}
	if err != nil {
		return err
	}
	if err := syncFiles(ctx, tx, c); err != nil {
		return err
	}
	if c.HostID == "" {
		return nil
	}
	bumped, err := bumpRevision(ctx, tx, c.HostID)
	if err == nil && !bumped {
		return HostNotFound(c.HostID)
	}
	return err
}

// checkedCapture checks c and returns its doc column.
func checkedCapture(c *tripcap.PacketCapture) ([]byte, error) {
	if err := CheckCapture(c, utcNow()); err != nil {
		return nil, err
	}
	return EncodeCapture(c)
}

// nameTaken is the ECONFLICT of a capture whose name a live one holds.
func (s *Store) nameTaken(ctx context.Context, c *tripcap.PacketCapture) error {
	watcher := c.WatcherID
	if w, err := s.FindWatcher(ctx, c.WatcherID, ""); err == nil {
		watcher = w.Name
	}
	return CaptureNameTaken(c.Name, watcher)
}

// FindCaptures lists captures ordered by id, and the cursor of the next page.
func (s *Store) FindCaptures(ctx context.Context, f tripcap.CaptureFilter) ([]*tripcap.PacketCapture, string, error) {
	if err := CheckCaptureFilter(f); err != nil {
		return nil, "", err
	}
	w := CaptureWhere(f)
	order := OrderLimit(FetchLimit(f.Limit))
	if f.NewestFirst {
		order = OrderLimitNewest(FetchLimit(f.Limit))
	}
	rows, err := s.query(ctx, `SELECT `+captureColumns+` FROM captures`+w.String()+order, w.Args...)
	cs, err := collect(rows, err, scanCapture)
	if err != nil {
		return nil, "", fmt.Errorf("find captures: %w", err)
	}
	cs, next := Page(cs, f.Limit, func(c *tripcap.PacketCapture) string { return c.ID })
	return cs, next, nil
}

// CountCaptures counts the captures f selects, in all pages.
func (s *Store) CountCaptures(ctx context.Context, f tripcap.CaptureFilter) (int, error) {
	if err := CheckCaptureFilter(f); err != nil {
		return 0, err
	}
	w := CaptureWhere(f)
	var n int
	if err := s.queryRow(ctx, `SELECT count(*) FROM captures`+w.String(), w.Args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count captures: %w", err)
	}
	return n, nil
}

// FindCapture returns the first capture (by id) f selects, ENOTFOUND when none.
func (s *Store) FindCapture(ctx context.Context, f tripcap.CaptureFilter) (*tripcap.PacketCapture, error) {
	f.Limit = 1
	cs, _, err := s.FindCaptures(ctx, f)
	if err != nil {
		return nil, err
	}
	if len(cs) == 0 {
		if f.ID != nil {
			return nil, CaptureNotFound(*f.ID)
		}
		return nil, NoSuchCapture()
	}
	return cs[0], nil
}

// UpdateCapture writes c if the stored version is expectVersion (else
// EPRECONDITION), sets c.Version to the next version, and bumps the host's
// revision when Desired or DeletedAt changed, in one transaction. Name,
// WatcherID and HostID are fixed at creation (EINVALID if they differ) and
// CreatedAt is kept; UpdatedAt is stored as given. ENOTFOUND when the
// capture does not exist; ECONFLICT when undeleting it would clash with a
// live capture of the same name.
func (s *Store) UpdateCapture(ctx context.Context, c *tripcap.PacketCapture, expectVersion int64) error {
	doc, err := checkedCapture(c)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *Tx) error {
		var old tripcap.PacketCapture
		err := tx.QueryRow(ctx, `SELECT name, watcher_id, host_id, scale_set_id, version, desired, deleted_at FROM captures WHERE id = ?`+s.d.Lock, c.ID).
			Scan(&old.Name, &old.WatcherID, &old.HostID, &old.ScaleSetID, &old.Version, &old.Desired, nullTimeCol{&old.DeletedAt})
		if isNoRows(err) {
			return CaptureNotFound(c.ID)
		}
		if err != nil {
			return err
		}
		if err := CheckCaptureUpdate(&old, c, expectVersion); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, updateCaptureSQL, expectVersion+1, string(c.Status), string(c.Desired), s.tp(c.DeletedAt), s.t(c.UpdatedAt), string(doc), c.ID)
		if s.violation(err) != "" {
			return errNameTaken
		}
		if err != nil {
			return err
		}
		if err := syncFiles(ctx, tx, c); err != nil {
			return err
		}
		if old.Desired != c.Desired || DeletedAtChanged(old.DeletedAt, c.DeletedAt) {
			_, err = bumpRevision(ctx, tx, c.HostID)
		}
		return err
	})
	if errors.Is(err, errNameTaken) {
		return s.nameTaken(ctx, c)
	}
	if err != nil {
		return Wrap(err, "update capture %s", c.ID)
	}
	c.Version = expectVersion + 1
	return nil
}

const updateCaptureSQL = `UPDATE captures SET version = ?, status = ?, desired = ?, deleted_at = ?, updated_at = ?, doc = ? WHERE id = ?`

// writeCaptureSQL is updateCaptureSQL guarded: it writes only the row
// UpdateCaptures' copy was taken from (the version before this one, the same
// creation), so a copy kept from an earlier write is never written over a
// newer row.
const writeCaptureSQL = updateCaptureSQL + ` AND version = ? AND created_at = ?`

// CaptureWrite is a capture's row as UpdateCaptures writes it: Version is the
// new version, and the row is written only if it holds Version-1 and was
// created at CreatedAt.
type CaptureWrite struct {
	ID              string
	Version         int64
	Status, Desired string
	DeletedAt       *time.Time
	UpdatedAt       time.Time
	Doc             string
	CreatedAt       time.Time
}

func captureWrite(c *tripcap.PacketCapture, doc []byte) CaptureWrite {
	return CaptureWrite{ID: c.ID, Version: c.Version + 1, Status: string(c.Status), Desired: string(c.Desired),
		DeletedAt: c.DeletedAt, UpdatedAt: c.UpdatedAt, Doc: string(doc), CreatedAt: c.CreatedAt}
}

// UpdateCaptures calls fn on each capture of ids and writes those it
// changed, in one transaction, its writes as one batch (Dialect.WriteCaptures) or
// one prepared statement: a thousand agents' progress reports cost one
// commit a second. A capture this Store wrote last, as its copy says, is not
// read again (progressCache): fn changes that copy, and only a change of
// progress (not of files, nor one fn declines or the checks refuse) is
// written from it; the rest are read, rows locked in id order, so
// concurrent batches of two replicas cannot deadlock. fn may therefore run
// twice for a capture, on the copy and on the row: it must change nothing
// but c.
func (s *Store) UpdateCaptures(ctx context.Context, ids []string, fn func(c *tripcap.PacketCapture) bool) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	held := s.progress.take(ids, time.Now())
	var missing []string
	var written []*tripcap.PacketCapture
	err := s.write(ctx, func(tx *Tx) error {
		// Only a first attempt may use the copies: fn has changed them.
		copies := held
		held = nil
		missing, written = missing[:0], written[:0]
		now := utcNow()
		read := make([]string, 0, len(ids)-len(copies))
		var writes []CaptureWrite
		var from []*tripcap.PacketCapture
		for _, id := range ids {
			c := copies[id]
			if c == nil {
				read = append(read, id)
				continue
			}
			files := slices.Clone(c.Files)
			if doc, err := ApplyProgress(c, fn, now); err != nil || doc == nil || !slices.Equal(files, c.Files) {
				// Judged on the stored row instead.
				read = append(read, id)
			} else {
				writes = append(writes, captureWrite(c, doc))
				from = append(from, c)
			}
		}
		if len(writes) > 0 {
			done, err := s.writeCaptures(ctx, tx, writes)
			if err != nil {
				return err
			}
			for i, c := range from {
				if done[i] {
					written = append(written, c)
				} else {
					read = append(read, c.ID)
				}
			}
		}
		if len(read) == 0 {
			return nil
		}
		args := make([]any, len(read))
		for i, id := range read {
			args[i] = id
		}
		rows, err := tx.Query(ctx, `SELECT `+captureColumns+` FROM captures WHERE id IN (?`+strings.Repeat(", ?", len(read)-1)+`) ORDER BY id`+s.d.Lock, args...)
		cs, err := collect(rows, err, scanCapture)
		if err != nil {
			return err
		}
		found := make(map[string]*tripcap.PacketCapture, len(cs))
		for _, c := range cs {
			found[c.ID] = c
		}
		writes, from = writes[:0], from[:0]
		var filesChanged []*tripcap.PacketCapture
		for _, id := range read {
			c, ok := found[id]
			if !ok {
				missing = append(missing, id)
				continue
			}
			files := slices.Clone(c.Files)
			doc, err := ApplyProgress(c, fn, now)
			if err != nil {
				return err
			}
			if doc != nil {
				writes = append(writes, captureWrite(c, doc))
				from = append(from, c)
				if !slices.Equal(files, c.Files) {
					filesChanged = append(filesChanged, c)
				}
			}
		}
		if len(writes) == 0 {
			return nil
		}
		for _, c := range filesChanged {
			if err := syncFiles(ctx, tx, c); err != nil {
				return err
			}
		}
		done, err := s.writeCaptures(ctx, tx, writes)
		if err != nil {
			return err
		}
		for i, c := range from {
			if !done[i] {
				// The row is locked: nothing can have changed it.
				return fmt.Errorf("capture %s: its locked row changed", c.ID)
			}
			written = append(written, c)
		}
		return nil
	})
	if err != nil {
		return nil, Wrap(err, "update %d captures", len(ids))
	}
	for _, c := range written {
		c.Version++
	}
	s.progress.keep(written, time.Now())
	return missing, nil
}

// writeCaptures writes rows under writeCaptureSQL's guard, in one batch
// (Dialect.WriteCaptures) or one prepared statement, and reports which were
// written.
func (s *Store) writeCaptures(ctx context.Context, tx *Tx, rows []CaptureWrite) ([]bool, error) {
	done := make([]bool, len(rows))
	if s.d.WriteCaptures != nil {
		ids, err := s.d.WriteCaptures(ctx, tx, rows)
		if err != nil {
			return nil, err
		}
		wrote := make(map[string]bool, len(ids))
		for _, id := range ids {
			wrote[id] = true
		}
		for i, r := range rows {
			done[i] = wrote[r.ID]
		}
		return done, nil
	}
	put, err := tx.Prepare(ctx, writeCaptureSQL)
	if err != nil {
		return nil, err
	}
	defer put.Close()
	for i, w := range rows {
		res, err := put.ExecContext(ctx, w.Version, w.Status, w.Desired, s.tp(w.DeletedAt), s.t(w.UpdatedAt), w.Doc, w.ID, w.Version-1, s.t(w.CreatedAt))
		if err != nil {
			return nil, fmt.Errorf("capture %s: %w", w.ID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, fmt.Errorf("capture %s: %w", w.ID, err)
		}
		done[i] = n == 1
	}
	return done, nil
}
