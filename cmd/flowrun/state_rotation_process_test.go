package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests run the built binary with --state-dir on files that are
// rotated, or seen from another directory, between two runs: a file source
// finds each file by its identity (device, inode, fingerprint), not its
// path.

// numberedFlow copies the lines of app.log to out.jsonl; %s holds more
// options of the source.
const numberedFlow = `pipeline "logs" {
  source "in" {
    kind = "file"
    path = "app.log"
    %s
  }
  sink "out" {
    from = in
    kind = "file"
    path = "out.jsonl"
  }
}
`

// numberedLines appends the lines "n" for n in [from, to) to path, in
// chunks of chunk lines, pause apart.
func numberedLines(t *testing.T, path string, from, to, chunk int, pause time.Duration) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf []byte
	for n := from; n < to; n++ {
		buf = strconv.AppendInt(buf, int64(n), 10)
		buf = append(buf, '\n')
		if (n+1-from)%chunk == 0 || n == to-1 {
			if _, err := f.Write(buf); err != nil {
				t.Fatal(err)
			}
			buf = buf[:0]
			time.Sleep(pause)
		}
	}
}

// outputLines returns the line field of every whole record of out.jsonl,
// and whether the file ends with a torn one.
func outputLines(t *testing.T, path string) (lines []string, torn bool) {
	t.Helper()
	data, _ := os.ReadFile(path)
	for l := range bytes.Lines(data) {
		if !bytes.HasSuffix(l, []byte("\n")) {
			return lines, true
		}
		var rec struct{ Line string }
		if err := json.Unmarshal(l, &rec); err != nil {
			t.Fatalf("output line %q: %v", l, err)
		}
		lines = append(lines, rec.Line)
	}
	return lines, false
}

// A child is a flowrun run started by startRun.
type child struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan struct{}
	err    error // once done is closed
}

// startRun starts `flowrun run ARGS` in dir, its log kept in stderr; it is
// killed at the end of the test if it still runs.
func startRun(t *testing.T, bin, dir string, args ...string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(bin, append([]string{"run"}, args...)...), stderr: &lockedBuffer{}, done: make(chan struct{})}
	c.cmd.Dir, c.cmd.Stderr = dir, c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		<-c.done
	})
	return c
}

// signal sends sig to the child and waits for it to exit.
func (c *child) signal(t *testing.T, sig os.Signal) error {
	t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	<-c.done
	return c.err
}

// TestRunStateRotationWhileKilled follows a log with --state-dir, kills
// flowrun with SIGKILL while lines stream in, and rotates the log while it
// is down (lines appended to app.log, app.log renamed to app.log.1, a new
// app.log with more lines), twice: after each restart every line of every
// file is in the output exactly once, in order, and none is torn.
func TestRunStateRotationWhileKilled(t *testing.T) {
	bin := buildFlowrun(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.flow"), []byte(fmt.Sprintf(numberedFlow, "follow = true\n    poll_interval = \"5ms\"")), 0o644); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "app.log")
	out := filepath.Join(dir, "out.jsonl")
	args := []string{"--state-dir", "state", "--checkpoint-interval", "20ms", "p.flow"}
	written := 0
	write := func(path string, n, chunk int, pause time.Duration) {
		numberedLines(t, path, written, written+n, chunk, pause)
		written += n
	}
	write(log, 20_000, 20_000, 0)
	for round := 1; round <= 2; round++ {
		// Lines stream in while flowrun runs; it is killed in the midst.
		run := startRun(t, bin, dir, args...)
		snapshot := filepath.Join(dir, "state", "logs", "snapshot")
		eventually(t, "some output and a snapshot", run.stderr, func() bool {
			lines, _ := outputLines(t, out)
			_, err := os.Stat(snapshot)
			return len(lines) > 0 && err == nil
		})
		write(log, 5_000+rand.IntN(5_000), 500, time.Millisecond)
		_ = run.signal(t, syscall.SIGKILL)
		before, torn := outputLines(t, out)
		t.Logf("round %d: killed with %d of %d lines written (a torn last record: %t)", round, len(before), written, torn)

		// While it is down: more lines in the old file, a rotation
		// (app.log.1 → app.log.2 the second time), a new file.
		write(log, 3_000, 3_000, 0)
		if round == 2 {
			if err := os.Rename(log+".1", log+".2"); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Rename(log, log+".1"); err != nil {
			t.Fatal(err)
		}
		write(log, 4_000, 4_000, 0)

		run = startRun(t, bin, dir, args...)
		eventually(t, "every line in the output", run.stderr, func() bool {
			lines, _ := outputLines(t, out)
			return len(lines) >= written
		})
		if err := run.signal(t, syscall.SIGTERM); err != nil {
			t.Fatalf("round %d: the restarted run: %v\n%s", round, err, run.stderr)
		}
		lines, torn := outputLines(t, out)
		if torn || len(lines) != written {
			t.Fatalf("round %d: the output holds %d records (torn: %t), the input %d lines\n%s", round, len(lines), torn, written, run.stderr)
		}
		for i, l := range lines {
			if l != strconv.Itoa(i) {
				t.Fatalf("round %d: output record %d is line %q: a line was lost or repeated\n%s", round, i, l, run.stderr)
			}
		}
		if !strings.Contains(run.stderr.String(), "file rotated while flowrun was stopped") {
			t.Errorf("round %d: the rotation is not logged:\n%s", round, run.stderr)
		}
	}
}

// TestRunStateFromAnotherDirectory runs a pipeline with --state-dir from
// its own directory, then from its parent (`flowrun run sub/p.flow`): the
// second run finds the file's position though its path reads otherwise,
// and reads only what was added.
func TestRunStateFromAnotherDirectory(t *testing.T) {
	bin := buildFlowrun(t)
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, "p.flow"), []byte(fmt.Sprintf(numberedFlow, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(sub, "app.log")
	numberedLines(t, log, 0, 1000, 1000, 0)
	state := filepath.Join(dir, "state")
	runOK(t, bin, sub, "--state-dir", state, "p.flow")
	numberedLines(t, log, 1000, 1500, 500, 0)
	r := runOK(t, bin, dir, "--state-dir", "state", "sub/p.flow")
	if e, ok := findLog(r, "pipeline finished"); !ok || e.int("records_in") != 500 {
		t.Errorf("the run from the parent directory: %v, want records_in=500\n%s", e, r)
	}
	lines, torn := outputLines(t, filepath.Join(sub, "out.jsonl"))
	want := make([]string, 1500)
	for i := range want {
		want[i] = strconv.Itoa(i)
	}
	if torn || fmt.Sprint(lines) != fmt.Sprint(want) {
		t.Errorf("the output holds %d records (torn: %t), want the 1500 lines once each, in order", len(lines), torn)
	}
}
