package postgres

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/flowrun/flowrun/runtime/onerror"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// maxParams is the most parameters one PostgreSQL statement takes.
const maxParams = 65535

var sinkKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "sink", Kind: "postgres",
		Doc: "Writes records as rows of a PostgreSQL table, each batch in one transaction, with COPY or, for upserts, INSERT ... ON CONFLICT. With a state dir (flowrun run --state-dir) each transaction also sets the sink's count of records written in a progress table, and a sink restarted after a kill -9 skips the records the killed run wrote after its last snapshot as they come again: exactly once without an upsert key when the records reach it in the same order in every run (one replayable source; no merge, round-robin fanout, lossy branch, unordered or failing call, clock-driven stage or now() in front of it), else at least once, with a warning (see docs/state.md).",
		Options: []planner.OptionSpec{
			dsnOption,
			{Name: "table", Type: planner.String, Required: true,
				Doc: "The table written: name or schema.name, taken exactly as written (case-sensitive, no quotes needed)."},
			{Name: "columns", Type: planner.StringList,
				Doc: "The columns written, each from the record field of the same name (a missing field writes NULL). By default every column of the table except generated and GENERATED ALWAYS identity columns, read from the catalogue at the first write; list the columns to leave the others to their defaults. Fields that are not columns are ignored."},
			{Name: "upsert_key", Type: planner.StringList,
				Doc: "Columns of a unique index or primary key: a row whose key exists is updated instead of inserted (INSERT ... ON CONFLICT (key) DO UPDATE), so a batch written twice leaves each row once. Within one batch the last record of a key wins."},
			{Name: "method", Type: planner.Enum, Enum: []string{"copy", "insert"},
				Doc: "How rows are sent: copy (COPY FROM, the fastest) or insert (multi-row INSERT statements). The default is copy, or insert when upsert_key is set, which needs it."},
			{Name: "progress_table", Type: planner.String, Default: DefaultProgressTable,
				Doc: "With a state dir only: the table, name or schema.name, holding the sink's count of records written, one row per pipeline and stage (pipeline text, stage text, written bigint, updated_at timestamptz, primary key (pipeline, stage)), set in the transaction of each batch. It is created when missing, which needs the CREATE privilege on its schema, or can be created beforehand with that definition. Two processes must not write the same pipeline and stage into one progress table at once."},
		},
		Check: func(o planner.Options) error {
			var p operators.Problems
			checkDSN(&p, o.String("dsn"))
			table := o.String("table")
			if table == "" || slices.Contains(identifier(table), "") {
				p.Add("table", "the table %q is not a table name: write name or schema.name", table)
			}
			cols, _ := o["columns"].([]string)
			keys, _ := o["upsert_key"].([]string)
			if o["columns"] != nil && len(cols) == 0 {
				p.Add("columns", "the columns list is empty: name at least one column, or remove the option to write every column")
			}
			checkNames(&p, "columns", cols)
			checkNames(&p, "upsert_key", keys)
			if o["upsert_key"] != nil && len(keys) == 0 {
				p.Add("upsert_key", "the upsert_key list is empty: name the columns of a unique index, or remove the option")
			}
			if len(keys) > 0 && o.String("method") == "copy" {
				p.Add("method", "method = \"copy\" cannot upsert: remove the method (upserts use insert) or the upsert_key")
			}
			if pt := o.String("progress_table"); o["progress_table"] != nil && (pt == "" || slices.Contains(identifier(pt), "")) {
				p.Add("progress_table", "the progress table %q is not a table name: write name or schema.name", pt)
			}
			if len(cols) > 0 {
				for _, k := range keys {
					if !slices.Contains(cols, k) {
						p.Add("upsert_key", "the upsert key column %q is not among the columns written: add it to columns", k)
					}
				}
			}
			return p.Err()
		},
	},
	Build: func(st *planner.Stage, env operators.BuildEnv) (*flowruntime.Node, error) {
		cols, _ := st.Options["columns"].([]string)
		keys, _ := st.Options["upsert_key"].([]string)
		s := &Sink{
			dsn:     st.Options.String("dsn"),
			table:   identifier(st.Options.String("table")),
			columns: slices.Clone(cols),
			upsert:  slices.Clone(keys),
			method:  st.Options.String("method"),
			log:     env.Logger,
			progress: progress{
				table:    identifier(st.Options.String("progress_table")),
				pipeline: env.Pipeline,
				stage:    st.Name,
				keep:     env.KeepsState,
				policy:   st.OnError.Policy.Resolve(onerror.Sink),
				clock:    env.Clock,
			},
		}
		if s.log == nil {
			s.log = hclog.NewNullLogger()
		}
		if s.progress.clock == nil {
			s.progress.clock = flowruntime.RealClock{}
		}
		if len(s.progress.table) == 0 {
			s.progress.table = pgx.Identifier{DefaultProgressTable}
		}
		s.progress.inOrder, s.progress.whyNot = replayOrder(st)
		if s.method == "" {
			s.method = "copy"
			if len(keys) > 0 {
				s.method = "insert"
			}
		}
		return &flowruntime.Node{Sink: s}, nil
	},
}

