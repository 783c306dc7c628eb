package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// takeBenchFlow is generate without a count → take 100 → discard.
const takeBenchFlow = `pipeline "p" {
  source "gen" {
    kind = "generate"
  }
  take "first" {
    from  = gen
    count = 100
  }
  sink "out" {
    from = first
    kind = "discard"
  }
}
`

var recordsInRE = regexp.MustCompile(`records_in=(\d+) records_out=(\d+)`)

// BenchmarkTakeStopsUpstream runs, in process and through the same code as
// `flowrun run`, a generator that would never end behind a take of 100: one
// op is one whole run, from planning to exit. It reports the records the
// generator made per run (records_in of the `pipeline finished` line) and
// the process's CPU time per run. throttled.flow@RATE is
// pipelines/throttled.flow at RATE records a second: its sink finishes some
// 90 ms (at 1000) or 1.8 s (at 50, the example's default) after the take,
// and what the generator makes meanwhile is what stopping it saves.
func BenchmarkTakeStopsUpstream(b *testing.B) {
	discard := filepath.Join(b.TempDir(), "take.flow")
	if err := os.WriteFile(discard, []byte(takeBenchFlow), 0o644); err != nil {
		b.Fatal(err)
	}
	throttled := filepath.Join("..", "..", "pipelines", "throttled.flow")
	for _, bc := range []struct {
		name string
		args []string
	}{
		{"discard", []string{discard}},
		{"throttled.flow@1000", []string{"--var", "per_second=1000", throttled}},
		{"throttled.flow@50", []string{throttled}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			args := append([]string{"run", "--log-level", "info"}, bc.args...)
			var generated int64
			b.ReportAllocs()
			before := cpuTime()
			for b.Loop() {
				var log strings.Builder
				if code := run(context.Background(), args, io.Discard, &log); code != exitOK {
					b.Fatalf("flowrun %v exited %d:\n%s", args, code, log.String())
				}
				m := recordsInRE.FindStringSubmatch(log.String())
				if m == nil || m[2] != "100" {
					b.Fatalf("flowrun %v: no records_out=100 in the log:\n%s", args, log.String())
				}
				n, _ := strconv.ParseInt(m[1], 10, 64)
				generated += n
			}
			b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(generated)/float64(b.N), "generated/op")
		})
	}
}

// cpuTime is the process's CPU time so far, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
