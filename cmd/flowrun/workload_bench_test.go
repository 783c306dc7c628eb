package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
)

// The benchmarks below run the bench/workloads pipelines in process, through
// the same code as `flowrun run`, with one op per input record: ns/op is the
// time per record and allocs/op the allocations per record, the cost of
// planning and starting amortised over b.N records. Profile them with
//
//	go test ./cmd/flowrun -run '^$' -bench W2 -benchtime 1000000x -cpuprofile w2.prof

// workload returns the path of a bench/workloads file.
func workload(b *testing.B, name string) string {
	b.Helper()
	path := filepath.Join("..", "..", "bench", "workloads", name)
	if _, err := os.Stat(path); err != nil {
		b.Fatalf("workload file: %v", err)
	}
	return path
}

// runWorkload runs `flowrun run` with args and fails b unless it exits 0
// with the wanted records_out in its log. It reports the allocations per
// record to two decimals, which allocs/op rounds down.
func runWorkload(b *testing.B, wantOut int, args ...string) {
	b.Helper()
	var log strings.Builder
	var before, after goruntime.MemStats
	goruntime.ReadMemStats(&before)
	defer func() {
		goruntime.ReadMemStats(&after)
		b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N), "allocs/record")
		b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N), "B/record")
	}()
	if code := run(context.Background(), append([]string{"run", "--log-level", "info"}, args...), io.Discard, &log); code != exitOK {
		b.Fatalf("flowrun run %v exited %d:\n%s", args, code, log.String())
	}
	if want := "records_out=" + strconv.Itoa(wantOut); !strings.Contains(log.String(), want) {
		b.Fatalf("flowrun run %v: no %q in the log:\n%s", args, want, log.String())
	}
}

// BenchmarkW1 is generate -> filter -> map -> discard; one op is one
// generated record.
func BenchmarkW1(b *testing.B) {
	file := workload(b, "w1.flow")
	b.ReportAllocs()
	runWorkload(b, b.N/5+min(b.N%5, 1), "--var", "count="+strconv.Itoa(b.N), file)
}

// writeW2Input writes n lines {"id":N,"level":"ERROR"|"INFO","msg":"hello world"},
// every fifth one an ERROR, like bench/run's input.
func writeW2Input(b *testing.B, path string, n int) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var line []byte
	for i := range n {
		level := "INFO"
		if i%5 == 0 {
			level = "ERROR"
		}
		line = append(line[:0], `{"id":`...)
		line = strconv.AppendInt(line, int64(i), 10)
		line = append(line, `,"level":"`...)
		line = append(line, level...)
		line = append(line, `","msg":"hello world"}`+"\n"...)
		w.Write(line)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkW2 is JSONL file -> filter -> map -> JSONL file; one op is one
// input line. The state sub-benchmark keeps the pipeline's state in a
// state dir, saved every second: the cost of exactly-once output.
func BenchmarkW2(b *testing.B) {
	for _, bc := range []struct {
		name  string
		state bool
	}{{"plain", false}, {"state", true}} {
		b.Run(bc.name, func(b *testing.B) {
			file := workload(b, "w2.flow")
			dir := b.TempDir()
			in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
			writeW2Input(b, in, b.N)
			args := []string{"--var", "input=" + in, "--var", "output=" + out, file}
			if bc.state {
				args = append([]string{"--state-dir", filepath.Join(dir, "state")}, args...)
			}
			b.ReportAllocs()
			b.ResetTimer()
			before := cpuTime()
			runWorkload(b, b.N/5+min(b.N%5, 1), args...)
			b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkW4 is CSV file -> reduce (count per level) -> stdout; one op is
// one input row.
func BenchmarkW4(b *testing.B) {
	file := workload(b, "w4.flow")
	in := filepath.Join(b.TempDir(), "in.csv")
	f, err := os.Create(in)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString("id,level,msg\n")
	var line []byte
	for i := range b.N {
		level := "INFO"
		if i%5 == 0 {
			level = "ERROR"
		}
		line = strconv.AppendInt(line[:0], int64(i), 10)
		line = append(line, ',')
		line = append(line, level...)
		line = append(line, ",hello world\n"...)
		w.Write(line)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	runWorkload(b, min(b.N, 2), "--var", "input="+in, file)
}
