package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/sqldoc"
)

const captureColumns = "id, name, watcher_id, host_id, version, status, desired, deleted_at, created_at, updated_at, doc"

func scanCapture(r rowScanner) (*tripcap.PacketCapture, error) {
	var c tripcap.PacketCapture
	var doc []byte
	if err := r.Scan(&c.ID, &c.Name, &c.WatcherID, &c.HostID, &c.Version, &c.Status, &c.Desired,
		nullTimeText{&c.DeletedAt}, timeText{&c.CreatedAt}, timeText{&c.UpdatedAt}, &doc); err != nil {
		return nil, err
	}
	if err := sqldoc.DecodeCapture(doc, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// CreateCapture inserts c with Version 1 and bumps its host's revision, in
// one transaction. ECONFLICT when a live capture of that name exists in the
// watcher; ELIMIT when the watcher already has MaxCaptures active captures;
// ENOTFOUND when the watcher or the host does not exist. Zero
// CreatedAt/UpdatedAt are set to now.
func (s *Store) CreateCapture(ctx context.Context, c *tripcap.PacketCapture) error {
	if err := sqldoc.CheckCapture(c, utcNow()); err != nil {
		return err
	}
	doc, err := sqldoc.EncodeCapture(c)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		var watcher string
		var limit, active int
		err := tx.QueryRowContext(ctx, `SELECT name, max_captures FROM watchers WHERE id = ?`, c.WatcherID).Scan(&watcher, &limit)
		if isNoRows(err) {
			return sqldoc.WatcherNotFound(c.WatcherID)
		}
		if err != nil {
			return err
		}
		var taken bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM captures WHERE watcher_id = ? AND name = ? AND deleted_at IS NULL)`,
			c.WatcherID, c.Name).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return sqldoc.CaptureNameTaken(c.Name, watcher)
		}
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM captures WHERE watcher_id = ? AND `+sqldoc.ActiveCapture,
			c.WatcherID).Scan(&active); err != nil {
			return err
		}
		if active >= limit {
			return sqldoc.CaptureLimit(watcher, limit)
		}
		bumped, err := bumpRevision(ctx, tx, c.HostID)
		if err != nil {
			return err
		}
		if !bumped {
			return sqldoc.HostNotFound(c.HostID)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO captures (`+captureColumns+`) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.Name, c.WatcherID, c.HostID, string(c.Status), string(c.Desired), formatTimePtr(c.DeletedAt),
			formatTime(c.CreatedAt), formatTime(c.UpdatedAt), string(doc))
		switch constraint(err) {
		case "primarykey":
			return sqldoc.CaptureIDTaken(c.ID)
		case "unique":
			return sqldoc.CaptureNameTaken(c.Name, watcher)
		}
		return err
	})
	if err != nil {
		return sqldoc.Wrap(err, "create capture %s", c.Name)
	}
	c.Version = 1
	s.hub.publish(c.HostID)
	return nil
}

