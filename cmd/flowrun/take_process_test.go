package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	flowruntime "github.com/flowrun/flowrun/runtime"
)

// These tests run the built binary on pipelines whose take finishes long
// before the source would, and read from the log how much the source
// produced. A finished take stops what feeds it, so a source makes at most
// the take's count plus what the plan can hold in flight when the take
// finishes: the plan's memory bound (every edge's capacity and what
// stateful stages hold, as `flowrun graph` states it) plus the one Emit
// call under way, which a graceful stop lets finish (a flowrun source hands
// Emit at most a runtime batch, flowruntime.DefaultBatchSize records).

// TestRunTake runs the built binary on three pipelines with a take: the
// example generator, a large file, and a file read by a take and a sink.
func TestRunTake(t *testing.T) {
	bin := buildFlowrun(t)
	t.Run("stops the generator", func(t *testing.T) { takeStopsTheGenerator(t, bin) })
	t.Run("stops the file source", func(t *testing.T) { takeStopsTheFileSource(t, bin) })
	t.Run("on one branch stops nothing", func(t *testing.T) { takeOnOneBranchStopsNothing(t, bin) })
}

// takeRun is a finished `flowrun run --log-format json`.
type takeRun struct {
	code   int
	stdout []byte
	log    string
}

// runIn runs flowrun with args in dir.
func runIn(t *testing.T, bin, dir string, args ...string) takeRun {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := takeRun{code: exitCode(err), stdout: stdout.Bytes(), log: stderr.String()}
	if r.code < 0 {
		t.Fatalf("flowrun %v: %v\n%s", args, err, r.log)
	}
	return r
}

var memoryBoundRE = regexp.MustCompile(`memory bound (\d+) records`)

// plannedBound is the memory bound in records that `flowrun graph` states
// for the file's one pipeline.
func plannedBound(t *testing.T, bin, dir string, args ...string) int64 {
	t.Helper()
	r := runIn(t, bin, dir, append([]string{"graph"}, args...)...)
	m := memoryBoundRE.FindSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		t.Fatalf("flowrun graph %v exited %d, no memory bound in:\n%s%s", args, r.code, r.stdout, r.log)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n
}

// finished returns the records_in and records_out of the run's `pipeline
// finished` line, failing the test unless the run exited 0.
func (r takeRun) finished(t *testing.T) (in, out int64) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("flowrun run exited %d\n%s", r.code, r.log)
	}
	e, ok := findLog(r.log, "pipeline finished")
	if !ok {
		t.Fatalf("no `pipeline finished` in the log:\n%s", r.log)
	}
	return e.int("records_in"), e.int("records_out")
}

// takeStopsTheGenerator runs the example pipelines/throttled.flow,
// generate (no count) → take 100 → throttle → stdout: it prints the first
// 100 records, and the generator stops after at most 100 plus the in-flight
// bound (before, it generated 2.8 M records, 3 CPU-seconds, to print 100).
func takeStopsTheGenerator(t *testing.T, bin string) {
	dir := t.TempDir()
	flow, err := filepath.Abs(filepath.Join("..", "..", "pipelines", "throttled.flow"))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--var", "per_second=1000", flow}
	bound := plannedBound(t, bin, dir, args...)
	r := runIn(t, bin, dir, append([]string{"run", "--log-format", "json"}, args...)...)
	in, out := r.finished(t)

	const count = 100
	printed := parseJSONL(t, r.stdout)
	if len(printed) != count || out != count {
		t.Fatalf("printed %d records, records_out=%d; want %d", len(printed), out, count)
	}
	for i, rec := range printed {
		if n, _ := rec["n"].(float64); int(n) != i {
			t.Fatalf("record %d = %v, want n = %d", i, rec, i)
		}
	}
	limit := count + bound + flowruntime.DefaultBatchSize
	t.Logf("generated %d records for a take of %d; plan bound %d records, limit %d", in, count, bound, limit)
	if in > limit {
		t.Errorf("the generator made %d records; want at most %d (count %d + memory bound %d + one batch %d)",
			in, limit, count, bound, flowruntime.DefaultBatchSize)
	}
	cp, ok := findLog(r.log, "source checkpoint")
	if !ok || cp.int("checkpoint") < count || cp.int("checkpoint") > in {
		t.Errorf("generator checkpoint %v, want between the %d records printed and the %d generated", cp, count, in)
	}
}

