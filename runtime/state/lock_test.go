package state_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowrun/flowrun/runtime/state"
)

func TestSecondOpenInProcess(t *testing.T) {
	root := t.TempDir()
	d := open(t, root)
	_, err := state.Open(root)
	if !errors.Is(err, state.ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	want := fmt.Sprintf("this process (pid %d)", os.Getpid())
	if msg := err.Error(); !strings.Contains(msg, root) || !strings.Contains(msg, want) {
		t.Errorf("second Open: %q, want the dir and %q named", msg, want)
	}
	d.Close()
	open(t, root)
}

// helper starts the test binary as a helper process on dir (see
// TestMain), waits until it printed ready, and returns it.
func helper(t *testing.T, env, dir, ready string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != ready {
		t.Fatalf("helper printed %q (%v), stderr: %s", line, err, stderr.String())
	}
	return cmd
}

// TestLockHeldByAnotherProcess checks that Open fails while another
// process holds the directory, naming the directory and that process's
// pid, and succeeds once the holder was killed, although its pid is still
// in the lock file.
func TestLockHeldByAnotherProcess(t *testing.T) {
	root := t.TempDir()
	cmd := helper(t, holdEnv, root, "locked")
	_, err := state.Open(root)
	if !errors.Is(err, state.ErrLocked) {
		t.Fatalf("Open while another process holds the lock: %v, want ErrLocked", err)
	}
	want := "another process (pid " + strconv.Itoa(cmd.Process.Pid) + ")"
	if msg := err.Error(); !strings.Contains(msg, root) || !strings.Contains(msg, want) {
		t.Errorf("Open: %q, want %s and %q named", msg, root, want)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if pid, _ := os.ReadFile(filepath.Join(root, "LOCK")); strings.TrimSpace(string(pid)) != strconv.Itoa(cmd.Process.Pid) {
		t.Errorf("lock file holds %q, want the killed holder's pid", pid)
	}
	open(t, root)
}

// TestKillDuringSaves kills a process that saves snapshots without pause,
// with kill -9 at random moments, and checks that every restart loads a
// whole snapshot: the latest one saved, never a torn or mixed one, with
// the temporary file of the interrupted save removed.
func TestKillDuringSaves(t *testing.T) {
	root := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	var last uint64
	torn := 0
	for round := range 10 {
		cmd := helper(t, saveEnv, root, "saving")
		time.Sleep(time.Duration(rng.IntN(60)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		if entries, _ := os.ReadDir(filepath.Join(root, "p")); len(entries) > 1 {
			torn++
		}

		d, err := state.Open(root)
		if err != nil {
			t.Fatal(err)
		}
		s, err := d.Pipeline("p").Load()
		if err != nil {
			t.Fatalf("round %d: Load after kill -9: %v", round, err)
		}
		if s.Sequence < last {
			t.Errorf("round %d: sequence went back from %d to %d", round, last, s.Sequence)
		}
		if want := numbered(s.Sequence); s.Sequence > 0 && !(bytes.Equal(s.Stages["src"], want.Stages["src"]) && bytes.Equal(s.Stages["seen"], want.Stages["seen"]) && s.Time.Equal(want.Time)) {
			t.Errorf("round %d: snapshot %d is not the one saved under its sequence", round, s.Sequence)
		}
		entries, _ := os.ReadDir(filepath.Join(root, "p"))
		if len(entries) > 1 {
			t.Errorf("round %d: after Load the pipeline directory holds %v", round, entries)
		}
		t.Logf("round %d: killed at sequence %d", round, s.Sequence)
		last = s.Sequence
		d.Close()
	}
	t.Logf("%d of 10 kills cut a save short", torn)
}
