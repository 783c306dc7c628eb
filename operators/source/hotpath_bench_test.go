package source_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowrun/flowrun/operators/internal/optest"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// countEmitter counts the records emitted and acknowledges every batch.
type countEmitter struct{ n int }

func (e *countEmitter) Emit(_ context.Context, recs []flowruntime.Record, done func()) error {
	e.n += len(recs)
	if done != nil {
		done()
	}
	return nil
}

// BenchmarkGenerateW1 is W1's source: one record per op from the template
// {id: seq, level: seq % 5 == 0 ? "ERROR" : "INFO", msg: "hello world"}.
func BenchmarkGenerateW1(b *testing.B) {
	n := optest.Build(b, optest.Stage(b, "source", "generate", "gen", M{
		"count":    int64(b.N),
		"template": `{id: seq, level: seq % 5 == 0 ? "ERROR" : "INFO", msg: "hello world"}`,
	}), optest.Env(nil))
	var e countEmitter
	b.ReportAllocs()
	b.ResetTimer()
	if err := n.Source.Run(context.Background(), &e); err != nil {
		b.Fatal(err)
	}
	if e.n != b.N {
		b.Fatalf("generated %d records, want %d", e.n, b.N)
	}
}

// BenchmarkFileCSV is W4's source: a CSV file of rows id,level,msg under a
// header row. One op is one run over 10000 rows; ns/record is reported.
func BenchmarkFileCSV(b *testing.B) {
	path := filepath.Join(b.TempDir(), "in.csv")
	var sb strings.Builder
	const rows = 10000
	sb.WriteString("id,level,msg\n")
	for i := range rows {
		level := "INFO"
		if i%5 == 0 {
			level = "ERROR"
		}
		fmt.Fprintf(&sb, "%d,%s,hello world\n", i, level)
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	s, err := optestBuild(b, M{"path": path, "codec": "csv"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(sb.Len()))
	for b.Loop() {
		var e countEmitter
		if err := s.Run(context.Background(), &e); err != nil {
			b.Fatal(err)
		}
		if e.n != rows {
			b.Fatalf("read %d records, want %d", e.n, rows)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/record")
}
