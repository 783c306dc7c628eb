package supervisor_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/flowrun/flowrun/operators/source"
)

const stdinFlow = `pipeline "lines" {
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

// streamer writes numbered lines to a pipe in a steady stream, in pieces
// that split lines anywhere, until stopped.
type streamer struct {
	stop chan struct{}
	done chan struct{}
	n    int // lines written, once done is closed
}

func startStreamer(w io.WriteCloser, every time.Duration) *streamer {
	s := &streamer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer w.Close()
		rnd := rand.New(rand.NewPCG(1, 2))
		var pending []byte
		for {
			select {
			case <-s.stop:
				_, _ = w.Write(pending)
				return
			case <-time.After(every):
			}
			for range 1 + rnd.IntN(40) {
				pending = strconv.AppendInt(pending, int64(s.n), 10)
				pending = append(pending, '\n')
				s.n++
			}
			cut := rnd.IntN(len(pending) + 1)
			if _, err := w.Write(pending[:cut]); err != nil {
				return
			}
			pending = append(pending[:0], pending[cut:]...)
		}
	}()
	return s
}

// halt stops the stream, closing the pipe, and returns how many lines it
// wrote.
func (s *streamer) halt() int {
	close(s.stop)
	<-s.done
	return s.n
}

// TestStdinHandsOverUnderASteadyStream edits a pipeline that reads stdin
// ten times while numbered lines stream in, written in pieces that split
// lines: at each handover the old version gives back what it read but did
// not finish (its read under way, its buffer, its unsent batch), so the new
// one starts at a line boundary and the output holds every line exactly
// once, in order, each transformed by one version.
func TestStdinHandsOverUnderASteadyStream(t *testing.T) {
	dir := t.TempDir()
	flow := filepath.Join(dir, "lines.flow")
	writeFile(t, flow, fmt.Sprintf(stdinFlow, "A"))
	pr, pw := io.Pipe()
	sup, logs := newStdinSupervisor(t, dir, source.NewFeed(pr))
	plan, ok := loader(dir, logs)()
	if !ok {
		t.Fatalf("plan:\n%s", logs)
	}
	if err := sup.Start(plan); err != nil {
		t.Fatal(err)
	}
	stream := startStreamer(pw, 100*time.Microsecond)
	out := &tail{path: filepath.Join(dir, "out.jsonl")}
	version := "A"
	for range 10 {
		seen := len(out.lines)
		waitFor(t, 10*time.Second, "records of the version "+version, func() bool {
			out.poll(t)
			return len(out.lines) > seen+500 && out.lines[len(out.lines)-1]["v"] == version
		})
		version = map[string]string{"A": "B", "B": "A"}[version]
		writeAtomic(t, flow, fmt.Sprintf(stdinFlow, version))
		if err := sup.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "records of the last version", func() bool {
		out.poll(t)
		return len(out.lines) > 0 && out.lines[len(out.lines)-1]["v"] == version
	})
	n := stream.halt()
	// The input ends: the pipeline finishes.
	<-sup.Idle()
	if err := sup.Wait(); err != nil {
		t.Fatalf("pipeline failed: %v\n%s", err, logs)
	}
	out.poll(t)
	if switches := checkSequence(t, out.lines, n); switches != 10 {
		t.Errorf("the version changed %d times in the output, want 10; runs: %s", switches, runs(out.lines))
	}
	if got := logs.count("pipeline changed"); got != 10 {
		t.Errorf("%d handovers logged, want 10", got)
	}
	t.Logf("%d lines streamed through 10 handovers", n)
}
