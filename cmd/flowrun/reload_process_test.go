package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer is a child's stderr, read while the child writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

const reloadFlow = `pipeline "follow" {
  source "in" {
    kind          = "file"
    path          = "in.log"
    follow        = true
    poll_interval = "2ms"
  }
  map "version" {
    from = in
    set { v = %q }
  }
  sink "out" {
    from = version
    kind = "file"
    path = "out.jsonl"
  }
}
`

// outputVersions reads out.jsonl: the line and v of every whole record.
func outputVersions(t *testing.T, path string) (lines []string, versions []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil
	}
	for l := range bytes.Lines(data) {
		if !bytes.HasSuffix(l, []byte("\n")) {
			break
		}
		var rec struct{ Line, V string }
		if err := json.Unmarshal(l, &rec); err != nil {
			t.Fatalf("output line %q: %v", l, err)
		}
		lines = append(lines, rec.Line)
		versions = append(versions, rec.V)
	}
	return lines, versions
}

func eventually(t *testing.T, what string, stderr *lockedBuffer, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s\n%s", what, stderr)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestRunReloads runs the built flowrun on a followed file that grows while
// the pipeline is edited, reloading on SIGHUP (without --watch) or on the
// watcher (with --watch, where a new .flow file also starts its pipeline):
// every input line reaches the output exactly once, in order, each
// transformed by one version, and an invalid edit is reported and changes
// nothing.
func TestRunReloads(t *testing.T) {
	bin := buildFlowrun(t)
	for _, watch := range []bool{false, true} {
		t.Run(fmt.Sprintf("watch=%t", watch), func(t *testing.T) {
			dir := t.TempDir()
			flow := filepath.Join(dir, "follow.flow")
			if err := os.WriteFile(flow, []byte(fmt.Sprintf(reloadFlow, "A")), 0o644); err != nil {
				t.Fatal(err)
			}
			in, err := os.Create(filepath.Join(dir, "in.log"))
			if err != nil {
				t.Fatal(err)
			}
			args := []string{"run", "follow.flow"}
			if watch {
				args = []string{"run", "--watch", "."}
			}
			cmd := exec.Command(bin, args...)
			cmd.Dir = dir
			stderr := &lockedBuffer{}
			cmd.Stderr = stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()

			written := 0
			appendLines := func(k int) {
				for range k {
					fmt.Fprintf(in, "%d\n", written)
					written++
				}
			}
			out := filepath.Join(dir, "out.jsonl")
			reload := func() {
				if !watch {
					if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
						t.Fatal(err)
					}
				}
			}
			appendLines(3)
			eventually(t, "the first records", stderr, func() bool { l, _ := outputVersions(t, out); return len(l) == written })
			if watch {
				eventually(t, "the watcher", stderr, func() bool { return strings.Contains(stderr.String(), "watching for changes") })
			}

			version := "A"
			for round := range 6 {
				if round == 3 {
					if err := os.WriteFile(flow, []byte(strings.Replace(reloadFlow, "%q", `lowr("x")`, 1)), 0o644); err != nil {
						t.Fatal(err)
					}
					reload()
					eventually(t, "the invalid edit to be reported", stderr, func() bool {
						return strings.Contains(stderr.String(), `Did you mean "lower"?`)
					})
					appendLines(3)
					eventually(t, "records after the invalid edit", stderr, func() bool { l, _ := outputVersions(t, out); return len(l) == written })
				}
				version = map[string]string{"A": "B", "B": "A"}[version]
				if err := os.WriteFile(flow, []byte(fmt.Sprintf(reloadFlow, version)), 0o644); err != nil {
					t.Fatal(err)
				}
				reload()
				eventually(t, "the handover", stderr, func() bool {
					return strings.Count(stderr.String(), "pipeline changed") == round+1
				})
				appendLines(3)
				eventually(t, "records of the new version", stderr, func() bool { l, _ := outputVersions(t, out); return len(l) == written })
			}
			if watch {
				extra := fmt.Sprintf(strings.NewReplacer(`"follow"`, `"extra"`, "in.log", "extra.log", "out.jsonl", "extra.jsonl").Replace(reloadFlow), "X")
				if err := os.WriteFile(filepath.Join(dir, "extra.log"), []byte("e0\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "extra.flow"), []byte(extra), 0o644); err != nil {
					t.Fatal(err)
				}
				eventually(t, "the new file's pipeline to run", stderr, func() bool {
					l, _ := outputVersions(t, filepath.Join(dir, "extra.jsonl"))
					return len(l) == 1
				})
			}
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("flowrun run: %v (want exit 0)\n%s", err, stderr)
			}
			checkHandovers(t, out, written, 6, stderr)
			if n := strings.Count(stderr.String(), "reload rejected"); n != 1 {
				t.Errorf("%d rejected reloads logged, want 1\n%s", n, stderr)
			}
		})
	}
}

// checkHandovers checks that the output file out holds the input's n
// numbered lines once each, in order, and that the version writing them
// changed handovers times.
func checkHandovers(t *testing.T, out string, n, handovers int, stderr *lockedBuffer) {
	t.Helper()
	lines, versions := outputVersions(t, out)
	if len(lines) != n {
		t.Fatalf("the output holds %d records, the input %d lines\n%s", len(lines), n, stderr)
	}
	switches := 0
	for i := range lines {
		if lines[i] != strconv.Itoa(i) {
			t.Fatalf("output record %d is line %q: a line was lost, repeated or cut", i, lines[i])
		}
		if i > 0 && versions[i] != versions[i-1] {
			switches++
		}
	}
	if switches != handovers {
		t.Errorf("the version changed %d times in the output, want %d: %v", switches, handovers, versions)
	}
}