// bumpRevision increments a host's revision and reports whether the host exists.
func bumpRevision(ctx context.Context, tx *sql.Tx, hostID string) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE hosts SET revision = revision + 1 WHERE id = ?`, hostID)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// FindCaptures lists captures ordered by id, and the cursor of the next page.
func (s *Store) FindCaptures(ctx context.Context, f tripcap.CaptureFilter) ([]*tripcap.PacketCapture, string, error) {
	if err := sqldoc.CheckCaptureFilter(f); err != nil {
		return nil, "", err
	}
	w := sqldoc.CaptureWhere(f)
	rows, err := s.reader.QueryContext(ctx, `SELECT `+captureColumns+` FROM captures`+w.String()+sqldoc.OrderLimit(sqldoc.FetchLimit(f.Limit)), w.Args...)
	if err != nil {
		return nil, "", fmt.Errorf("find captures: %w", err)
	}
	defer rows.Close()
	var cs []*tripcap.PacketCapture
	for rows.Next() {
		c, err := scanCapture(rows)
		if err != nil {
			return nil, "", fmt.Errorf("find captures: %w", err)
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("find captures: %w", err)
	}
	cs, next := sqldoc.Page(cs, f.Limit, func(c *tripcap.PacketCapture) string { return c.ID })
	return cs, next, nil
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
			return nil, sqldoc.CaptureNotFound(*f.ID)
		}
		return nil, sqldoc.NoSuchCapture()
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
	if err := sqldoc.CheckCapture(c, utcNow()); err != nil {
		return err
	}
	doc, err := sqldoc.EncodeCapture(c)
	if err != nil {
		return err
	}
	var bumped bool
	err = s.write(ctx, func(tx *sql.Tx) error {
		var old tripcap.PacketCapture
		err := tx.QueryRowContext(ctx, `SELECT name, watcher_id, host_id, version, desired, deleted_at FROM captures WHERE id = ?`, c.ID).
			Scan(&old.Name, &old.WatcherID, &old.HostID, &old.Version, &old.Desired, nullTimeText{&old.DeletedAt})
		if isNoRows(err) {
			return sqldoc.CaptureNotFound(c.ID)
		}
		if err != nil {
			return err
		}
		if err := sqldoc.CheckCaptureUpdate(&old, c, expectVersion); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, updateCaptureSQL,
			expectVersion+1, string(c.Status), string(c.Desired), formatTimePtr(c.DeletedAt), formatTime(c.UpdatedAt), string(doc), c.ID)
		if constraint(err) == "unique" {
			var watcher string
			if err := tx.QueryRowContext(ctx, `SELECT name FROM watchers WHERE id = ?`, c.WatcherID).Scan(&watcher); err != nil {
				return err
			}
			return sqldoc.CaptureNameTaken(c.Name, watcher)
		}
		if err != nil {
			return err
		}
		if old.Desired != c.Desired || sqldoc.DeletedAtChanged(old.DeletedAt, c.DeletedAt) {
			bumped, err = bumpRevision(ctx, tx, c.HostID)
		}
		return err
	})
	if err != nil {
		return sqldoc.Wrap(err, "update capture %s", c.ID)
	}
	c.Version = expectVersion + 1
	if bumped {
		s.hub.publish(c.HostID)
	}
	return nil
}

const updateCaptureSQL = `UPDATE captures SET version = ?, status = ?, desired = ?, deleted_at = ?, updated_at = ?, doc = ? WHERE id = ?`

// UpdateCaptures calls fn on each capture of ids and writes those it
// changed, in one transaction with each statement prepared once: a thousand
// agents' progress reports cost one commit a second instead of a thousand.
func (s *Store) UpdateCaptures(ctx context.Context, ids []string, fn func(c *tripcap.PacketCapture) bool) ([]string, error) {
	var missing []string
	err := s.write(ctx, func(tx *sql.Tx) error {
		missing = missing[:0]
		get, err := tx.PrepareContext(ctx, `SELECT `+captureColumns+` FROM captures WHERE id = ?`)
		if err != nil {
			return err
		}
		defer get.Close()
		put, err := tx.PrepareContext(ctx, updateCaptureSQL)
		if err != nil {
			return err
		}
		defer put.Close()
		now := utcNow()
		for _, id := range ids {
			c, err := scanCapture(get.QueryRowContext(ctx, id))
			if isNoRows(err) {
				missing = append(missing, id)
				continue
			}
			if err != nil {
				return fmt.Errorf("capture %s: %w", id, err)
			}
			doc, err := sqldoc.ApplyProgress(c, fn, now)
			if err != nil {
				return err
			}
			if doc == nil {
				continue
			}
			if _, err := put.ExecContext(ctx, c.Version+1, string(c.Status), string(c.Desired), formatTimePtr(c.DeletedAt),
				formatTime(c.UpdatedAt), string(doc), c.ID); err != nil {
				return fmt.Errorf("capture %s: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, sqldoc.Wrap(err, "update %d captures", len(ids))
	}
	return missing, nil
}
