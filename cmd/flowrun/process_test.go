package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// These tests run the built flowrun binary as a child process, the way users
// run it, and look at what only a whole process shows: its peak memory and
// its behaviour on signals.

// buildFlowrun compiles the command into dir and returns the binary's path.
func buildFlowrun(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "flowrun")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// writeJSONL writes lines {"id":N,"level":...,"msg":"hello world"} until
// the file holds at least size bytes, every fifth line an ERROR, and
// returns the number of lines and of ERROR lines.
func writeJSONL(t *testing.T, path string, size int64) (lines, errorLines int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 1<<20)
	var written int64
	for written < size {
		buf = buf[:0]
		for len(buf) < 1<<20-100 && written+int64(len(buf)) < size {
			level := "INFO"
			if lines%5 == 0 {
				level = "ERROR"
				errorLines++
			}
			buf = appendLine(buf, lines, level, "hello world")
			lines++
		}
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
		written += int64(len(buf))
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return lines, errorLines
}

// appendLine appends the JSON line of one record, keys in the sorted order
// flowrun writes them.
func appendLine(buf []byte, id int, level, msg string) []byte {
	buf = append(buf, `{"id":`...)
	buf = strconv.AppendInt(buf, int64(id), 10)
	buf = append(buf, `,"level":"`...)
	buf = append(buf, level...)
	buf = append(buf, `","msg":"`...)
	buf = append(buf, msg...)
	return append(buf, "\"}\n"...)
}

const fileToFilePipeline = `
pipeline "big" {
  source "in" {
    kind  = "file"
    path  = "in.jsonl"
    codec = "json"
  }
  filter "errors" {
    from  = in
    where = level == "ERROR"
  }
  map "shout" {
    from = errors
    set {
      msg = upper(msg)
    }
  }
  sink "out" {
    from = shout
    kind = "file"
    path = "out.jsonl"
  }
}
`

// watchPeakRSS samples the child's peak resident set size (VmHWM in
// /proc/PID/status) until it exits, and returns a function that stops
// sampling and reports the peak in bytes. The rusage Maxrss of a child is no
// use here: Go starts children with vfork semantics, so it also counts this
// test process's own memory from before the exec (tens of MiB under -race).
func watchPeakRSS(t *testing.T, pid int) func() int64 {
	t.Helper()
	stop := make(chan struct{})
	done := make(chan int64)
	go func() {
		var peak int64
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if hwm, ok := vmHWM(pid); ok && hwm > peak {
				peak = hwm
			}
			select {
			case <-stop:
				done <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return func() int64 {
		close(stop)
		return <-done
	}
}

// vmHWM reads a process's peak resident set size in bytes.
func vmHWM(pid int) (int64, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err == nil {
				return kb * 1024, true
			}
		}
	}
	return 0, false
}

