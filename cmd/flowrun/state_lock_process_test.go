package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const stdinStateFlow = `
pipeline "lines" {
  source "in" {
    kind = "stdin"
  }
  sink "out" {
    from = in
    kind = "file"
    path = "out.txt"
  }
}
`

// TestStateResetRefusesWhileRunning runs the built binary on a pipeline
// reading its stdin, held open, with a state dir: while it runs, `state
// show` shows its state and `state reset` fails naming the run's pid and
// leaves the state as it is; once the run ended, reset forgets it.
func TestStateResetRefusesWhileRunning(t *testing.T) {
	bin := buildFlowrun(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.flow"), []byte(stdinStateFlow), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--state-dir", "state", "--checkpoint-interval", "10ms", "--log-level", "warn", "p.flow")
	cmd.Dir = dir
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()
	if _, err := io.WriteString(stdin, "one\ntwo\n"); err != nil {
		t.Fatal(err)
	}
	// The run holds the lock, and has saved a snapshot with what it wrote.
	snapshot := filepath.Join(dir, "state", "lines", "snapshot")
	eventually(t, "a snapshot of the two lines written", stderr, func() bool {
		r := runIn(t, bin, dir, "state", "show", "state")
		return r.code == 0 && strings.Contains(string(r.stdout), `  out  {"size":30}`)
	})
	before, err := os.ReadFile(snapshot)
	if err != nil {
		t.Fatal(err)
	}

	pid := strconv.Itoa(cmd.Process.Pid)
	for _, args := range [][]string{{"state", "reset", "state"}, {"state", "reset", "state", "--pipeline", "lines"}} {
		r := runIn(t, bin, dir, args...)
		want := fmt.Sprintf("flowrun state reset: state dir state: already in use by another process (pid %s) (lock file %s): stop it before resetting the state, which it keeps saving\n",
			pid, filepath.Join("state", "LOCK"))
		if r.code != 1 || r.log != want {
			t.Errorf("flowrun %s while a run uses the dir: exit %d, stderr\n%s\nwant exit 1, stderr\n%s", strings.Join(args, " "), r.code, r.log, want)
		}
		if len(r.stdout) > 0 {
			t.Errorf("flowrun %s printed %q", strings.Join(args, " "), r.stdout)
		}
	}
	if _, err := os.Stat(snapshot); err != nil {
		t.Fatalf("a refused reset removed the state: %v", err)
	}
	if ended := waitOrNot(exited, 0); ended {
		t.Fatalf("the run ended while its stdin was open\n%s", stderr)
	}

	// The run ends with its stdin; then reset takes the lock and forgets.
	if _, err := io.WriteString(stdin, "three\n"); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("flowrun run: %v\n%s", err, stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the run did not end after its stdin was closed\n%s", stderr)
	}
	after, err := os.ReadFile(snapshot)
	if err != nil {
		t.Fatal(err)
	}
	if string(after) == string(before) {
		t.Errorf("the run saved no snapshot after the refused resets")
	}
	r := runIn(t, bin, dir, "state", "reset", "state")
	if r.code != 0 || string(r.stdout) != "reset pipeline \"lines\": its next run starts afresh\n" {
		t.Errorf("flowrun state reset after the run: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.log)
	}
	if _, err := os.Stat(filepath.Dir(snapshot)); !os.IsNotExist(err) {
		t.Errorf("the pipeline's state is still there after reset: %v", err)
	}
}

// waitOrNot reports whether exited delivers within d, putting back what it
// took.
func waitOrNot(exited chan error, d time.Duration) bool {
	select {
	case err := <-exited:
		exited <- err
		return true
	case <-time.After(d):
		return false
	}
}