// takeFlow is a file source read by a take of 10 and a throttle into
// some.jsonl; every adds a second reader of the whole file, into
// every.jsonl. The throttle keeps the sink from finishing for half a
// second after the take has: so it is the take that must stop the source,
// not the end of every sink.
func takeFlow(every bool) string {
	flow := `pipeline "p" {
  source "in" {
    kind  = "file"
    path  = "in.jsonl"
    codec = "json"
  }
  take "first" {
    from  = in
    count = 10
  }
  throttle "paced" {
    from  = first
    rate  = 20
    per   = "1s"
    burst = 1
  }
  sink "some" {
    from = paced
    kind = "file"
    path = "some.jsonl"
  }
`
	if every {
		flow += `  sink "every" {
    from = in
    kind = "file"
    path = "every.jsonl"
  }
`
	}
	return flow + "}\n"
}

// writeIDs writes n lines {"id":I,"level":"INFO","msg":"hello world"} and
// returns the file's size and its longest line.
func writeIDs(t *testing.T, path string, n int) (size int64, longest int) {
	t.Helper()
	var buf []byte
	for i := range n {
		start := len(buf)
		buf = appendLine(buf, i, "INFO", "hello world")
		longest = max(longest, len(buf)-start)
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	return int64(len(buf)), longest
}

// checkIDs checks that path holds the records with id 0 to n-1, in order.
func checkIDs(t *testing.T, path string, n int) {
	t.Helper()
	recs := readJSONL(t, path)
	if len(recs) != n {
		t.Fatalf("%s has %d records, want %d", filepath.Base(path), len(recs), n)
	}
	for i, rec := range recs {
		if id, _ := rec["id"].(float64); int(id) != i {
			t.Fatalf("%s line %d = %v, want id %d", filepath.Base(path), i+1, rec, i)
		}
	}
}

// takeStopsTheFileSource: taking 10 lines of a 200 000-line file
// writes 10 lines, and the file source stops after at most 10 plus the
// in-flight bound lines: its checkpoint (the byte offset before which every
// line is finished) lies within that many lines of the start, a small
// fraction of the file (before, the source read the whole file, 42 MB in
// the case). The reader's read-ahead buffer does not count here:
// the checkpoint covers only lines handed on and acknowledged.
func takeStopsTheFileSource(t *testing.T, bin string) {
	const lines, count = 200_000, 10
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	size, longest := writeIDs(t, in, lines)
	if err := os.WriteFile(filepath.Join(dir, "p.flow"), []byte(takeFlow(false)), 0o644); err != nil {
		t.Fatal(err)
	}
	bound := plannedBound(t, bin, dir, "p.flow")
	r := runIn(t, bin, dir, "run", "--log-format", "json", "p.flow")
	read, written := r.finished(t)

	checkIDs(t, filepath.Join(dir, "some.jsonl"), count)
	if written != count {
		t.Errorf("records_out=%d, want %d", written, count)
	}
	offset := checkpointOffset(t, []byte(r.log))
	done := countLinesBefore(t, in, offset)
	limit := count + bound + flowruntime.DefaultBatchSize
	t.Logf("file of %d bytes (%d lines of at most %d bytes): records_in=%d, checkpoint at byte %d (%d lines); plan bound %d, limit %d lines",
		size, lines, longest, read, offset, done, bound, limit)
	if read > limit {
		t.Errorf("the file source read %d records; want at most %d (count %d + memory bound %d + one batch %d)",
			read, limit, count, bound, flowruntime.DefaultBatchSize)
	}
	if int64(done) > limit || offset > limit*int64(longest) {
		t.Errorf("checkpoint at byte %d (%d lines); want at most %d lines, %d bytes", offset, done, limit, limit*int64(longest))
	}
	if done < count {
		t.Errorf("checkpoint at byte %d covers %d lines, fewer than the %d written", offset, done, count)
	}
	if offset*10 > size {
		t.Errorf("checkpoint at byte %d of %d: the source read on long after the take finished", offset, size)
	}
}

// takeOnOneBranchStopsNothing: when another reader of the source
// still wants every record (a broadcast fanout to a take and to a sink),
// the finished take stops nothing: the other sink gets the whole file and
// the source's checkpoint is its end.
func takeOnOneBranchStopsNothing(t *testing.T, bin string) {
	const lines, count = 200_000, 10
	dir := t.TempDir()
	size, _ := writeIDs(t, filepath.Join(dir, "in.jsonl"), lines)
	if err := os.WriteFile(filepath.Join(dir, "p.flow"), []byte(takeFlow(true)), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runIn(t, bin, dir, "run", "--log-format", "json", "p.flow")
	read, written := r.finished(t)

	checkIDs(t, filepath.Join(dir, "some.jsonl"), count)
	checkIDs(t, filepath.Join(dir, "every.jsonl"), lines)
	if read != lines || written != lines+count {
		t.Errorf("records_in=%d records_out=%d, want %d and %d", read, written, lines, lines+count)
	}
	if offset := checkpointOffset(t, []byte(r.log)); offset != size {
		t.Errorf("checkpoint at byte %d, want the end of the file, %d", offset, size)
	}
}
