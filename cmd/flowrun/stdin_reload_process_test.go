package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const stdinReloadFlow = `pipeline "lines" {
  edge_capacity = 16

  source "in" {
    kind = "stdin"
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

// TestRunReloadsAStdinPipeline runs the built flowrun on a pipeline that
// reads stdin, fed a steady stream of numbered lines in pieces that split
// lines, while the .flow file is edited ten times (reloading on SIGHUP, or
// with --watch): each handover starts the new version exactly after the
// last line the old one finished, so once stdin ends the output holds
// every line once, in order, each transformed by one version.
func TestRunReloadsAStdinPipeline(t *testing.T) {
	bin := buildFlowrun(t)
	for _, watch := range []bool{false, true} {
		t.Run(fmt.Sprintf("watch=%t", watch), func(t *testing.T) {
			dir := t.TempDir()
			flow := filepath.Join(dir, "lines.flow")
			if err := os.WriteFile(flow, []byte(fmt.Sprintf(stdinReloadFlow, "A")), 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{"run", "lines.flow"}
			if watch {
				args = []string{"run", "--watch", "lines.flow"}
			}
			cmd := exec.Command(bin, args...)
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
			defer cmd.Process.Kill()

			// The stream: a few dozen lines every 200µs, cut anywhere.
			stop, streamed := make(chan struct{}), make(chan int, 1)
			go func() {
				rnd := rand.New(rand.NewPCG(3, 4))
				n := 0
				var pending []byte
				defer func() {
					_, _ = stdin.Write(pending)
					stdin.Close()
					streamed <- n
				}()
				for {
					select {
					case <-stop:
						return
					case <-time.After(200 * time.Microsecond):
					}
					for range 1 + rnd.IntN(40) {
						pending = strconv.AppendInt(pending, int64(n), 10)
						pending = append(pending, '\n')
						n++
					}
					cut := rnd.IntN(len(pending) + 1)
					if _, err := stdin.Write(pending[:cut]); err != nil {
						return
					}
					pending = append(pending[:0], pending[cut:]...)
				}
			}()

			out := filepath.Join(dir, "out.jsonl")
			newest := func(version string, more int) func() bool {
				seen, _ := outputVersions(t, out)
				return func() bool {
					l, v := outputVersions(t, out)
					return len(l) > len(seen)+more && v[len(v)-1] == version
				}
			}
			if watch {
				eventually(t, "the watcher", stderr, func() bool { return strings.Contains(stderr.String(), "watching for changes") })
			}
			version := "A"
			for round := range 10 {
				eventually(t, "records of version "+version, stderr, newest(version, 200))
				version = map[string]string{"A": "B", "B": "A"}[version]
				if err := os.WriteFile(flow, []byte(fmt.Sprintf(stdinReloadFlow, version)), 0o644); err != nil {
					t.Fatal(err)
				}
				if !watch {
					if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
						t.Fatal(err)
					}
				}
				eventually(t, "the handover", stderr, func() bool {
					return strings.Count(stderr.String(), "pipeline changed") == round+1
				})
			}
			eventually(t, "records of the last version", stderr, newest(version, 0))
			close(stop)
			n := <-streamed
			// stdin ends: the pipeline finishes; with --watch flowrun
			// waits for more edits, so it is stopped.
			if watch {
				eventually(t, "the pipeline to finish", stderr, func() bool { return strings.Contains(stderr.String(), "pipeline finished") })
				if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("flowrun run: %v (want exit 0)\n%s", err, stderr)
			}
			checkHandovers(t, out, n, 10, stderr)
			t.Logf("%d lines through 10 handovers", n)
		})
	}
}