// checkNames reports empty or duplicate names in a list of columns.
func checkNames(p *operators.Problems, option string, names []string) {
	seen := map[string]bool{}
	for _, n := range names {
		switch {
		case n == "":
			p.Add(option, "a column name is empty")
		case seen[n]:
			p.Add(option, "the column %q is listed twice", n)
		}
		seen[n] = true
	}
}

// Sink is the postgres sink. Each Write runs in one transaction: either
// every row of the batch is written or none is. The connection is made by
// the first Write and made again by the Write after one that broke it.
//
// With a state dir (or a restored state) the sink keeps its row in the
// progress table, updated in the transaction of each batch, and opens it
// before the first Write (see progress.go).
type Sink struct {
	dsn     string
	table   pgx.Identifier
	columns []string
	upsert  []string
	method  string
	log     hclog.Logger

	conn *pgx.Conn
	// keyIndex holds the positions of the upsert key in columns, and
	// convert the conversion of each column's values (nil: none); both are
	// set by prepare.
	keyIndex []int
	convert  []func(any) (any, error)
	// loadTypes names the column types pgx does not know; typesLoaded says
	// whether they are registered on the current connection.
	loadTypes   []string
	typesLoaded bool
	// insertSQL caches the INSERT statement by rows per statement.
	insertSQL map[int]string
	rows      [][]any

	progress progress

	written atomic.Int64
	skipped atomic.Int64
}

// Written returns the number of records this sink has written (committed)
// so far.
func (s *Sink) Written() int64 { return s.written.Load() }

// Skipped returns the number of records this sink skipped because the run
// before it, killed after its last snapshot, had written them already.
func (s *Sink) Skipped() int64 { return s.skipped.Load() }

// Columns returns the columns written, once known (given, or read from the
// catalogue by the first Write).
func (s *Sink) Columns() []string { return s.columns }

// Write writes recs in one transaction. On error the transaction is rolled
// back and, when the connection broke, it is closed so that the next Write
// dials again.
//
// A restored sink first skips, as written, the records an earlier run
// wrote after the snapshot it was restored from. Nothing changes before
// the transaction commits, so a retried or split batch skips the same
// records again.
func (s *Sink) Write(ctx context.Context, recs []flowruntime.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if s.progress.keep && !s.progress.opened {
		// Open was cut short by the end of the run.
		if err := s.openProgress(ctx); err != nil {
			return s.failed(err, len(recs))
		}
	}
	p := &s.progress
	done := p.alreadyWritten(len(recs))
	caughtUp := done > 0 && p.pos+int64(done) == p.committed
	if rest := recs[done:]; len(rest) > 0 {
		if err := s.write(ctx, rest, p.pos+int64(len(recs))); err != nil {
			return s.failed(err, len(rest))
		}
		s.written.Add(int64(len(rest)))
	}
	p.pos += int64(len(recs))
	if done > 0 {
		skipped := s.skipped.Add(int64(done))
		if caughtUp {
			s.log.Info("postgres sink: skipped the records the run before had written; writing from here on",
				"skipped", skipped, "written", p.pos)
		}
	}
	return nil
}

