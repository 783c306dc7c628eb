package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowrun/flowrun/runtime/onerror"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var sourceKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "source", Kind: "postgres",
		Doc: "Reads the rows of a PostgreSQL query page by page in key order (keyset pagination, never OFFSET), optionally following new rows.",
		Options: []planner.OptionSpec{
			dsnOption,
			{Name: "query", Type: planner.String, Required: true,
				Doc: "A SELECT (or WITH ... SELECT) without ORDER BY, LIMIT or OFFSET; it becomes a subquery that the source orders by key and cuts into pages. Its columns become the record's fields."},
			{Name: "key", Type: planner.String, Required: true,
				Doc: "The column of the query that orders the rows and resumes a page after the previous one; its values must be unique and not null (rows with a null key are never read). Index it. In follow mode it must grow with each new row, like a serial id; a row committed after a row with a greater key was read (concurrent inserts) is missed."},
			{Name: "batch_size", Type: planner.Int, Default: int64(500),
				Doc: "The rows fetched per page. A page is fetched only once the pipeline has taken the previous one, so at most one page waits outside the pipeline."},
			{Name: "follow", Type: planner.Bool, Default: false,
				Doc: "Keep polling for rows past the last key instead of ending after the last page."},
			{Name: "poll_interval", Type: planner.Duration, Default: time.Second,
				Doc: "In follow mode, how long to wait before asking again once a page comes back short."},
			{Name: "start_after", Type: planner.Value,
				Doc: "Read only rows whose key is greater than this value (a number, or a string PostgreSQL converts to the key's type, such as a timestamp); by default every row is read."},
			{Name: "numeric", Type: planner.Enum, Enum: []string{"float", "string"}, Default: "float",
				Doc: "How numeric columns are read: float gives a float64 (NaN and infinities give their text), string the exact decimal text."},
		},
		Check: func(o planner.Options) error {
			var p operators.Problems
			checkDSN(&p, o.String("dsn"))
			if msg := checkQuery(o.String("query")); msg != "" {
				p.Add("query", "%s", msg)
			}
			if strings.TrimSpace(o.String("key")) == "" {
				p.Add("key", "the key is empty: name a unique column of the query, such as id")
			}
			p.Min(o, "batch_size", 1)
			p.MinDuration(o, "poll_interval", 0, true)
			switch v := o["start_after"].(type) {
			case nil, int64, float64, string:
			default:
				p.Add("start_after", "start_after must be a number or a string, not %T", v)
			}
			return p.Err()
		},
	},
	Build: func(st *planner.Stage, env operators.BuildEnv) (*flowruntime.Node, error) {
		s := &Source{
			stage:       st.Name,
			dsn:         st.Options.String("dsn"),
			key:         strings.TrimSpace(st.Options.String("key")),
			batch:       int(st.Options.Int("batch_size")),
			follow:      st.Options.Bool("follow"),
			poll:        st.Options.Duration("poll_interval"),
			numericText: st.Options.String("numeric") == "string",
			clock:       env.Clock,
			log:         env.Logger,
			retry:       st.OnError,
		}
		s.first, s.next = pageQueries(st.Options.String("query"), s.key, s.batch)
		if v, ok := st.Options["start_after"]; ok && v != nil {
			s.after, s.checkpoint, s.hasKey = v, v, true
		}
		return &flowruntime.Node{Source: s}, nil
	},
}

// pageQueries returns the SQL of the first page and of every next page.
func pageQueries(query, key string, batch int) (first, next string) {
	query = strings.TrimRight(strings.TrimSpace(query), "; \t\n")
	k := "q." + pgx.Identifier{key}.Sanitize()
	base := "SELECT * FROM (" + query + ") AS q WHERE "
	tail := fmt.Sprintf(" ORDER BY %s LIMIT %d", k, batch)
	return base + k + " IS NOT NULL" + tail, base + k + " > $1" + tail
}

// checkQuery returns what is wrong with a source query, or "".
func checkQuery(query string) string {
	q := strings.TrimSpace(query)
	if q == "" {
		return "the query is empty: write a SELECT whose rows the source reads"
	}
	words := topLevelWords(q)
	if len(words) == 0 || (words[0] != "select" && words[0] != "with" && words[0] != "table" && words[0] != "values") {
		return "the query must be a SELECT (or WITH ... SELECT)"
	}
	for i, w := range words {
		switch {
		case w == "order" && i+1 < len(words) && words[i+1] == "by":
			return "the query must not have ORDER BY: the source orders the rows by key itself"
		case w == "limit" || w == "offset" || w == "fetch":
			return fmt.Sprintf("the query must not have %s: the source pages through the rows by key itself", strings.ToUpper(w))
		}
	}
	if strings.Contains(strings.TrimRight(q, "; \t\n"), ";") {
		return "the query must be a single statement"
	}
	return ""
}

