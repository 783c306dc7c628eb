package postgres_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/operators/internal/optest"
	"github.com/flowrun/flowrun/operators/postgres"
	"github.com/flowrun/flowrun/operators/postgres/pgtest"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

type M = map[string]any

// source plans a one-source pipeline from a .flow snippet of the source's
// options and builds the source.
func source(t testing.TB, dsn, options string) *postgres.Source {
	t.Helper()
	src := fmt.Sprintf(`
pipeline "p" {
  source "rows" {
    kind = "postgres"
    dsn  = %q
%s
  }
  sink "out" {
    from = rows
    kind = "discard"
  }
}
`, dsn, options)
	n := optest.Build(t, optest.PlanStage(t, src, "rows"), optest.Env(nil))
	s, ok := n.Source.(*postgres.Source)
	if !ok {
		t.Fatalf("built %T, want *postgres.Source", n.Source)
	}
	return s
}

// runSource runs s to its end and returns what it emitted.
func runSource(t *testing.T, s flowruntime.Source) *optest.Emitter {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var e optest.Emitter
	if err := s.Run(ctx, &e); err != nil {
		t.Fatalf("Run: %v", err)
	}
	return &e
}

func TestSourceQueries(t *testing.T) {
	s := source(t, "postgres://localhost/db", `
    query      = "SELECT id, name FROM orders WHERE amount > 0;"
    key        = "Id"
    batch_size = 250
`)
	first, next := s.Queries()
	if want := `SELECT * FROM (SELECT id, name FROM orders WHERE amount > 0) AS q WHERE q."Id" IS NOT NULL ORDER BY q."Id" LIMIT 250`; first != want {
		t.Errorf("first page:\n got %s\nwant %s", first, want)
	}
	if want := `SELECT * FROM (SELECT id, name FROM orders WHERE amount > 0) AS q WHERE q."Id" > $1 ORDER BY q."Id" LIMIT 250`; next != want {
		t.Errorf("next page:\n got %s\nwant %s", next, want)
	}
	for _, q := range []string{first, next} {
		if strings.Contains(strings.ToUpper(q), "OFFSET") {
			t.Errorf("page query uses OFFSET: %s", q)
		}
	}
}

// TestOptionErrors checks that bad options are reported at plan time, at
// the option.
func TestOptionErrors(t *testing.T) {
	tests := []struct {
		name, block, options, want string
	}{
		{"order by", "source", `query = "SELECT * FROM t ORDER BY id"
key = "id"`, "must not have ORDER BY"},
		{"limit", "source", `query = "select * from t limit 10"
key = "id"`, "must not have LIMIT"},
		{"offset", "source", `query = "SELECT * FROM t OFFSET 10"
key = "id"`, "must not have OFFSET"},
		{"not a select", "source", `query = "DELETE FROM t"
key = "id"`, "must be a SELECT"},
		{"two statements", "source", `query = "SELECT 1 AS id; SELECT 2"
key = "id"`, "single statement"},
		{"empty key", "source", `query = "SELECT * FROM t"
key = ""`, "the key is empty"},
		{"batch size", "source", `query = "SELECT * FROM t"
key = "id"
batch_size = 0`, "at least 1"},
		{"start_after list", "source", `query = "SELECT * FROM t"
key = "id"
start_after = [1]`, "number or a string"},
		{"copy upsert", "sink", `table = "t"
upsert_key = ["id"]
method = "copy"`, "cannot upsert"},
		{"key not written", "sink", `table = "t"
columns = ["name"]
upsert_key = ["id"]`, `"id" is not among the columns`},
		{"bad table", "sink", `table = "a."`, "not a table name"},
		{"duplicate column", "sink", `table = "t"
columns = ["a", "a"]`, "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from := ""
			if tt.block == "sink" {
				from = "from = g"
			}
			src := fmt.Sprintf(`
pipeline "p" {
  source "g" {
    kind  = "generate"
    count = 1
  }
  %s "x" {
    kind = "postgres"
    dsn  = "postgres://localhost/db"
    %s
%s
  }
}
`, tt.block, from, tt.options)
			if tt.block == "source" {
				src = strings.Replace(src, `source "g" {
    kind  = "generate"
    count = 1
  }`, `sink "g" {
    from = x
    kind = "discard"
  }`, 1)
			}
			diags := optest.PlanDiagnostics(t, src)
			if !diags.HasErrors() || !strings.Contains(strings.ToLower(diags.Error()), strings.ToLower(tt.want)) {
				t.Fatalf("diagnostics %v, want an error containing %q", diags, tt.want)
			}
		})
	}
}

