package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/operators/internal/optest"
	"github.com/flowrun/flowrun/operators/postgres/pgtest"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// discardEmitter takes every page at once and acknowledges it.
type discardEmitter struct{ n int }

func (e *discardEmitter) Emit(_ context.Context, recs []flowruntime.Record, done func()) error {
	e.n += len(recs)
	if done != nil {
		done()
	}
	return nil
}

// BenchmarkSource reads a 100,000-row table of four columns per iteration
// and reports rows/s.
func BenchmarkSource(b *testing.B) {
	const rows = 100_000
	srv := pgtest.Start(b)
	srv.Exec(b, fmt.Sprintf(`CREATE TABLE bench (id bigint PRIMARY KEY, name text, amount numeric(12,2), at timestamptz);
INSERT INTO bench SELECT g, 'name ' || g, g * 0.5, '2026-01-01'::timestamptz + g * interval '1 second' FROM generate_series(1, %d) g;
ANALYZE bench;`, rows))
	for _, batch := range []int{500, 5000} {
		b.Run(fmt.Sprintf("batch_size=%d", batch), func(b *testing.B) {
			total := 0
			for b.Loop() {
				s := source(b, srv.DSN(), fmt.Sprintf(`
    query      = "SELECT id, name, amount, at FROM bench"
    key        = "id"
    batch_size = %d
`, batch))
				var e discardEmitter
				if err := s.Run(context.Background(), &e); err != nil {
					b.Fatal(err)
				}
				if e.n != rows {
					b.Fatalf("read %d rows, want %d", e.n, rows)
				}
				total += e.n
			}
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkSink writes batches of 256 records of four fields, each batch in
// its own transaction, and reports rows/s. The state_dir cases also set the
// sink's row of the progress table in each transaction.
func BenchmarkSink(b *testing.B) {
	srv := pgtest.Start(b)
	for _, bench := range []struct {
		name, options string
		stateDir      bool
	}{
		{"copy", `method = "copy"`, false},
		{"copy,state_dir", `method = "copy"`, true},
		{"insert", `method = "insert"`, false},
		{"insert,state_dir", `method = "insert"`, true},
		{"upsert", `upsert_key = ["id"]`, false},
	} {
		b.Run(bench.name, func(b *testing.B) {
			srv.Exec(b, `DROP TABLE IF EXISTS bench; CREATE TABLE bench (id bigint PRIMARY KEY, name text, amount float8, at timestamptz)`)
			options := "table = \"bench\"\n" + bench.options
			var s flowruntime.Sink
			if bench.stateDir {
				ks := buildKeeping(b, srv.DSN(), options, hclog.NewNullLogger())
				if err := ks.Open(context.Background()); err != nil {
					b.Fatal(err)
				}
				s = ks
			} else {
				s = sink(b, srv.DSN(), options)
			}
			const size = 256
			var id int64
			total := 0
			for b.Loop() {
				recs := make([]M, size)
				for i := range recs {
					id++
					recs[i] = M{"id": id, "name": fmt.Sprintf("name %d", id), "amount": float64(id) / 2, "at": "2026-01-01T00:00:00Z"}
				}
				if err := s.Write(context.Background(), optest.Records(recs...)); err != nil {
					b.Fatal(err)
				}
				total += size
			}
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
