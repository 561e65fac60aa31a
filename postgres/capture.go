package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/sqldoc"
)

const captureColumns = "id, name, watcher_id, host_id, version, status, desired, deleted_at, created_at, updated_at, doc"

func scanCapture(r pgx.Row) (*tripcap.PacketCapture, error) {
	var c tripcap.PacketCapture
	var doc []byte
	if err := r.Scan(&c.ID, &c.Name, &c.WatcherID, &c.HostID, &c.Version, &c.Status, &c.Desired,
		&c.DeletedAt, &c.CreatedAt, &c.UpdatedAt, &doc); err != nil {
		return nil, err
	}
	utcPtr(&c.DeletedAt)
	utc(&c.CreatedAt)
	utc(&c.UpdatedAt)
	if err := sqldoc.DecodeCapture(doc, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// errNameTaken marks a violation of captures_live_name inside a transaction,
// which PostgreSQL has aborted: the watcher's name is looked up after it.
var errNameTaken = errors.New("capture name taken")

// CreateCapture inserts c with Version 1 and bumps its host's revision, in
// one transaction. ECONFLICT when a live capture of that name exists in the
// watcher; ELIMIT when the watcher already has MaxCaptures active captures;
// ENOTFOUND when the watcher or the host does not exist. Zero
// CreatedAt/UpdatedAt are set to now.
//
// The transaction locks the watcher's row first, so creations in one watcher
// run one at a time across replicas and the count of active captures it
// checks stays true until it commits.
func (s *Store) CreateCapture(ctx context.Context, c *tripcap.PacketCapture) error {
	if err := sqldoc.CheckCapture(c, utcNow()); err != nil {
		return err
	}
	doc, err := sqldoc.EncodeCapture(c)
	if err != nil {
		return err
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var watcher string
		var limit, active int
		var taken bool
		err := tx.QueryRow(ctx, `SELECT name, max_captures FROM watchers WHERE id = $1 FOR NO KEY UPDATE`, c.WatcherID).Scan(&watcher, &limit)
		if isNoRows(err) {
			return sqldoc.WatcherNotFound(c.WatcherID)
		}
		if err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM captures WHERE watcher_id = $1 AND name = $2 AND deleted_at IS NULL)`,
			c.WatcherID, c.Name).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return sqldoc.CaptureNameTaken(c.Name, watcher)
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM captures WHERE watcher_id = $1 AND `+sqldoc.ActiveCapture, c.WatcherID).Scan(&active); err != nil {
			return err
		}
		if active >= limit {
			return sqldoc.CaptureLimit(watcher, limit)
		}
		_, err = tx.Exec(ctx, `INSERT INTO captures (`+captureColumns+`) VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8, $9, $10)`,
			c.ID, c.Name, c.WatcherID, c.HostID, string(c.Status), string(c.Desired), c.DeletedAt, c.CreatedAt, c.UpdatedAt, doc)
		switch uniqueViolation(err) {
		case "":
		case "captures_pkey":
			return sqldoc.CaptureIDTaken(c.ID)
		default:
			return errNameTaken
		}
		if err != nil {
			return err
		}
		bumped, err := bumpRevision(ctx, tx, c.HostID)
		if err == nil && !bumped {
			return sqldoc.HostNotFound(c.HostID)
		}
		return err
	})
	if errors.Is(err, errNameTaken) {
		return s.nameTaken(ctx, c)
	}
	if err != nil {
		return sqldoc.Wrap(err, "create capture %s", c.Name)
	}
	c.Version = 1
	return nil
}

// nameTaken is the ECONFLICT of a capture whose name a live one holds.
func (s *Store) nameTaken(ctx context.Context, c *tripcap.PacketCapture) error {
	watcher := c.WatcherID
	if w, err := s.FindWatcher(ctx, c.WatcherID, ""); err == nil {
		watcher = w.Name
	}
	return sqldoc.CaptureNameTaken(c.Name, watcher)
}

// FindCaptures lists captures ordered by id, and the cursor of the next page.
func (s *Store) FindCaptures(ctx context.Context, f tripcap.CaptureFilter) ([]*tripcap.PacketCapture, string, error) {
	if err := sqldoc.CheckCaptureFilter(f); err != nil {
		return nil, "", err
	}
	w := sqldoc.CaptureWhere(f)
	rows, err := s.pool.Query(ctx, sqldoc.Rebind(`SELECT `+captureColumns+` FROM captures`+w.String()+sqldoc.OrderLimit(sqldoc.FetchLimit(f.Limit))), w.Args...)
	if err != nil {
		return nil, "", fmt.Errorf("find captures: %w", err)
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tripcap.PacketCapture, error) { return scanCapture(r) })
	if err != nil {
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
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var old tripcap.PacketCapture
		err := tx.QueryRow(ctx, `SELECT name, watcher_id, host_id, version, desired, deleted_at FROM captures WHERE id = $1 FOR NO KEY UPDATE`, c.ID).
			Scan(&old.Name, &old.WatcherID, &old.HostID, &old.Version, &old.Desired, &old.DeletedAt)
		if isNoRows(err) {
			return sqldoc.CaptureNotFound(c.ID)
		}
		if err != nil {
			return err
		}
		if err := sqldoc.CheckCaptureUpdate(&old, c, expectVersion); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, updateCaptureSQL,
			expectVersion+1, string(c.Status), string(c.Desired), c.DeletedAt, c.UpdatedAt, doc, c.ID)
		if uniqueViolation(err) != "" {
			return errNameTaken
		}
		if err != nil {
			return err
		}
		if old.Desired != c.Desired || sqldoc.DeletedAtChanged(old.DeletedAt, c.DeletedAt) {
			_, err = bumpRevision(ctx, tx, c.HostID)
		}
		return err
	})
	if errors.Is(err, errNameTaken) {
		return s.nameTaken(ctx, c)
	}
	if err != nil {
		return sqldoc.Wrap(err, "update capture %s", c.ID)
	}
	c.Version = expectVersion + 1
	return nil
}

// UpdateCaptures calls fn on each capture of ids and writes those it
// changed, in one transaction and two round trips (one query, one batch):
// a thousand agents' progress reports cost one commit a second. Rows are
// locked in id order, so concurrent batches of two replicas cannot deadlock.
func (s *Store) UpdateCaptures(ctx context.Context, ids []string, fn func(c *tripcap.PacketCapture) bool) ([]string, error) {
	var missing []string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+captureColumns+` FROM captures WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, ids)
		if err != nil {
			return err
		}
		found := map[string]*tripcap.PacketCapture{}
		for rows.Next() {
			c, err := scanCapture(rows)
			if err != nil {
				rows.Close()
				return err
			}
			found[c.ID] = c
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		missing = missing[:0]
		var batch pgx.Batch
		now := utcNow()
		for _, id := range ids {
			c, ok := found[id]
			if !ok {
				missing = append(missing, id)
				continue
			}
			doc, err := sqldoc.ApplyProgress(c, fn, now)
			if err != nil {
				return err
			}
			if doc == nil {
				continue
			}
			batch.Queue(updateCaptureSQL, c.Version+1, string(c.Status), string(c.Desired), c.DeletedAt, c.UpdatedAt, doc, c.ID)
		}
		if batch.Len() == 0 {
			return nil
		}
		return tx.SendBatch(ctx, &batch).Close()
	})
	if err != nil {
		return nil, sqldoc.Wrap(err, "update %d captures", len(ids))
	}
	return missing, nil
}

const updateCaptureSQL = `UPDATE captures SET version = $1, status = $2, desired = $3, deleted_at = $4, updated_at = $5, doc = $6 WHERE id = $7`
