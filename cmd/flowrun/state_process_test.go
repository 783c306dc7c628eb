package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// These tests run the built binary with --state-dir, kill it with SIGKILL
// and run it again, the way a crash and a restart happen.

const crashFlow = `
pipeline "crash" {
  source "in" {
    kind  = "file"
    path  = "in.jsonl"
    codec = "json"
  }
  filter "some" {
    from  = in
    where = id % 3 != 1
  }
  map "tag" {
    from = some
    set {
      w = v + "!"
    }
  }
  sink "out" {
    from = tag
    kind = "file"
    path = "out.jsonl"
  }
}
`

// crashDir writes the crash pipeline and its input of n lines into a new
// directory.
func crashDir(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "{\"id\":%d,\"v\":\"x%d\"}\n", i, i%97)
	}
	for name, data := range map[string][]byte{"p.flow": []byte(crashFlow), "in.jsonl": b.Bytes()} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runOK runs `flowrun run --log-format json ARGS` in dir to its end,
// which must be a success, and returns its log.
func runOK(t *testing.T, bin, dir string, args ...string) string {
	t.Helper()
	r := runIn(t, bin, dir, append([]string{"run", "--log-format", "json"}, args...)...)
	if r.code != 0 {
		t.Fatalf("flowrun run %v: exit %d\n%s", args, r.code, r.log)
	}
	return r.log
}

