package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flowrun/flowrun/operators/postgres/pgtest"
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
	ex, dst := startWithSink(t, flow, nil)
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