// topLevelWords returns the lower-cased words of a SQL text outside
// parentheses, string literals, quoted identifiers and comments.
func topLevelWords(q string) []string {
	var words []string
	depth := 0
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(q) && q[j] != c {
				j++
			}
			i = j + 1
		case c == '-' && strings.HasPrefix(q[i:], "--"):
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '/' && strings.HasPrefix(q[i:], "/*"):
			end := strings.Index(q[i+2:], "*/")
			if end < 0 {
				return words
			}
			i += end + 4
		case c == '(':
			depth++
			i++
		case c == ')':
			depth--
			i++
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i
			for j < len(q) && (q[j] == '_' || q[j] == '$' || q[j] >= 'a' && q[j] <= 'z' || q[j] >= 'A' && q[j] <= 'Z' || q[j] >= '0' && q[j] <= '9') {
				j++
			}
			if depth == 0 {
				words = append(words, strings.ToLower(q[i:j]))
			}
			i = j
		default:
			i++
		}
	}
	return words
}

// Source is the postgres source. It reads one page at a time and asks for
// the next only once Emit has taken the previous one.
type Source struct {
	stage       string
	dsn         string
	key         string
	first, next string
	batch       int
	follow      bool
	poll        time.Duration
	numericText bool
	clock       flowruntime.Clock
	log         hclog.Logger
	retry       planner.ErrorPolicy

	// after is the key of the last row emitted, as pgx decoded it (a query
	// parameter of the key's type); hasKey is false before the first row.
	after  any
	hasKey bool
	// rows counts the rows read, for the position of keys that are not
	// integers.
	rows int64

	fetched atomic.Int64

	mu sync.Mutex
	// pending holds the pages emitted and not yet acknowledged, in order.
	pending []*page
	// checkpoint is the record value of the last key of the newest page
	// acknowledged along with every page before it (at first start_after,
	// or what Resume was given).
	checkpoint any
	// stopped is set once Run stopped reading.
	stopped bool
}

// page is one emitted page, waiting for its acknowledgement.
type page struct {
	last  any
	acked bool
}

// Source implements the runtime's checkpoint handover.
var (
	_ flowruntime.Checkpointer = (*Source)(nil)
	_ flowruntime.Resumer      = (*Source)(nil)
)

// Checkpoint returns the last key whose page, and every page before it,
// has been acknowledged (every record derived from them is finished), as a
// record value (int64, float64 or string for the usual key types). Before
// any page is acknowledged it is start_after, or the value given to
// Resume, or nil when reading starts at the first row. Rows up to and
// including it need not be read again: Resume (or start_after) with it
// continues after them.
func (s *Source) Checkpoint() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkpoint
}

// Resume makes the next Run read only rows whose key is greater than
// checkpoint, a value Checkpoint returned (possibly through JSON: a whole
// float64 is taken as an integer); nil starts at the first row. It must be
// called before Run.
func (s *Source) Resume(checkpoint any) error {
	switch v := checkpoint.(type) {
	case nil:
	case int64, string:
	case int:
		checkpoint = int64(v)
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<63 {
			checkpoint = int64(v)
		}
	default:
		return fmt.Errorf("postgres source %q: resume: a checkpoint of type %T is not a key", s.stage, checkpoint)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checkpoint = checkpoint
	s.after, s.hasKey = checkpoint, checkpoint != nil
	return nil
}

// Fetched returns the number of rows fetched from the server so far.
func (s *Source) Fetched() int64 { return s.fetched.Load() }

// Queries returns the SQL of the first page and of the following pages
// ($1 is the last key read).
func (s *Source) Queries() (first, next string) { return s.first, s.next }

// ack records that p is acknowledged and moves the checkpoint over the
// acknowledged pages at the front.
func (s *Source) ack(p *page) {
	s.mu.Lock()
	p.acked = true
	moved := false
	for len(s.pending) > 0 && s.pending[0].acked {
		s.checkpoint = s.pending[0].last
		s.pending[0] = nil
		s.pending = s.pending[1:]
		moved = true
	}
	final := moved && s.stopped && len(s.pending) == 0
	s.mu.Unlock()
	if final {
		s.logFinal()
	}
}

// Run reads pages until the query has no more rows (or, following, until
// ctx ends). Broken connections are dialled again with the stage's retry
// backoff, resuming after the last key emitted.
func (s *Source) Run(ctx context.Context, out flowruntime.Emitter) error {
	err := s.run(ctx, out)
	if ctx.Err() != nil {
		err = nil
	}
	s.mu.Lock()
	s.stopped = true
	waiting := len(s.pending)
	s.mu.Unlock()
	s.log.Info("postgres source stopped reading", "rows", s.fetched.Load(), "checkpoint", s.Checkpoint(),
		"pages_unacknowledged", waiting)
	if waiting == 0 {
		s.logFinal()
	}
	return err
}

// logFinal logs the checkpoint once every page read is acknowledged after
// the source stopped reading.
func (s *Source) logFinal() {
	s.log.Info("postgres source: every page read is acknowledged", "checkpoint", s.Checkpoint())
}

func (s *Source) run(ctx context.Context, out flowruntime.Emitter) error {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			closeConn(conn)
		}
	}()
	failures := 0
	for {
		if ctx.Err() != nil {
			return nil
		}
		var err error
		if conn == nil {
			conn, err = dial(ctx, s.dsn)
		}
		var recs []flowruntime.Record
		var last any
		if err == nil {
			recs, last, err = s.fetch(ctx, conn)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if conn != nil {
				closeConn(conn)
				conn = nil
			}
			failures++
			if !transient(err) || failures >= s.attempts() {
				if !s.hasKey {
					return fmt.Errorf("first page: %w", err)
				}
				return fmt.Errorf("page after key %v: %w", s.after, err)
			}
			d := s.backoff(failures)
			s.log.Warn("postgres source: retrying", "error", redact(err.Error(), s.dsn), "attempt", failures, "backoff", d)
			if s.clock.Sleep(ctx, d) != nil {
				return nil
			}
			continue
		}
		failures = 0
		if len(recs) > 0 {
			p := &page{last: last}
			s.mu.Lock()
			s.pending = append(s.pending, p)
			s.mu.Unlock()
			if err := out.Emit(ctx, recs, func() { s.ack(p) }); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
		if len(recs) < s.batch {
			if !s.follow {
				return nil
			}
			if s.clock.Sleep(ctx, s.poll) != nil {
				return nil
			}
		}
	}
}

