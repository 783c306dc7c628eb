package optest

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BuildFlowrun builds the flowrun command (cmd/flowrun of this module) into
// a temporary directory and returns the binary's path, for tests that run
// whole flowrun processes.
func BuildFlowrun(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "flowrun")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/flowrun")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(out)))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/flowrun: %v\n%s", err, out)
	}
	return bin
}

// Eventually polls cond every 20ms until it holds, failing the test after
// timeout.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
