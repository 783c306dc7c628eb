package optest

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