// failed closes a connection err broke, so that the next Write dials
// again, and returns err with what failed, marked permanent when no retry
// can cure it.
func (s *Sink) failed(err error, rows int) error {
	if s.conn != nil && (s.conn.IsClosed() || transient(err)) {
		closeConn(s.conn)
		s.conn = nil
	}
	err = fmt.Errorf("write %d rows to %s: %w", rows, s.table.Sanitize(), redactErr(err, s.dsn))
	if permanent(err) {
		return onerror.Permanent(err)
	}
	return err
}

// convertError is a record value the sink cannot convert for its column.
type convertError struct{ err error }

func (e *convertError) Error() string { return e.err.Error() }
func (e *convertError) Unwrap() error { return e.err }

// permanent reports whether retrying err cannot help: a record value that
// cannot be converted, or an error of the data or the statement (classes
// 22 data exception, 23 integrity constraint violation, 42 syntax error or
// access rule violation, 0A feature not supported). Connection failures,
// serialization failures, shutdowns and everything else are retried.
func permanent(err error) bool {
	var ce *convertError
	if errors.As(err, &ce) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && len(pgErr.Code) == 5 {
		switch pgErr.Code[:2] {
		case "22", "23", "42", "0A":
			return true
		}
	}
	return false
}

// redactErr hides the DSN in err's text; err is returned as it is when its
// text does not hold the DSN.
func redactErr(err error, dsn string) error {
	if msg := err.Error(); strings.Contains(msg, dsn) {
		return fmt.Errorf("%s", redact(msg, dsn))
	}
	return err
}

