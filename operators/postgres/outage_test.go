package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/operators/internal/optest"
	"github.com/flowrun/flowrun/operators/postgres"
	"github.com/flowrun/flowrun/operators/postgres/pgtest"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// TestSinkOutlivesAnOutageByDefault: a postgres sink with no retry option
// set waits out a server down for longer than five tries from 100 ms would
// (about 1.5 s): the run succeeds and every row is written once.
func TestSinkOutlivesAnOutageByDefault(t *testing.T) {
	const n = 20000
	srv := pgtest.Start(t)
	srv.Exec(t, `CREATE TABLE dst (n bigint PRIMARY KEY)`)
	flow := fmt.Sprintf(`
pipeline "p" {
  source "gen" {
    kind     = "generate"
    count    = %d
    template = {n: seq}
  }
  throttle "paced" {
    from  = gen
    rate  = 10000
    per   = "1s"
    burst = 100
  }
  sink "dst" {
    from    = paced
    kind    = "postgres"
    dsn     = %q
    table   = "dst"
    columns = ["n"]
  }
}
`, n, srv.DSN())
	p := optest.Plan(t, flow, "p")
	g, err := all.Registry().BuildGraph(p, operators.BuildEnv{Clock: flowruntime.RealClock{}})
	if err != nil {
		t.Fatal(err)
	}
	var dst *postgres.Sink
	for _, node := range g.Nodes {
		if node.Name == "dst" {
			dst = node.Sink.(*postgres.Sink)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ex, err := flowruntime.Start(ctx, g, flowruntime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return dst.Written() >= n/10 })
	srv.Outage(3500 * time.Millisecond)
	if dst.Written() >= n {
		t.Fatalf("all %d rows were written before the outage ended: slow the run down", n)
	}
	if err := ex.Wait(); err != nil {
		t.Fatalf("the run failed: %v", err)
	}
	var count, distinct int64
	row := srv.Conn(t).QueryRow(context.Background(), `SELECT count(*), count(DISTINCT n) FROM dst`)
	if err := row.Scan(&count, &distinct); err != nil {
		t.Fatal(err)
	}
	if count != n || distinct != n {
		t.Errorf("%d rows (%d distinct), want %d once each", count, distinct, n)
	}
	if st, _ := ex.Stats().Node("dst"); st.Retries == 0 {
		t.Errorf("no write was retried: the outage did not hit the run")
	}
}
