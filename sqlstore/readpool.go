package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// ReadPool is a pool of read-only connections with each query text prepared once.
// SQLite takes about as long to parse a statement as to run a point query
// (a credential, a host, a capture by id), and the reads that repeat
// thousands of times a second are a few dozen texts.
type ReadPool struct {
	*sql.DB
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

// maxPreparedReads bounds the statements kept; texts past it run unprepared.
const maxPreparedReads = 256

func NewReadPool(db *sql.DB) *ReadPool {
	return &ReadPool{DB: db, stmts: map[string]*sql.Stmt{}}
}

// prepared returns q's statement, or nil when the cache is full.
func (p *ReadPool) prepared(ctx context.Context, q string) (*sql.Stmt, error) {
	p.mu.Lock()
	st, ok := p.stmts[q]
	full := len(p.stmts) >= maxPreparedReads
	p.mu.Unlock()
	if ok || full {
		return st, nil
	}
	st, err := p.DB.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if cur, ok := p.stmts[q]; ok {
		st.Close() // prepared twice at once: keep the first
		return cur, nil
	}
	p.stmts[q] = st
	return st, nil
}

// QueryContext runs q, prepared once.
func (p *ReadPool) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := p.prepared(ctx, q)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return p.DB.QueryContext(ctx, q, args...)
	}
	return st.QueryContext(ctx, args...)
}

// QueryRowContext runs q, prepared once; a preparation error comes back from Scan.
func (p *ReadPool) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := p.prepared(ctx, q)
	if err != nil || st == nil {
		return p.DB.QueryRowContext(ctx, q, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// Close closes the statements and the connections.
func (p *ReadPool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for q, st := range p.stmts {
		errs = append(errs, st.Close())
		delete(p.stmts, q)
	}
	return errors.Join(append(errs, p.DB.Close())...)
}
