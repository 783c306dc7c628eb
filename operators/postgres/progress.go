package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	flowruntime "github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/runtime/onerror"
)

// DefaultProgressTable is the progress table of a sink whose
// progress_table option is not set.
const DefaultProgressTable = "flowrun_sink_progress"

// A sink with a state dir is exactly once across kill -9 without an upsert
// key. It keeps one row of the progress table,
//
//	CREATE TABLE flowrun_sink_progress (
//	  pipeline   text        NOT NULL,
//	  stage      text        NOT NULL,
//	  written    bigint      NOT NULL,
//	  updated_at timestamptz NOT NULL DEFAULT now(),
//	  PRIMARY KEY (pipeline, stage))
//
// whose written is the number of records that reached the sink and are in
// its table, set in the transaction of every batch: the row and the rows of
// the batch are committed together or not at all. A snapshot saves the same
// count, n (SaveState), once every record before the snapshot's marker is
// committed. After a kill -9 the restored sink reads the row's count m when
// it opens: the m - n records after the snapshot were written by the run
// that died, and as the sources read again from the snapshot's positions,
// the first m - n records to reach the restored sink are those, so it skips
// them (they count as written) and writes the rest. This holds as long as
// the records reach the sink in the same order in both runs: when the plan
// in front of it does not promise that (order.go), the sink skips nothing
// and is at least once.
//
// A sink without a restored state (a first run, a state reset, a hot
// reload, or a source that cannot read again) skips nothing and counts on
// from the row's value, since nothing says where the rows the row counts
// came from. A run with a state dir saves its first snapshot before its
// sources emit anything, so a restarted run always has one. Without a
// state dir the sink keeps no row at all.

// progress is a sink's row of the progress table.
type progress struct {
	table           pgx.Identifier
	pipeline, stage string
	// keep is set with a state dir (or a restored state): the sink keeps
	// its row.
	keep   bool
	policy onerror.Policy
	clock  flowruntime.Clock
	// inOrder is set when the records reaching the sink come again in the
	// same order after a restart (replayOrder); whyNot says why not.
	inOrder bool
	whyNot  string

	// restored is the count a restored state gives, nil without one.
	restored *int64
	// opened is set once the row was read (openProgress).
	opened bool
	// pos counts the records that reached the sink and are in its table:
	// the restored count, or the row's at open, plus every record Write
	// since wrote or skipped.
	pos int64
	// committed is the row's count as of the last commit (or as read at
	// open). While pos is below it, the records that reach the sink were
	// written by an earlier run.
	committed int64
	// upsert is the statement setting the row.
	upsert string
}

// sinkState is a postgres sink's saved state: the count of records it had
// written, as its row of the progress table says.
type sinkState struct {
	Written int64 `json:"written"`
}

var (
	_ flowruntime.Stateful = (*Sink)(nil)
	_ flowruntime.Opener   = (*Sink)(nil)
)

// SaveState returns the count of records written (JSON): every one of them
// is committed, with its row of the progress table. Without a state dir the
// sink keeps nothing.
func (s *Sink) SaveState() ([]byte, error) {
	p := &s.progress
	switch {
	case p.opened:
		return json.Marshal(sinkState{Written: p.pos})
	case p.restored != nil:
		return json.Marshal(sinkState{Written: *p.restored})
	}
	return nil, nil
}