func TestRunStateSurvivesKill9(t *testing.T) {
	bin := buildFlowrun(t)
	dir := crashDir(t, 2_000_000)
	// The output of one uninterrupted run, without state.
	runOK(t, bin, dir, "p.flow")
	want, err := os.ReadFile(filepath.Join(dir, "out.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "out.jsonl")); err != nil {
		t.Fatal(err)
	}

	args := []string{"run", "--state-dir", "state", "--checkpoint-interval", "20ms", "--log-level", "warn", "p.flow"}
	killedMidRun := 0
	for i := range 10 {
		var stderr bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Stderr = dir, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			// The run reached the end before the kill.
			if err != nil {
				t.Fatalf("run %d: %v\n%s", i, err, stderr.String())
			}
			continue
		case <-time.After(time.Duration(20+rand.IntN(300)) * time.Millisecond):
		}
		_ = cmd.Process.Kill()
		if err := <-exited; exitCode(err) == 0 {
			continue // it ended just before the kill
		}
		killedMidRun++
		if stderr.Len() > 0 {
			t.Logf("run %d, killed: %s", i, stderr.String())
		}
	}
	if killedMidRun == 0 {
		t.Fatal("no run was killed before its end: the input is too small for this machine")
	}
	runOK(t, bin, dir, "--state-dir", "state", "p.flow")
	got, err := os.ReadFile(filepath.Join(dir, "out.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("after %d kills the output has %d lines (%d bytes), want the %d lines (%d bytes) of one run; first difference at byte %d",
			killedMidRun, bytes.Count(got, []byte("\n")), len(got), bytes.Count(want, []byte("\n")), len(want), firstDiff(got, want))
	}
	// The finished pipeline run again reads and writes nothing more.
	log := runOK(t, bin, dir, "--state-dir", "state", "p.flow")
	if e, ok := findLog(log, "pipeline finished"); !ok || e.int("records_in") != 0 || e.int("records_out") != 0 {
		t.Errorf("a run after the end: %v, want records_in=0 records_out=0\n%s", e, log)
	}
	again, _ := os.ReadFile(filepath.Join(dir, "out.jsonl"))
	if !bytes.Equal(again, want) {
		t.Errorf("a run after the end changed the output")
	}
	t.Logf("%d of 10 runs killed mid-run; the output is that of one run", killedMidRun)
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestRunRefusesUnusableState(t *testing.T) {
	bin := buildFlowrun(t)
	for _, tc := range []struct {
		name    string
		corrupt func(data []byte) []byte
		want    string
	}{
		{"truncated", func(d []byte) []byte { return d[:len(d)/2] }, "truncated"},
		{"random bytes", func(d []byte) []byte {
			r := rand.New(rand.NewPCG(1, 2))
			for i := range d {
				d[i] = byte(r.Uint32())
			}
			return d
		}, "not a flowrun state file"},
		{"one byte changed", func(d []byte) []byte { d[len(d)-3] ^= 0x20; return d }, "checksum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := crashDir(t, 1000)
			runOK(t, bin, dir, "--state-dir", "state", "p.flow")
			snapshot := filepath.Join(dir, "state", "crash", "snapshot")
			data, err := os.ReadFile(snapshot)
			if err != nil {
				t.Fatal(err)
			}
			bad := tc.corrupt(bytes.Clone(data))
			if err := os.WriteFile(snapshot, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd := exec.Command(bin, "run", "--state-dir", "state", "p.flow")
			cmd.Dir, cmd.Stderr = dir, &stderr
			err = cmd.Run()
			if code := exitCode(err); code != 1 {
				t.Fatalf("exit %d, want 1\n%s", code, stderr.String())
			}
			named := filepath.Join("state", "crash", "snapshot") // as --state-dir gave it
			if msg := stderr.String(); !strings.Contains(msg, "state file "+named) || !strings.Contains(msg, tc.want) {
				t.Errorf("stderr does not name %s and say %q:\n%s", named, tc.want, msg)
			}
			if after, _ := os.ReadFile(snapshot); !bytes.Equal(after, bad) {
				t.Errorf("the unusable state file was overwritten")
			}
		})
	}
}

// TestRunStateKeepsOutputOfSourcesThatCannotReplay: stdin cannot read again
// what came after the last snapshot, so after a SIGKILL the file sink keeps
// what it wrote since instead of cutting it back.
func TestRunStateKeepsOutputOfSourcesThatCannotReplay(t *testing.T) {
	bin := buildFlowrun(t)
	dir := t.TempDir()
	flow := `pipeline "lines" {
  source "in" {
    kind  = "stdin"
    codec = "json"
  }
  sink "out" {
    from = in
    kind = "file"
    path = "out.jsonl"
  }
}
`
	if err := os.WriteFile(filepath.Join(dir, "p.flow"), []byte(flow), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.jsonl")
	lines := func() int { data, _ := os.ReadFile(out); return bytes.Count(data, []byte("\n")) }
	// The only snapshot is the one taken as the run starts: both lines
	// are written after it.
	cmd := exec.Command(bin, "run", "--state-dir", "state", "--checkpoint-interval", "1h", "p.flow")
	cmd.Dir = dir
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	snapshot := filepath.Join(dir, "state", "lines", "snapshot")
	fmt.Fprintln(stdin, `{"n":1}`)
	eventually(t, "the first line written and a snapshot saved", &stderr, func() bool {
		_, err := os.Stat(snapshot)
		return lines() == 1 && err == nil
	})
	saved, _ := os.ReadFile(snapshot)
	fmt.Fprintln(stdin, `{"n":2}`)
	eventually(t, "the second line written", &stderr, func() bool { return lines() == 2 })
	_ = cmd.Process.Kill()
	_ = cmd.Wait()

	again := exec.Command(bin, "run", "--state-dir", "state", "p.flow")
	again.Dir = dir
	again.Stdin = strings.NewReader("{\"n\":3}\n")
	if msg, err := again.CombinedOutput(); err != nil {
		t.Fatalf("restart: %v\n%s", err, msg)
	}
	got, _ := os.ReadFile(out)
	if want := "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n"; string(got) != want {
		t.Errorf("after a kill and a restart the output is %q, want %q (first snapshot %d bytes)", got, want, len(saved))
	}
}

const reduceFlow = `
pipeline "counts" {
  source "in" {
    kind  = "file"
    path  = "in.jsonl"
    codec = "json"
  }
  reduce "per_key" {
    from  = in
    init  = 0
    step  = acc + id % 10
    group = v
  }
  sink "out" {
    from = per_key
    kind = "file"
    path = "out.jsonl"
  }
}
`

// TestRunStateKeepsReduceAcrossKill9: file -> reduce (a sum per key) ->
// file, killed with SIGKILL mid-run several times, then run to the end,
// gives the totals of one uninterrupted run.
func TestRunStateKeepsReduceAcrossKill9(t *testing.T) {
	bin := buildFlowrun(t)
	dir := crashDir(t, 1_500_000)
	if err := os.WriteFile(filepath.Join(dir, "r.flow"), []byte(reduceFlow), 0o644); err != nil {
		t.Fatal(err)
	}
	runOK(t, bin, dir, "r.flow")
	want := sortedLines(t, filepath.Join(dir, "out.jsonl"))
	if err := os.Remove(filepath.Join(dir, "out.jsonl")); err != nil {
		t.Fatal(err)
	}
	killed := 0
	for range 6 {
		cmd := exec.Command(bin, "run", "--state-dir", "state", "--checkpoint-interval", "20ms", "--log-level", "warn", "r.flow")
		cmd.Dir = dir
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			if err != nil {
				t.Fatal(err)
			}
			continue
		case <-time.After(time.Duration(30+rand.IntN(200)) * time.Millisecond):
		}
		_ = cmd.Process.Kill()
		if exitCode(<-exited) != 0 {
			killed++
		}
	}
	if killed == 0 {
		t.Fatal("no run was killed before its end")
	}
	runOK(t, bin, dir, "--state-dir", "state", "r.flow")
	if got := sortedLines(t, filepath.Join(dir, "out.jsonl")); !slices.Equal(got, want) {
		t.Errorf("after %d kills the totals are\n%s\nwant those of one run\n%s", killed, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	t.Logf("%d of 6 runs killed mid-run; the totals are those of one run", killed)
}

func sortedLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	slices.Sort(lines)
	return lines
}