// write writes recs in one transaction which, when the sink keeps its
// progress, also sets its row to written.
func (s *Sink) write(ctx context.Context, recs []flowruntime.Record, written int64) (err error) {
	if err := s.connect(ctx); err != nil {
		return err
	}
	if s.keyIndex == nil {
		if err := s.prepare(ctx); err != nil {
			return err
		}
	}
	if !s.typesLoaded {
		// COPY sends every value in binary, which needs the codecs of the
		// table's own types (enums, domains, composites) on each connection.
		if len(s.loadTypes) > 0 {
			types, err := s.conn.LoadTypes(ctx, s.loadTypes)
			if err != nil {
				return fmt.Errorf("load the column types %v: %w", s.loadTypes, err)
			}
			s.conn.TypeMap().RegisterTypes(types)
		}
		s.typesLoaded = true
	}
	rows, err := s.toRows(recs)
	if err != nil {
		return &convertError{err}
	}
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if s.method == "copy" {
		if _, err := tx.CopyFrom(ctx, s.table, s.columns, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("copy: %w", err)
		}
	} else {
		for i := 0; i < len(rows); {
			chunk := rows[i : i+s.chunk(len(rows)-i)]
			i += len(chunk)
			args := make([]any, 0, len(chunk)*len(s.columns))
			for _, r := range chunk {
				args = append(args, r...)
			}
			if _, err := tx.Exec(ctx, s.insert(len(chunk)), args...); err != nil {
				return fmt.Errorf("insert: %w", err)
			}
		}
	}
	if s.progress.keep {
		if err := s.progress.record(ctx, tx, written); err != nil {
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if s.progress.keep {
		s.progress.committed = written
	}
	return nil
}

// connect dials the server unless the sink is connected.
func (s *Sink) connect(ctx context.Context) (err error) {
	if s.conn != nil {
		return nil
	}
	if s.conn, err = dial(ctx, s.dsn); err != nil {
		return err
	}
	s.typesLoaded = false
	return nil
}

// prepare reads the table's columns from the catalogue: the columns
// written when none were given, and the type of each, which decides how a
// record value is converted for it. It checks the upsert key against them.
func (s *Sink) prepare(ctx context.Context) error {
	rows, err := s.conn.Query(ctx, `SELECT a.attname, a.atttypid::int8, a.atttypid::regtype::text,
  a.attgenerated <> '' OR a.attidentity = 'a'
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`, s.table.Sanitize())
	if err != nil {
		return fmt.Errorf("read the columns of %s: %w", s.table.Sanitize(), err)
	}
	type column struct {
		name, typ string
		oid       int64
		generated bool
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (column, error) {
		var c column
		err := r.Scan(&c.name, &c.oid, &c.typ, &c.generated)
		return c, err
	})
	if err != nil {
		return fmt.Errorf("read the columns of %s: %w", s.table.Sanitize(), err)
	}
	types := make(map[string]uint32, len(all))
	typeNames := make(map[string]string, len(all))
	var writable []string
	for _, c := range all {
		types[c.name] = uint32(c.oid)
		typeNames[c.name] = c.typ
		if !c.generated {
			writable = append(writable, c.name)
		}
	}
	if len(s.columns) == 0 {
		if len(writable) == 0 {
			return fmt.Errorf("table %s has no column to write", s.table.Sanitize())
		}
		s.columns = writable
		s.log.Debug("postgres sink: columns read from the table", "columns", writable)
	}
	s.convert = make([]func(any) (any, error), len(s.columns))
	s.loadTypes = nil
	for i, c := range s.columns {
		oid, ok := types[c]
		if !ok {
			return fmt.Errorf("%q is not a column of %s", c, s.table.Sanitize())
		}
		s.convert[i] = converter(oid)
		if _, known := s.conn.TypeMap().TypeForOID(oid); !known && !slices.Contains(s.loadTypes, typeNames[c]) {
			s.loadTypes = append(s.loadTypes, typeNames[c])
		}
	}
	idx := make([]int, 0, len(s.upsert))
	for _, k := range s.upsert {
		i := slices.Index(s.columns, k)
		if i < 0 {
			return fmt.Errorf("the upsert key column %q is not a column of %s", k, s.table.Sanitize())
		}
		idx = append(idx, i)
	}
	s.keyIndex = idx
	return nil
}

// converter returns how a record value is converted for a column of type
// oid, or nil when pgx takes it as it is. Strings in timestamp and date
// columns are parsed as RFC 3339 (and YYYY-MM-DD); other strings go to
// PostgreSQL's own parser. bytea takes base64 strings (the source's form).
// json and jsonb take any value, encoded as JSON: a string becomes a JSON
// string.
func converter(oid uint32) func(any) (any, error) {
	switch oid {
	case pgtype.TimestamptzOID, pgtype.TimestampOID:
		return func(v any) (any, error) {
			if str, ok := v.(string); ok {
				if t, err := time.Parse(time.RFC3339Nano, str); err == nil {
					if oid == pgtype.TimestampOID {
						return t.UTC(), nil
					}
					return t, nil
				}
				return pgText(oid, str)
			}
			return v, nil
		}
	case pgtype.DateOID:
		return func(v any) (any, error) {
			if str, ok := v.(string); ok {
				if t, err := time.Parse(time.DateOnly, str); err == nil {
					return t, nil
				}
				return pgText(oid, str)
			}
			return v, nil
		}
	case pgtype.ByteaOID:
		return func(v any) (any, error) {
			if str, ok := v.(string); ok {
				b, err := base64.StdEncoding.DecodeString(str)
				if err != nil {
					return nil, fmt.Errorf("a bytea value must be a base64 string: %w", err)
				}
				return b, nil
			}
			return v, nil
		}
	case pgtype.JSONOID, pgtype.JSONBOID:
		var enc codec.Encoder
		return func(v any) (any, error) {
			if v == nil {
				return nil, nil
			}
			b, err := enc.Append(nil, v)
			if err != nil {
				return nil, err
			}
			return b, nil
		}
	}
	return nil
}

// pgText is a string for PostgreSQL to parse as a value of type oid
// (infinity, other date styles).
func pgText(oid uint32, s string) (any, error) {
	switch oid {
	case pgtype.TimestamptzOID:
		var t pgtype.Timestamptz
		return t, t.Scan(s)
	case pgtype.TimestampOID:
		var t pgtype.Timestamp
		return t, t.Scan(s)
	case pgtype.DateOID:
		var d pgtype.Date
		return d, d.Scan(s)
	}
	return s, nil
}

// toRows turns records into rows of column values. With an upsert key only
// the last record of each key is kept (one statement cannot update a row
// twice), in the order of their first appearance.
func (s *Sink) toRows(recs []flowruntime.Record) ([][]any, error) {
	rows := s.rows[:0]
	var seen map[string]int
	if len(s.keyIndex) > 0 {
		seen = make(map[string]int, len(recs))
	}
	var key []byte
	for n, rec := range recs {
		row := make([]any, len(s.columns))
		for i, c := range s.columns {
			v := rec.Fields[c]
			if conv := s.convert[i]; conv != nil && v != nil {
				var err error
				if v, err = conv(v); err != nil {
					return nil, fmt.Errorf("record %d (%s:%d), column %q: %w", n, rec.Meta.Source, rec.Meta.Position, c, err)
				}
			}
			row[i] = v
		}
		if seen != nil {
			key = key[:0]
			for _, i := range s.keyIndex {
				key = appendKey(key, row[i])
			}
			if at, dup := seen[string(key)]; dup {
				rows[at] = row
				continue
			}
			seen[string(key)] = len(rows)
		}
		rows = append(rows, row)
	}
	s.rows = rows[:0]
	return rows, nil
}

// appendKey appends a value of an upsert key, typed so that 1 and "1"
// differ.
func appendKey(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		dst = append(dst, 'n')
	case int64:
		dst = strconv.AppendInt(append(dst, 'i'), x, 10)
	case string:
		dst = append(append(dst, 's'), x...)
	default:
		dst = fmt.Appendf(append(dst, 'v'), "%T:%v", x, x)
	}
	return append(dst, 0)
}

// maxRowsPerInsert bounds the rows of one INSERT statement.
const maxRowsPerInsert = 1024

// chunk returns how many of n rows the next INSERT statement carries: the
// largest power of two not above n, the parameter limit or
// maxRowsPerInsert. Statements of a few sizes only are prepared and cached,
// whatever the sizes of the batches.
func (s *Sink) chunk(n int) int {
	limit := min(n, maxParams/len(s.columns), maxRowsPerInsert)
	size := 1
	for size*2 <= limit {
		size *= 2
	}
	return size
}

// insert returns the INSERT statement of n rows.
func (s *Sink) insert(n int) string {
	if q, ok := s.insertSQL[n]; ok {
		return q
	}
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(s.table.Sanitize())
	b.WriteString(" (")
	for i, c := range s.columns {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pgx.Identifier{c}.Sanitize())
	}
	b.WriteString(") VALUES ")
	p := 1
	for r := range n {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for i := range s.columns {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(p))
			p++
		}
		b.WriteByte(')')
	}
	if len(s.upsert) > 0 {
		b.WriteString(" ON CONFLICT (")
		for i, k := range s.upsert {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(pgx.Identifier{k}.Sanitize())
		}
		b.WriteString(")")
		var set []string
		for _, c := range s.columns {
			if !slices.Contains(s.upsert, c) {
				q := pgx.Identifier{c}.Sanitize()
				set = append(set, q+" = EXCLUDED."+q)
			}
		}
		if len(set) == 0 {
			b.WriteString(" DO NOTHING")
		} else {
			b.WriteString(" DO UPDATE SET ")
			b.WriteString(strings.Join(set, ", "))
		}
	}
	if s.insertSQL == nil {
		s.insertSQL = map[int]string{}
	}
	q := b.String()
	s.insertSQL[n] = q
	return q
}

// Close closes the connection.
func (s *Sink) Close() error {
	if s.conn != nil {
		closeConn(s.conn)
		s.conn = nil
	}
	return nil
}