func TestSource(t *testing.T) {
	srv := pgtest.StartWith(t, pgtest.Options{Settings: map[string]string{"log_statement": "all"}})
	srv.Exec(t, `CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, price numeric(10,2));
INSERT INTO items SELECT g, 'item ' || g, g / 4.0 FROM generate_series(1, 1234) g;`)

	t.Run("pages", func(t *testing.T) {
		s := source(t, srv.DSN(), `
    query      = "SELECT id, name, price FROM items WHERE id % 2 = 0"
    key        = "id"
    batch_size = 100
`)
		e := runSource(t, s)
		recs := e.Records()
		if len(recs) != 617 {
			t.Fatalf("read %d rows, want 617", len(recs))
		}
		for i, r := range recs {
			id := int64(2 * (i + 1))
			want := M{"id": id, "name": fmt.Sprintf("item %d", id), "price": float64(id) / 4}
			if diff := cmp.Diff(want, r.Fields); diff != "" {
				t.Fatalf("row %d (-want +got):\n%s", i, diff)
			}
			if r.Meta.Position != id || r.Meta.Source != "rows" {
				t.Fatalf("row %d meta = %+v", i, r.Meta)
			}
		}
		if e.Calls() != 7 {
			t.Errorf("emitted %d pages, want 7 (6 of 100 and one of 17)", e.Calls())
		}
		if key := s.Checkpoint(); key != int64(1234) {
			t.Errorf("checkpoint = %v; want 1234", key)
		}
		// What the server ran: 7 keyset pages, none with OFFSET.
		var pages int
		for _, line := range strings.Split(srv.Log(), "\n") {
			if !strings.Contains(line, "FROM items WHERE id % 2 = 0") {
				continue
			}
			if strings.Contains(strings.ToUpper(line), "OFFSET") {
				t.Errorf("the server ran an OFFSET query: %s", line)
			}
			if strings.Contains(line, "execute") {
				pages++
			}
		}
		if pages != 7 {
			t.Errorf("the server executed %d page queries, want 7:\n%s", pages, srv.Log())
		}
	})

	t.Run("start_after", func(t *testing.T) {
		s := source(t, srv.DSN(), `
    query       = "SELECT id FROM items"
    key         = "id"
    start_after = 1200
`)
		recs := runSource(t, s).Fields()
		if len(recs) != 34 || recs[0]["id"] != int64(1201) || recs[33]["id"] != int64(1234) {
			t.Fatalf("read %d rows from %v, want 34 from 1201", len(recs), recs[0])
		}
	})

	t.Run("text key", func(t *testing.T) {
		s := source(t, srv.DSN(), `
    query       = "SELECT name FROM items WHERE id <= 30"
    key         = "name"
    batch_size  = 7
    start_after = "item 25"
`)
		got := runSource(t, s).Fields()
		var want []M
		for _, n := range []int{26, 27, 28, 29, 3, 30, 4, 5, 6, 7, 8, 9} {
			want = append(want, M{"name": fmt.Sprintf("item %d", n)})
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("(-want +got):\n%s", diff)
		}
	})

	t.Run("backpressure", func(t *testing.T) {
		s := source(t, srv.DSN(), `
    query      = "SELECT id FROM items"
    key        = "id"
    batch_size = 100
`)
		e := &optest.Emitter{Credit: make(chan struct{})}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx, e) }()
		// Without credit the source fetches one page and waits in Emit.
		waitFor(t, func() bool { return s.Fetched() == 100 })
		time.Sleep(100 * time.Millisecond)
		if n := s.Fetched(); n != 100 {
			t.Fatalf("fetched %d rows with no credit, want exactly one page (100)", n)
		}
		for range 100 {
			e.Credit <- struct{}{}
		}
		waitFor(t, func() bool { return s.Fetched() == 200 })
		time.Sleep(100 * time.Millisecond)
		if n, emitted := s.Fetched(), len(e.Records()); n != 200 || emitted != 100 {
			t.Fatalf("after 100 credits: fetched %d, emitted %d; want 200 and 100", n, emitted)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
		if key := s.Checkpoint(); key != int64(100) {
			t.Errorf("checkpoint = %v; want 100 (the only page taken)", key)
		}
	})

	t.Run("checkpoint waits for earlier pages", func(t *testing.T) {
		s := source(t, srv.DSN(), `
    query      = "SELECT id FROM items WHERE id <= 40"
    key        = "id"
    batch_size = 10
`)
		e := &holdingEmitter{}
		if err := s.Run(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		if len(e.dones) != 4 {
			t.Fatalf("%d pages, want 4", len(e.dones))
		}
		steps := []struct {
			ack  int
			want any
		}{{1, nil}, {2, nil}, {0, int64(30)}, {3, int64(40)}}
		for _, st := range steps {
			e.dones[st.ack]()
			if key := s.Checkpoint(); key != st.want {
				t.Fatalf("after acknowledging page %d: checkpoint %v; want %v", st.ack, key, st.want)
			}
		}
	})

	t.Run("resume", func(t *testing.T) {
		options := `
    query      = "SELECT id FROM items WHERE id <= 40"
    key        = "id"
    batch_size = 10
`
		first := source(t, srv.DSN(), options)
		e := &holdingEmitter{}
		if err := first.Run(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		e.dones[0]()
		e.dones[1]() // pages 3 and 4 were read but never finished
		// The checkpoint travels as JSON: 20 comes back as a float64.
		next := source(t, srv.DSN(), options)
		if err := next.Resume(float64(first.Checkpoint().(int64))); err != nil {
			t.Fatal(err)
		}
		got := runSource(t, next).Fields()
		if len(got) != 20 || got[0]["id"] != int64(21) || got[19]["id"] != int64(40) {
			t.Fatalf("resumed run read %d rows from %v, want 21 to 40", len(got), got[0])
		}
		if err := next.Resume([]any{1}); err == nil {
			t.Error("Resume([1]) = nil, want an error")
		}
		if err := next.Resume(nil); err != nil || next.Checkpoint() != nil {
			t.Errorf("Resume(nil) = %v and checkpoint %v, want nil and nil", err, next.Checkpoint())
		}
	})

	t.Run("follow", func(t *testing.T) {
		srv.Exec(t, `CREATE TABLE events (id serial PRIMARY KEY, msg text)`)
		srv.Exec(t, `INSERT INTO events (msg) SELECT 'old' FROM generate_series(1, 5)`)
		s := source(t, srv.DSN(), `
    query         = "SELECT id, msg FROM events"
    key           = "id"
    follow        = true
    poll_interval = "20ms"
`)
		var e optest.Emitter
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx, &e) }()
		waitFor(t, func() bool { return len(e.Records()) == 5 })
		srv.Exec(t, `INSERT INTO events (msg) SELECT 'new' FROM generate_series(1, 3)`)
		waitFor(t, func() bool { return len(e.Records()) == 8 })
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
		got := e.Fields()
		if got[5]["msg"] != "new" || got[7]["id"] != int64(8) {
			t.Errorf("rows after the first poll: %v", got[5:])
		}
	})
}

