package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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
	w := bufio.NewWriterSize(f, 1<<20)
	var written int64
	for written < size {
		level := "INFO"
		if lines%5 == 0 {
			level = "ERROR"
			errorLines++
		}
		n, _ := fmt.Fprintf(w, "{\"id\":%d,\"level\":%q,\"msg\":\"hello world\"}\n", lines, level)
		written += int64(n)
		lines++
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return lines, errorLines
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

// peakRSS returns the finished child's peak resident set size in bytes.
func peakRSS(t *testing.T, cmd *exec.Cmd) int64 {
	t.Helper()
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Fatal("no rusage for the child process")
	}
	return ru.Maxrss * 1024 // Linux reports kilobytes
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
	if err := cmd.Run(); err != nil {
		t.Fatalf("flowrun run: %v\n%s", err, stderr.String())
	}
	rss := peakRSS(t, cmd)
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
	for sc.Scan() {
		var rec struct {
			ID    int64  `json:"id"`
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("output line %d: %v", n+1, err)
		}
		if rec.ID != int64(n*5) || rec.Level != "ERROR" || rec.Msg != "HELLO WORLD" {
			t.Fatalf("output line %d = %s, want id %d, level ERROR, msg HELLO WORLD", n+1, sc.Bytes(), n*5)
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