// fetch reads the page after s.after and advances s.after past it; last is
// the record value of the page's last key.
func (s *Source) fetch(ctx context.Context, conn *pgx.Conn) (recs []flowruntime.Record, last any, err error) {
	var rows pgx.Rows
	if s.hasKey {
		rows, err = conn.Query(ctx, s.next, textFormats, s.after)
	} else {
		rows, err = conn.Query(ctx, s.first, textFormats)
	}
	if err != nil {
		return nil, nil, s.explain(err)
	}
	defer rows.Close()
	fds := rows.FieldDescriptions()
	names := make([]string, len(fds))
	decoders := make([]*columnDecoder, len(fds))
	json := &codec.Decoder{}
	keyIndex := -1
	for i, fd := range fds {
		names[i] = fd.Name
		decoders[i] = newColumnDecoder(conn.TypeMap(), fd, s.numericText, json)
		if fd.Name == s.key {
			keyIndex = i
		}
	}
	if keyIndex < 0 {
		// A failed query may show no columns; its error comes first.
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, s.explain(err)
		}
		return nil, nil, fmt.Errorf("the query has no column %q to page by", s.key)
	}
	now := s.clock.Now()
	recs = make([]flowruntime.Record, 0, s.batch)
	var after any
	for rows.Next() {
		raw := rows.RawValues()
		fields := make(map[string]any, len(raw))
		for i, b := range raw {
			v, native, err := decoders[i].decode(b)
			if err != nil {
				return nil, nil, fmt.Errorf("column %q: %w", names[i], err)
			}
			fields[names[i]] = v
			if i == keyIndex {
				after, last = native, v
			}
		}
		s.rows++
		pos := s.rows
		if n, ok := last.(int64); ok {
			pos = n
		}
		recs = append(recs, flowruntime.Record{
			Fields: fields,
			Meta:   flowruntime.Meta{Source: s.stage, Position: pos, Time: now},
		})
	}
	if err := rows.Err(); err != nil {
		return nil, nil, s.explain(err)
	}
	if len(recs) > 0 {
		s.after, s.hasKey = after, true
		s.fetched.Add(int64(len(recs)))
	}
	return recs, last, nil
}

// explain adds to a query error what it means for the source.
func (s *Source) explain(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42703" && strings.Contains(pgErr.Message, "q."+s.key) {
		return fmt.Errorf("the query has no column %q to page by: %w", s.key, err)
	}
	return err
}

func (s *Source) attempts() int {
	if s.retry.Attempts > 0 {
		return s.retry.Attempts
	}
	return onerror.DefaultAttempts
}

// backoff is the wait before retry number n: the stage's retry_backoff
// doubled per failure, capped at retry_max_backoff.
func (s *Source) backoff(n int) time.Duration {
	d, top := s.retry.Backoff, s.retry.MaxBackoff
	if d <= 0 {
		d = onerror.DefaultBackoff
	}
	if top <= 0 {
		top = onerror.DefaultMaxBackoff
	}
	for i := 1; i < n && d < top; i++ {
		d *= 2
	}
	return min(d, top)
}

// closeConn closes a connection, waiting a little for a clean goodbye.
func closeConn(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.Close(ctx) // the connection is gone either way
}
