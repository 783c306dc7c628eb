package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// throttledFlow is the case of a drain that a throttle paces: a generator
// fills the edge in front of a throttle, which lets rate records through
// per period.
const throttledFlow = `
pipeline "throttled" {
  edge_capacity = %d
  source "gen" {
    kind = "generate"
  }
  throttle "pace" {
    from = gen
    rate = %d
    per  = "1s"
  }
  sink "out" {
    from = pace
    kind = "file"
    path = "out.jsonl"
  }
}
`

// exitCode is the exit status of a finished child: 0 for a nil error, -1
// when it did not exit normally.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// logEntry is one line of flowrun's JSON log.
type logEntry map[string]any

func (e logEntry) message() string { s, _ := e["@message"].(string); return s }
func (e logEntry) level() string   { s, _ := e["@level"].(string); return s }
func (e logEntry) int(key string) int64 {
	f, _ := e[key].(float64)
	return int64(f)
}

// findLog returns the first entry of a JSON log whose message starts with
// prefix.
func findLog(log string, prefix string) (logEntry, bool) {
	for _, line := range strings.Split(log, "\n") {
		var e logEntry
		if json.Unmarshal([]byte(line), &e) == nil && strings.HasPrefix(e.message(), prefix) {
			return e, true
		}
	}
	return nil, false
}

// outputSeqs reads the whole lines of out.jsonl and checks they are the
// records seq 0, 1, 2... in order; it returns how many there are.
func outputSeqs(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Fatalf("%s does not end with a whole line", path)
	}
	n := 0
	for l := range bytes.Lines(data) {
		var rec struct{ Seq *int64 }
		if err := json.Unmarshal(l, &rec); err != nil || rec.Seq == nil || *rec.Seq != int64(n) {
			t.Fatalf("output line %d = %q, want seq %d", n+1, l, n)
		}
		n++
	}
	return n
}

// startThrottled starts `flowrun run` on throttledFlow with extra flags,
// and waits until the throttle has let a record through, so that the rest
// of the generator's records are queued in front of it.
func startThrottled(t *testing.T, capacity, rate int, flags ...string) (dir string, stderr *lockedBuffer, exited <-chan error, cmd *exec.Cmd) {
	t.Helper()
	bin := buildFlowrun(t)
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "throttled.flow"), []byte(fmt.Sprintf(throttledFlow, capacity, rate)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(bin, append(append([]string{"run", "--log-format", "json"}, flags...), "throttled.flow")...)
	cmd.Dir = dir
	stderr = &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan error, 1)
	ended := make(chan struct{})
	go func() {
		ch <- cmd.Wait()
		close(ended)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-ended
	})
	eventually(t, "the first record to pass the throttle", stderr, func() bool {
		out, _ := os.ReadFile(filepath.Join(dir, "out.jsonl"))
		return bytes.Contains(out, []byte("\n"))
	})
	return dir, stderr, ch, cmd
}

// waitExit waits for the child to exit after a stop, for at most a
// generous bound, and returns its exit code.
func waitExit(t *testing.T, exited <-chan error, stderr *lockedBuffer, within time.Duration) int {
	t.Helper()
	select {
	case err := <-exited:
		return exitCode(err)
	case <-time.After(within):
		t.Fatalf("flowrun still running %s after SIGTERM\n%s", within, stderr)
		return 0
	}
}

// TestRunDrainTimeoutBoundsAThrottledDrain: Ctrl-C on a generator feeding
// `throttle { rate = 1, per = "1s" }` would drain the queued records at one
// a second (17 minutes for the 1024 an edge holds). With --drain-timeout 1s
// the drain is cut short: the run is killed, logs what it abandoned, and
// exits 1; the source's checkpoint does not pass what was written.
func TestRunDrainTimeoutBoundsAThrottledDrain(t *testing.T) {
	dir, stderr, exited, cmd := startThrottled(t, 1024, 1, "--drain-timeout", "1s")
	signalled := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code := waitExit(t, exited, stderr, 30*time.Second)
	t.Logf("exit %d, %s after SIGTERM", code, time.Since(signalled).Round(time.Millisecond))
	if code != 1 {
		t.Errorf("exit %d after a drain timeout, want 1\n%s", code, stderr)
	}
	log := stderr.String()

	start, ok := findLog(log, "signal: stopping sources and draining")
	if !ok {
		t.Fatalf("no log of the drain's start:\n%s", log)
	}
	if start.int("in_flight") <= 0 || start["drain_timeout"] != "1s" {
		t.Errorf("drain start logged in_flight=%v drain_timeout=%v, want records in flight and 1s", start["in_flight"], start["drain_timeout"])
	}
	end, ok := findLog(log, "drain timed out: the records in flight")
	if !ok {
		t.Fatalf("no log of the drain timeout:\n%s", log)
	}
	if end.level() != "error" || end.int("abandoned") <= 0 || end["drain_timeout"] != "1s" {
		t.Errorf("drain timeout logged %v, want level error, abandoned > 0 and drain_timeout 1s", end)
	}
	if p, ok := findLog(log, "drain timed out: pipeline killed"); !ok || p["pipeline"] != "throttled" || p.int("abandoned") != end.int("abandoned") {
		t.Errorf("the pipeline's drain timeout logged %v, want pipeline throttled and abandoned %d", p, end.int("abandoned"))
	}

	written := outputSeqs(t, filepath.Join(dir, "out.jsonl"))
	cp, ok := findLog(log, "source checkpoint")
	if !ok {
		t.Fatalf("no source checkpoint in the log:\n%s", log)
	}
	t.Logf("in flight at the signal %d, abandoned %d, written %d, checkpoint %d", start.int("in_flight"), end.int("abandoned"), written, cp.int("checkpoint"))
	// Nothing abandoned is acknowledged: a resumed run starts again at
	// or before the first record not written.
	if c := cp.int("checkpoint"); c > int64(written) {
		t.Errorf("source checkpoint %d passes the %d records written", c, written)
	}
}

// TestRunDrainWithinTimeoutExitsZero: a drain that ends within the timeout
// (the default, no flag) writes every record the source sent and exits 0,
// and the source's checkpoint is exactly what was written.
func TestRunDrainWithinTimeoutExitsZero(t *testing.T) {
	dir, stderr, exited, cmd := startThrottled(t, 64, 1000)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, exited, stderr, 30*time.Second); code != 0 {
		t.Fatalf("exit %d after a drain that can finish, want 0\n%s", code, stderr)
	}
	log := stderr.String()
	start, ok := findLog(log, "signal: stopping sources and draining")
	if !ok || start["drain_timeout"] != "30s" {
		t.Errorf("drain start logged %v, want drain_timeout 30s (the default)", start)
	}
	if strings.Contains(log, "abandoned") {
		t.Errorf("a drain that finished logged abandoned records:\n%s", log)
	}
	written := outputSeqs(t, filepath.Join(dir, "out.jsonl"))
	cp, ok := findLog(log, "source checkpoint")
	if !ok {
		t.Fatalf("no source checkpoint in the log:\n%s", log)
	}
	t.Logf("in flight at the signal %d, written %d, checkpoint %d", start.int("in_flight"), written, cp.int("checkpoint"))
	if c := cp.int("checkpoint"); c != int64(written) {
		t.Errorf("source checkpoint %d, but %d records written: want them equal", c, written)
	}
}