// holdingEmitter takes every page at once but keeps the done callbacks.
type holdingEmitter struct {
	mu    sync.Mutex
	dones []func()
}

func (e *holdingEmitter) Emit(_ context.Context, _ []flowruntime.Record, done func()) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.dones = append(e.dones, done)
	return nil
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSourceTypes(t *testing.T) {
	srv := pgtest.Start(t)
	srv.Exec(t, `CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TABLE types (
  id int PRIMARY KEY, s smallint, i integer, b bigint, r real, d double precision,
  n numeric(10,2), ok boolean, t text, vc varchar(10), ch char(3), j json, jb jsonb,
  ts timestamptz, tsn timestamp, dt date, by bytea, u uuid, arr int[], tarr text[],
  iv interval, tm time, ip inet, mo mood, nul text);
INSERT INTO types VALUES (1, 7, 8, 9000000000, 1.5, 2.25, 12.34, true, 'x', 'y', 'z',
  '{"a": 1, "b": [1.5, "s"]}', '{"k": 9007199254740993}',
  '2026-01-02 03:04:05.123456+02', '2026-01-02 03:04:05', '2026-01-02', '\x0102ff',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{1,2,NULL}', '{a,b}', '1 day 02:00:00',
  '12:34:56', '192.168.0.1', 'happy', NULL);
INSERT INTO types (id, n, ts, dt) VALUES (2, 'NaN', 'infinity', '-infinity');`)
	want := []M{{
		"id": int64(1), "s": int64(7), "i": int64(8), "b": int64(9000000000), "r": 1.5, "d": 2.25,
		"n": 12.34, "ok": true, "t": "x", "vc": "y", "ch": "z  ",
		"j":  M{"a": int64(1), "b": []any{1.5, "s"}},
		"jb": M{"k": int64(9007199254740993)},
		"ts": "2026-01-02T01:04:05.123456Z", "tsn": "2026-01-02T03:04:05Z", "dt": "2026-01-02",
		"by": "AQL/", "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
		"arr": []any{int64(1), int64(2), nil}, "tarr": []any{"a", "b"},
		"iv": "1 day 02:00:00", "tm": "12:34:56", "ip": "192.168.0.1", "mo": "happy", "nul": nil,
	}, {
		"id": int64(2), "n": "NaN", "ts": "infinity", "dt": "-infinity",
	}}
	for k := range want[0] {
		if _, ok := want[1][k]; !ok {
			want[1][k] = nil
		}
	}
	got := runSource(t, source(t, srv.DSN(), `
    query = "SELECT * FROM types"
    key   = "id"
`)).Fields()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	got = runSource(t, source(t, srv.DSN(), `
    query   = "SELECT id, n, 1e20::numeric * 3 AS big FROM types"
    key     = "id"
    numeric = "string"
`)).Fields()
	wantText := []M{{"id": int64(1), "n": "12.34", "big": "300000000000000000000"}, {"id": int64(2), "n": "NaN", "big": "300000000000000000000"}}
	if diff := cmp.Diff(wantText, got); diff != "" {
		t.Errorf("numeric = string (-want +got):\n%s", diff)
	}
}

// TestSourceErrors checks that a missing key column and an unreachable
// server fail the run with a clear error.
func TestSourceErrors(t *testing.T) {
	srv := pgtest.Start(t)
	srv.Exec(t, `CREATE TABLE t (id int)`)
	s := source(t, srv.DSN(), `
    query = "SELECT id AS other FROM t"
    key   = "id"
`)
	err := s.Run(context.Background(), &optest.Emitter{})
	if err == nil || !strings.Contains(err.Error(), `no column "id"`) {
		t.Errorf("Run = %v, want an error naming the missing key column", err)
	}

	s = source(t, fmt.Sprintf("postgres://postgres:secret@127.0.0.1:%d/nodb?sslmode=disable", srv.Port()), `
    query          = "SELECT 1 AS id"
    key            = "id"
    retry_attempts = 2
    retry_backoff  = "1ms"
`)
	err = s.Run(context.Background(), &optest.Emitter{})
	if err == nil || !regexp.MustCompile(`"nodb" does not exist`).MatchString(err.Error()) || strings.Contains(err.Error(), "secret") {
		t.Errorf("Run = %v, want an error saying the database does not exist, without the password", err)
	}
}