func TestRunKeepsMemoryFlatOnLargeInput(t *testing.T) {
	bin := buildFlowrun(t)
	dir := t.TempDir()
	lines, errorLines := writeJSONL(t, filepath.Join(dir, "in.jsonl"), 500<<20)
	if err := os.WriteFile(filepath.Join(dir, "big.flow"), []byte(fileToFilePipeline), 0o644); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(bin, "run", "--log-level", "warn", "big.flow")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	peak := watchPeakRSS(t, cmd.Process.Pid)
	// Read the peak while the child still exists: wait for it to exit
	// without reaping it, sample once more, then reap.
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatal(err)
	}
	rss := peak()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("flowrun run: %v\n%s", err, stderr.String())
	}
	t.Logf("%d lines (500 MiB) in %s, peak RSS %.1f MiB", lines, time.Since(start).Round(time.Millisecond), float64(rss)/(1<<20))
	if rss > 64<<20 {
		t.Errorf("peak RSS %.1f MiB, want at most 64 MiB", float64(rss)/(1<<20))
	}

	out, err := os.Open(filepath.Join(dir, "out.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	sc := bufio.NewScanner(out)
	n := 0
	var want []byte
	for sc.Scan() {
		want = appendLine(want[:0], n*5, "ERROR", "HELLO WORLD")
		if !bytes.Equal(sc.Bytes(), want[:len(want)-1]) {
			t.Fatalf("output line %d = %s, want %s", n+1, sc.Bytes(), want)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n != errorLines {
		t.Errorf("output has %d lines, want %d", n, errorLines)
	}
}

func TestRunDrainsOnSIGTERM(t *testing.T) {
	bin := buildFlowrun(t)
	dir := t.TempDir()
	lines, _ := writeJSONL(t, filepath.Join(dir, "in.jsonl"), 200<<20)
	pipeline := strings.Replace(fileToFilePipeline, `where = level == "ERROR"`, `where = true`, 1)
	if err := os.WriteFile(filepath.Join(dir, "big.flow"), []byte(pipeline), 0o644); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(bin, "run", "--log-format", "json", "big.flow")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the run is well under way, then ask it to stop.
	deadline := time.Now().Add(time.Minute)
	for {
		if fi, err := os.Stat(filepath.Join(dir, "out.jsonl")); err == nil && fi.Size() > 4<<20 {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("no output after a minute\n%s", stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("flowrun run after SIGTERM: %v (want exit 0)\n%s", err, stderr.String())
	}

	data, err := os.ReadFile(filepath.Join(dir, "out.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(data) == 0 || data[len(data)-1] != '\n' {
		t.Fatalf("output does not end with a whole line")
	}
	outLines := bytes.Split(data[:len(data)-1], []byte("\n"))
	for i, l := range outLines {
		var rec struct{ ID int64 }
		if err := json.Unmarshal(l, &rec); err != nil || rec.ID != int64(i) {
			t.Fatalf("output line %d = %q, want the record with id %d", i+1, l, i)
		}
	}
	if len(outLines) >= lines {
		t.Fatalf("the whole input (%d lines) was written: the signal came too late to test a drain", lines)
	}

	// The source logs the checkpoint it stopped at: every line before that
	// byte offset must be in the output.
	offset := checkpointOffset(t, stderr.Bytes())
	acked := countLinesBefore(t, filepath.Join(dir, "in.jsonl"), offset)
	t.Logf("stopped after %d of %d lines; source checkpoint at byte %d (%d lines)", len(outLines), lines, offset, acked)
	if acked == 0 {
		t.Fatalf("the source acknowledged nothing\n%s", stderr.String())
	}
	if len(outLines) < acked {
		t.Errorf("output has %d lines but the source acknowledged %d", len(outLines), acked)
	}
}

// checkpointOffset finds the file source's "checkpoint" log entry in the
// JSON log and returns its offset.
func checkpointOffset(t *testing.T, log []byte) int64 {
	t.Helper()
	for _, line := range bytes.Split(log, []byte("\n")) {
		var entry struct {
			Message    string `json:"@message"`
			Checkpoint []struct {
				Offset int64 `json:"offset"`
			} `json:"checkpoint"`
		}
		if json.Unmarshal(line, &entry) == nil && entry.Message == "source checkpoint" && len(entry.Checkpoint) == 1 {
			return entry.Checkpoint[0].Offset
		}
	}
	t.Fatalf("no checkpoint in the log:\n%s", log)
	return 0
}

func countLinesBefore(t *testing.T, path string, offset int64) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if offset > int64(len(data)) {
		t.Fatalf("checkpoint offset %d is past the end of the input (%d bytes)", offset, len(data))
	}
	if offset > 0 && data[offset-1] != '\n' {
		t.Fatalf("checkpoint offset %d is not at a line boundary", offset)
	}
	return bytes.Count(data[:offset], []byte("\n"))
}

// TestRunSecondSignalStopsAtOnce: a pipeline whose drain cannot finish (a
// throttle of one record an hour holds a full edge) keeps draining after the
// first SIGTERM, and stops at once on the second.
func TestRunSecondSignalStopsAtOnce(t *testing.T) {
	bin := buildFlowrun(t)
	dir := t.TempDir()
	const slow = `
pipeline "slow" {
  source "gen" {
    kind = "generate"
  }
  throttle "crawl" {
    from  = gen
    rate  = 1
    per   = "1h"
    burst = 1
  }
  sink "out" {
    from = crawl
    kind = "file"
    path = "out.jsonl"
  }
}
`
	if err := os.WriteFile(filepath.Join(dir, "slow.flow"), []byte(slow), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "slow.flow")
	cmd.Dir = dir
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// The throttle's burst lets the first record through at once: once it
	// is written, the rest of its batch waits in the throttle's edge.
	eventually(t, "the first record to pass the throttle", stderr, func() bool {
		out, _ := os.ReadFile(filepath.Join(dir, "out.jsonl"))
		return len(out) > 0
	})

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the drain to begin", stderr, func() bool { return strings.Contains(stderr.String(), "stopping sources and draining") })
	select {
	case err := <-exited:
		t.Fatalf("flowrun exited (%v) although its drain cannot finish\n%s", err, stderr)
	case <-time.After(300 * time.Millisecond):
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		// What was in flight is abandoned: the run did not finish it.
		if code := exitCode(err); code != 1 {
			t.Errorf("flowrun after the second signal: %v, want exit 1\n%s", err, stderr)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("flowrun still running 10 s after the second signal\n%s", stderr)
	}
	for _, want := range []string{
		// Without --drain-timeout, the default bounds the drain.
		"stopping sources and draining: signal=terminated in_flight=",
		"drain_timeout=30s",
		"second signal: stopping at once",
		"[ERROR] flowrun: stopped at once: the records in flight were abandoned",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("no %q in the log:\n%s", want, stderr)
		}
	}
}
