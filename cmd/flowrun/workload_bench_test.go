package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
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
// state dir, saved every second: the cost of exactly-once output. The
// admin one serves --admin 127.0.0.1:0 and scrapes /metrics and
// /api/v1/pipelines every second while it runs (a UI's pace; Prometheus
// scrapes every 15 s by default), admin-idle serves it unasked; the tap ones keep a tap on the map stage ("shout", sampled as
// its batches go to the sink) or on the filter ("errors", fused with the
// map: sampled between the two), one request of 1000 records after
// another, at the tap's default rate (1000 records a second) or, for
// tap-fast, as fast as the client reads (rate=100000).
func BenchmarkW2(b *testing.B) {
	for _, bc := range []struct {
		name   string
		state  bool
		during func(url string, stop <-chan struct{})
	}{
		{"plain", false, nil},
		{"state", true, nil},
		{"admin", false, func(url string, stop <-chan struct{}) {
			poll(stop, time.Second, url+"/metrics", url+"/api/v1/pipelines")
		}},
		{"admin-idle", false, func(url string, stop <-chan struct{}) { <-stop }},
		{"tap-shout", false, func(url string, stop <-chan struct{}) {
			poll(stop, 0, url+"/api/v1/tap?pipeline=w2&stage=shout&limit=1000")
		}},
		{"tap-errors", false, func(url string, stop <-chan struct{}) {
			poll(stop, 0, url+"/api/v1/tap?pipeline=w2&stage=errors&limit=1000")
		}},
		{"tap-fast", false, func(url string, stop <-chan struct{}) {
			poll(stop, 0, url+"/api/v1/tap?pipeline=w2&stage=shout&limit=1000&rate=100000")
		}},
	} {
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
			if bc.during != nil {
				runWorkloadAdmin(b, b.N/5+min(b.N%5, 1), bc.during, args...)
			} else {
				runWorkload(b, b.N/5+min(b.N%5, 1), args...)
			}
			b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/op")
		})
	}
}

// runWorkloadAdmin is runWorkload with --admin 127.0.0.1:0: once the admin
// server has logged its address, during runs with its base URL until the
// run ends.
func runWorkloadAdmin(b *testing.B, wantOut int, during func(url string, stop <-chan struct{}), args ...string) {
	b.Helper()
	log := &lockedBuffer{}
	exited := make(chan int, 1)
	go func() {
		exited <- run(context.Background(), append([]string{"run", "--log-level", "info", "--log-format", "json", "--admin", "127.0.0.1:0"}, args...), io.Discard, log)
	}()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	code, started := -1, false
	for code < 0 && !started {
		select {
		case code = <-exited:
		case <-time.After(100 * time.Microsecond):
			if e, ok := findLog(log.String(), "admin server listening"); ok {
				started = true
				wg.Add(1)
				go func() {
					defer wg.Done()
					during("http://"+e["addr"].(string), stop)
				}()
			}
		}
	}
	if code < 0 {
		code = <-exited
	}
	close(stop)
	wg.Wait()
	if code != exitOK {
		b.Fatalf("flowrun run %v exited %d:\n%s", args, code, log.String())
	}
	e, ok := findLog(log.String(), "pipeline finished")
	if !ok || e.int("records_out") != int64(wantOut) {
		b.Fatalf("flowrun run %v: records_out %v, want %d:\n%s", args, e["records_out"], wantOut, log.String())
	}
}

// poll GETs each of urls, reading the whole answer, every interval until
// stop is closed.
func poll(stop <-chan struct{}, interval time.Duration, urls ...string) {
	for {
		for _, u := range urls {
			if resp, err := http.Get(u); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		select {
		case <-stop:
			return
		case <-time.After(interval):
		}
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