// RestoreState makes the sink, when it opens, skip the records written
// after the saved count: as many as its row of the progress table counts
// beyond it.
func (s *Sink) RestoreState(b []byte) error {
	var st struct {
		Written *int64 `json:"written"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil || st.Written == nil {
		if err == nil {
			err = errors.New("no count written")
		}
		return fmt.Errorf("postgres sink %s: saved state %s is not a postgres sink's: %w", s.table.Sanitize(), b, err)
	}
	if *st.Written < 0 {
		return fmt.Errorf("postgres sink %s: saved state: negative count %d", s.table.Sanitize(), *st.Written)
	}
	s.progress.restored = st.Written
	s.progress.keep = true
	return nil
}

// Open reads the sink's row of the progress table, creating the table or
// the row when missing, when the sink keeps its progress; otherwise it
// does nothing (the first Write connects). A server it cannot reach is
// tried again as the stage's policy retries a transient error. A row that
// contradicts the restored state fails the run.
func (s *Sink) Open(ctx context.Context) error {
	p := &s.progress
	if !p.keep {
		return nil
	}
	for tries := 1; ; tries++ {
		err := s.openProgress(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return nil // the run ends; a Write, if any, opens it
		}
		if s.conn != nil && (s.conn.IsClosed() || transient(err)) {
			closeConn(s.conn)
			s.conn = nil
		}
		if !transient(err) || !p.policy.MayRetry(err, tries) {
			return redactErr(err, s.dsn)
		}
		d := p.policy.Delay(err, tries)
		s.log.Warn("postgres sink: retrying", "error", redactErr(err, s.dsn).Error(), "try", tries+1, "backoff", d)
		if p.clock.Sleep(ctx, d) != nil {
			return nil
		}
	}
}

// ExactlyOnce reports whether the sink, restored from a snapshot, skips
// what the killed run wrote after it (the records in front of it come
// again in the same order), and when not, which stage prevents it.
func (s *Sink) ExactlyOnce() (ok bool, whyNot string) {
	return s.progress.inOrder, s.progress.whyNot
}

// errChanged is a progress row that contradicts the restored state.
var errChanged = errors.New("changed outside flowrun")

// openProgress reads the sink's row, creating the table and the row when
// missing, and sets where the sink stands.
func (s *Sink) openProgress(ctx context.Context) error {
	p := &s.progress
	if err := s.connect(ctx); err != nil {
		return err
	}
	table := p.table.Sanitize()
	if err := p.create(ctx, s.conn); err != nil {
		return err
	}
	var m int64
	err := s.conn.QueryRow(ctx, "SELECT written FROM "+table+" WHERE pipeline = $1 AND stage = $2",
		p.pipeline, p.stage).Scan(&m)
	found := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("progress table %s: read the row of pipeline %q, stage %q: %w", table, p.pipeline, p.stage, err)
	}
	n := m
	if p.restored != nil {
		n = *p.restored
	}
	switch {
	case !found && n > 0:
		return fmt.Errorf("progress table %s has no row for pipeline %q, stage %q, while the saved state says %d records were written: it was %w, or the dsn names another database (reset the pipeline's state to start over)",
			table, p.pipeline, p.stage, n, errChanged)
	case m < n:
		return fmt.Errorf("progress table %s counts %d records written for pipeline %q, stage %q, fewer than the %d the saved state says: its row was %w (reset the pipeline's state to start over)",
			table, m, p.pipeline, p.stage, n, errChanged)
	case !found:
		if _, err := s.conn.Exec(ctx, "INSERT INTO "+table+" (pipeline, stage, written) VALUES ($1, $2, 0) ON CONFLICT (pipeline, stage) DO NOTHING",
			p.pipeline, p.stage); err != nil {
			return fmt.Errorf("progress table %s: add the row of pipeline %q, stage %q: %w", table, p.pipeline, p.stage, err)
		}
	}
	p.upsert = "INSERT INTO " + table + " (pipeline, stage, written, updated_at) VALUES ($1, $2, $3, now())" +
		" ON CONFLICT (pipeline, stage) DO UPDATE SET written = EXCLUDED.written, updated_at = EXCLUDED.updated_at"
	p.committed, p.opened = m, true
	switch {
	case !p.inOrder:
		// Skip nothing: the first records to come might not be the ones
		// written.
		p.pos = m
		s.log.Warn("postgres sink: at least once, not exactly once: the records may reach it in another order after a restart, so what it wrote after a snapshot is written again after a kill",
			"reason", p.whyNot, "written_again", m-n)
	case m > n:
		p.pos = n
		s.log.Info("postgres sink: the run before wrote records after its last snapshot: they are skipped as they come again",
			"progress_table", table, "skip", m-n, "written", m)
	default:
		p.pos = n
	}
	return nil
}

// create creates the progress table unless it exists. Sinks creating it at
// once take turns (an advisory lock), since CREATE TABLE IF NOT EXISTS
// alone can fail when two run at the same moment.
func (p *progress) create(ctx context.Context, conn *pgx.Conn) error {
	table := p.table.Sanitize()
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil {
		return fmt.Errorf("progress table %s: %w", table, err)
	}
	if exists {
		return nil
	}
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", "flowrun progress "+table); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+table+` (
  pipeline   text        NOT NULL,
  stage      text        NOT NULL,
  written    bigint      NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (pipeline, stage))`)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "COMMENT ON TABLE "+table+" IS 'flowrun: per postgres sink (pipeline, stage), the records it has written, set with each batch; read when a pipeline restarts from its state dir'")
		return err
	})
	if err != nil {
		return fmt.Errorf("progress table %s: create it: %w", table, err)
	}
	return nil
}

// alreadyWritten returns how many of the next n records to reach the sink
// an earlier run wrote after the restored snapshot.
func (p *progress) alreadyWritten(n int) int {
	if p.pos >= p.committed {
		return 0
	}
	return int(min(p.committed-p.pos, int64(n)))
}

// record sets the row's count to written in tx. Its error is never
// permanent, whatever PostgreSQL says (a dropped progress table is no fault
// of the records): the batch is retried as the policy allows, not split
// and given up on record by record.
func (p *progress) record(ctx context.Context, tx pgx.Tx, written int64) error {
	if _, err := tx.Exec(ctx, p.upsert, p.pipeline, p.stage, written); err != nil {
		return fmt.Errorf("progress table %s: %v", p.table.Sanitize(), err)
	}
	return nil
}
