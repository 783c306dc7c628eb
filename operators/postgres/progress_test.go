package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/operators/internal/optest"
	"github.com/flowrun/flowrun/operators/postgres"
	"github.com/flowrun/flowrun/operators/postgres/pgtest"
	flowruntime "github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/runtime/onerror"
)

// keepingSink builds the sink of stage "db" of a generate → postgres
// pipeline named "p" as a run with a state dir does, restored from state
// unless it is nil, and opens it.
func keepingSink(t *testing.T, dsn, options string, state []byte) (*postgres.Sink, error) {
	t.Helper()
	s := buildKeeping(t, dsn, options, hclog.NewNullLogger())
	if state != nil {
		if err := s.RestoreState(state); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s, s.Open(ctx)
}

func buildKeeping(t testing.TB, dsn, options string, log hclog.Logger) *postgres.Sink {
	t.Helper()
	src := fmt.Sprintf(`
pipeline "p" {
  source "g" {
    kind = "generate"
  }
  sink "db" {
    from = g
    kind = "postgres"
    dsn  = %q
%s
  }
}
`, dsn, options)
	return buildKeepingFrom(t, src, log)
}

// buildKeepingFrom builds the sink "db" of the pipeline "p" of src as a run
// with a state dir does.
func buildKeepingFrom(t testing.TB, src string, log hclog.Logger) *postgres.Sink {
	t.Helper()
	env := optest.Env(nil)
	env.Pipeline, env.KeepsState, env.Logger = "p", true, log
	s := optest.Build(t, optest.PlanStage(t, src, "db"), env).Sink.(*postgres.Sink)
	t.Cleanup(func() { s.Close() })
	return s
}

// ids returns records {"id": from}, ... {"id": to-1}.
func ids(from, to int) []flowruntime.Record {
	fields := make([]M, 0, to-from)
	for i := from; i < to; i++ {
		fields = append(fields, M{"id": int64(i)})
	}
	return optest.Records(fields...)
}

func writeAll(t *testing.T, s *postgres.Sink, batches ...[]flowruntime.Record) {
	t.Helper()
	for _, b := range batches {
		if err := s.Write(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
}

func saved(t *testing.T, s *postgres.Sink) string {
	t.Helper()
	b, err := s.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSinkProgress: a sink restored with the count n its snapshot saved,
// whose progress row says m, skips exactly the m - n records that reach it
// first, then writes; its row counts every record in the table.
func TestSinkProgress(t *testing.T) {
	srv := pgtest.Start(t)
	c := srv.Conn(t)
	srv.Exec(t, `CREATE TABLE t (id bigint NOT NULL)`)
	count := func(sql string) int64 {
		t.Helper()
		var n int64
		if err := c.QueryRow(context.Background(), sql).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const opts = `table = "t"`

	// A first run writes 0..9 and saves a snapshot, writes 10..16 and dies.
	first, err := keepingSink(t, srv.DSN(), opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, first, ids(0, 4), ids(4, 10))
	snapshot := saved(t, first)
	if snapshot != `{"written":10}` {
		t.Fatalf("saved state %s, want {\"written\":10}", snapshot)
	}
	writeAll(t, first, ids(10, 13), ids(13, 17))
	first.Close()
	if got := count(`SELECT written FROM flowrun_sink_progress WHERE pipeline = 'p' AND stage = 'db'`); got != 17 {
		t.Fatalf("progress row %d, want 17", got)
	}

	// The restart reads 10.. again. Of the batch 15..19 whose last record
	// fails, nothing is skipped for good: the retry of 15..18 skips 15 and
	// 16 again.
	again, err := keepingSink(t, srv.DSN(), opts, []byte(snapshot))
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, again, ids(10, 12), ids(12, 15))
	bad := ids(15, 20)
	bad[4].Fields["id"] = "not a number"
	if err := again.Write(context.Background(), bad); err == nil {
		t.Fatal("a batch with a value that is not a bigint was written")
	}
	writeAll(t, again, ids(15, 19), ids(19, 25))
	if again.Skipped() != 7 || again.Written() != 8 {
		t.Errorf("skipped %d, wrote %d; want the 7 records 10..16 the run before wrote skipped and 8 written", again.Skipped(), again.Written())
	}
	if got := count(`SELECT count(*) FROM t`); got != 25 {
		t.Errorf("%d rows, want 25", got)
	}
	if got := count(`SELECT count(DISTINCT id) FROM t WHERE id BETWEEN 0 AND 24`); got != 25 {
		t.Errorf("%d distinct ids among 0..24, want each once", got)
	}
	if got := saved(t, again); got != `{"written":25}` {
		t.Errorf("saved state %s, want {\"written\":25}", got)
	}
	again.Close()

	// Without a restored state (a first run, a reset) nothing is skipped
	// and the row counts on.
	fresh, err := keepingSink(t, srv.DSN(), opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, fresh, ids(100, 103))
	if fresh.Skipped() != 0 || saved(t, fresh) != `{"written":28}` {
		t.Errorf("a sink without state skipped %d and saved %s; want 0 and {\"written\":28}", fresh.Skipped(), saved(t, fresh))
	}
	fresh.Close()

	// A row behind the saved count, or none while one is expected, is a
	// change outside flowrun: the sink does not open.
	_, err = keepingSink(t, srv.DSN(), opts, []byte(`{"written":40}`))
	if err == nil || !strings.Contains(err.Error(), "counts 28 records written") || !strings.Contains(err.Error(), "fewer than the 40") {
		t.Errorf("restored past the row: %v", err)
	}
	srv.Exec(t, `DELETE FROM flowrun_sink_progress`)
	_, err = keepingSink(t, srv.DSN(), opts, []byte(`{"written":28}`))
	if err == nil || !strings.Contains(err.Error(), `has no row for pipeline "p", stage "db"`) {
		t.Errorf("restored without a row: %v", err)
	}
	// A state that is not a postgres sink's is refused.
	for _, bad := range []string{`{"size":12}`, `{}`, `{"written":-1}`, `[1]`} {
		if err := buildKeeping(t, srv.DSN(), opts, hclog.NewNullLogger()).RestoreState([]byte(bad)); err == nil {
			t.Errorf("RestoreState(%s) = nil, want an error", bad)
		}
	}
	// A saved count of 0 needs no row.
	if _, err := keepingSink(t, srv.DSN(), opts, []byte(`{"written":0}`)); err != nil {
		t.Errorf("restored at 0 without a row: %v", err)
	}

	// The progress table may be elsewhere, and is created when missing.
	srv.Exec(t, `CREATE SCHEMA ops`)
	s, err := keepingSink(t, srv.DSN(), opts+"\n    progress_table = \"ops.progress\"", nil)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, s, ids(200, 205))
	if got := count(`SELECT written FROM ops.progress WHERE pipeline = 'p' AND stage = 'db'`); got != 5 {
		t.Errorf("ops.progress row %d, want 5", got)
	}
	// A progress table dropped under the sink fails the batch, which is
	// retried: it is no fault of the records, to give up on one by one.
	srv.Exec(t, `DROP TABLE ops.progress`)
	err = s.Write(context.Background(), ids(205, 207))
	if err == nil || onerror.IsPermanent(err) || !strings.Contains(err.Error(), "ops.progress") {
		t.Errorf("write without the progress table: %v, want an error to retry naming ops.progress", err)
	}
	if got := count(`SELECT count(*) FROM t WHERE id >= 205`); got != 0 {
		t.Errorf("%d rows written without their progress", got)
	}
}

// TestSinkWithoutStateKeepsNoProgress: without a state dir the sink
// creates no table and keeps no state.
func TestSinkWithoutStateKeepsNoProgress(t *testing.T) {
	srv := pgtest.Start(t)
	srv.Exec(t, `CREATE TABLE t (id bigint NOT NULL)`)
	s := sink(t, srv.DSN(), `table = "t"`)
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	writeAll(t, s, ids(0, 3))
	if b, err := s.SaveState(); b != nil || err != nil {
		t.Errorf("SaveState = %s, %v; want nothing", b, err)
	}
	var exists bool
	if err := srv.Conn(t).QueryRow(context.Background(), `SELECT to_regclass('flowrun_sink_progress') IS NOT NULL`).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Error("a sink without a state dir created the progress table")
	}
}

// TestSinkOpenRetries: a sink with a state dir opens its progress row
// before the first record, trying a server it cannot reach again as its
// policy retries, then failing the run.
func TestSinkOpenRetries(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	var logs bytes.Buffer
	s := buildKeeping(t, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), `
    table          = "t"
    retry_attempts = 3
    retry_backoff  = "10ms"`, hclog.New(&hclog.LoggerOptions{Output: &logs}))
	err = s.Open(context.Background())
	if err == nil || !strings.Contains(err.Error(), "connect") {
		t.Errorf("Open against a closed port: %v, want a connect error", err)
	}
	if n := strings.Count(logs.String(), "postgres sink: retrying"); n != 2 {
		t.Errorf("%d retries logged, want 2 (3 tries):\n%s", n, logs.String())
	}
}

// TestSinkExactlyOnceNeedsTheSameOrder: a sink skips what the killed run
// wrote only when the records in front of it come again in the same
// order; after a merge, a round-robin fanout, a lossy branch, an unordered
// or failing call, a stage acting on the clock or a call of now(), it
// skips nothing (at least once).
func TestSinkExactlyOnceNeedsTheSameOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		// stages come between source "a" and sink "db", whose lines (its
		// from first) are sink.
		stages, sink string
		why          string // "" when exactly once
	}{
		{"chain", `
  filter "f" {
    from  = a
    where = seq % 2 == 0
  }
  map "m" {
    from = f
    set {
      x = seq * 2
    }
  }
  take "t" {
    from  = m
    count = 10
  }
  dedupe "d" {
    from = t
    key  = x
  }
  batch "bt" {
    from    = d
    timeout = "0s"
  }
  throttle "th" {
    from = bt
    rate = 100
  }
  buffered "c" {
    from    = th
    call    = "exec"
    command = ["cat"]
  }`, `from = c`, ""},
		{"hash fanout", `
  fanout "h" {
    from = a
    mode = "hash"
    key  = seq
  }
  sink "other" {
    from = h
    kind = "discard"
  }`, `from = h`, ""},
		{"broadcast", `
  sink "other" {
    from = a
    kind = "discard"
  }`, `from = a`, ""},
		{"merge", `
  source "b" {
    kind = "generate"
  }`, `from = [a, b]`, `"db.merge" merges several streams`},
		{"round robin", `
  fanout "rr" {
    from = a
    mode = "round_robin"
  }
  sink "other" {
    from = rr
    kind = "discard"
  }`, `from = rr`, `fanout "rr" deals records round robin`},
		{"lossy branch", `
  sink "other" {
    from = a
    kind = "discard"
  }`, "from = a\n    when_full = \"drop_oldest\"", `drops records when it is full`},
		{"unordered call", `
  buffered "c" {
    from    = a
    call    = "exec"
    command = ["cat"]
    ordered = false
  }`, `from = c`, `ordered = false`},
		{"call giving up", `
  buffered "c" {
    from     = a
    call     = "exec"
    command  = ["cat"]
    on_error = "skip"
  }`, `from = c`, `buffered "c" gives up on records`},
		{"batch timeout", `
  batch "bt" {
    from = a
  }`, `from = bt`, `batch "bt" emits on a timeout`},
		{"time window", `
  window "w" {
    from  = a
    every = "1m"
  }`, `from = w`, `window "w" emits by the clock`},
		{"periodic reduce", `
  reduce "r" {
    from  = a
    step  = acc + 1
    every = "1m"
  }`, `from = r`, `reduce "r" emits by the clock`},
		{"dedupe ttl", `
  dedupe "d" {
    from = a
    key  = seq
    ttl  = "1h"
  }`, `from = d`, `dedupe "d" forgets keys by the clock`},
		{"now in a filter", `
  filter "f" {
    from  = a
    where = now().Unix() % 2 == 0
  }`, `from = f`, `stage "f" calls now() in where`},
		{"now in a map", `
  map "m" {
    from = a
    set {
      at = now()
    }
  }`, `from = m`, `stage "m" calls now() in set`},
		{"now in a source", `
  source "g" {
    kind     = "generate"
    template = {seq: seq, at: now()}
  }
  sink "other" {
    from = a
    kind = "discard"
  }`, `from = g`, ""},
		{"followed glob", `
  source "logs" {
    kind   = "file"
    path   = "logs/*.jsonl"
    follow = true
  }
  sink "other" {
    from = a
    kind = "discard"
  }`, `from = logs`, `file source "logs" follows several files`},
		{"followed file", `
  source "log" {
    kind   = "file"
    path   = "app.jsonl"
    follow = true
  }
  sink "other" {
    from = a
    kind = "discard"
  }`, `from = log`, ""},
		{"dead letters", `
  map "m" {
    from        = a
    to          = {x: 1 / seq}
    on_error    = "dead_letter"
    dead_letter = db
  }
  sink "out" {
    from = m
    kind = "discard"
  }`, ``, `takes the dead letters of "m"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := fmt.Sprintf(`pipeline "p" {
  source "a" {
    kind = "generate"
  }%s
  sink "db" {
    %s
    kind  = "postgres"
    dsn   = "postgres://u@h/d"
    table = "t"
  }
}
`, tc.stages, tc.sink)
			p := optest.Plan(t, src, "p")
			s := optest.Build(t, p.Stage("db"), optest.Env(nil)).Sink.(*postgres.Sink)
			ok, why := s.ExactlyOnce()
			t.Logf("exactly once: %v (%s)", ok, why)
			if tc.why == "" {
				if !ok {
					t.Errorf("not exactly once: %s", why)
				}
				return
			}
			if ok || !strings.Contains(why, tc.why) {
				t.Errorf("ExactlyOnce() = %v, %q; want false, saying %q", ok, why, tc.why)
			}
		})
	}
}

// TestSinkBehindAMergeSkipsNothing: restored behind a merge, the sink
// writes again what the killed run wrote after the snapshot, and warns.
func TestSinkBehindAMergeSkipsNothing(t *testing.T) {
	srv := pgtest.Start(t)
	srv.Exec(t, `CREATE TABLE t (id bigint NOT NULL)`)
	src := fmt.Sprintf(`pipeline "p" {
  source "a" {
    kind = "generate"
  }
  source "b" {
    kind = "generate"
  }
  sink "db" {
    from  = [a, b]
    kind  = "postgres"
    dsn   = %q
    table = "t"
  }
}
`, srv.DSN())
	first := buildKeepingFrom(t, src, hclog.NewNullLogger())
	if err := first.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	writeAll(t, first, ids(0, 4))
	state := []byte(saved(t, first))
	writeAll(t, first, ids(4, 6))
	first.Close()

	var logs bytes.Buffer
	again := buildKeepingFrom(t, src, hclog.New(&hclog.LoggerOptions{Output: &logs}))
	if err := again.RestoreState(state); err != nil {
		t.Fatal(err)
	}
	if err := again.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	writeAll(t, again, ids(4, 8))
	if again.Skipped() != 0 || again.Written() != 4 {
		t.Errorf("skipped %d, wrote %d; want nothing skipped, 4 written", again.Skipped(), again.Written())
	}
	if msg := logs.String(); !strings.Contains(msg, "at least once, not exactly once") || !strings.Contains(msg, "written_again=2") {
		t.Errorf("no warning that 2 rows are written again:\n%s", msg)
	}
	if got := saved(t, again); got != `{"written":10}` {
		t.Errorf("saved %s, want {\"written\":10}: the row counts every row", got)
	}
}
