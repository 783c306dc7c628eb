package pgtest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/flowrun/flowrun/operators/postgres/pgtest"
)

// TestRestart starts a server, writes a row, restarts it and reads the row
// back on the same port; the statement log is enabled through Settings.
func TestRestart(t *testing.T) {
	s := pgtest.StartWith(t, pgtest.Options{Settings: map[string]string{"log_statement": "all"}})
	s.Exec(t, "CREATE TABLE t (id int PRIMARY KEY)")
	s.Exec(t, "INSERT INTO t VALUES (42)")
	port := s.Port()
	s.Restart()
	if s.Port() != port {
		t.Fatalf("port changed from %d to %d", port, s.Port())
	}
	c := s.Conn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var id int
	if err := c.QueryRow(ctx, "SELECT id FROM t").Scan(&id); err != nil {
		t.Fatal(err)
	}
	if id != 42 {
		t.Fatalf("read %d after restart, want 42", id)
	}
	if log := s.Log(); !strings.Contains(log, "INSERT INTO t VALUES (42)") {
		t.Errorf("the statement log lacks the INSERT:\n%s", log)
	}
}

// TestBinDirOverride checks that FLOWRUN_PG_BIN names the binaries, and
// that a directory without them is an error, not a silent fallback.
func TestBinDirOverride(t *testing.T) {
	empty := t.TempDir()
	t.Setenv(pgtest.BinDirEnv, empty)
	if dir, err := pgtest.BinDir(); err == nil || !strings.Contains(err.Error(), empty) {
		t.Errorf("BinDir() = %q, %v; want an error naming %s", dir, err, empty)
	}
}

// TestMissingBinaries runs a Start with no binaries in a child test
// process: outside CI it skips, saying why; with CI set it fails.
func TestMissingBinaries(t *testing.T) {
	if os.Getenv("PGTEST_PROBE") != "" {
		pgtest.Start(t)
		t.Fatal("Start returned without binaries")
	}
	for _, tt := range []struct {
		ci       string
		wantFail bool
		want     string
	}{
		{"", false, "--- SKIP: TestMissingBinaries"},
		{"true", true, "CI is set, so this is a failure"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMissingBinaries$", "-test.v")
		cmd.Env = append(os.Environ(), "PGTEST_PROBE=1", pgtest.BinDirEnv+"="+t.TempDir(), "CI="+tt.ci)
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != tt.wantFail || !strings.Contains(string(out), tt.want) {
			t.Errorf("CI=%q: failed %v, want %v, with %q in:\n%s", tt.ci, failed, tt.wantFail, tt.want, out)
		}
	}
}
