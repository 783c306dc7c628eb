package all_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/operators/internal/optest"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// keptSink writes each record as a line of JSON into memory. Its state is
// how many lines it wrote, and restoring cuts it back to that many, as a
// file sink cuts its file back to its committed length: so what it holds
// after a restart is what a sink that never stopped would hold.
type keptSink struct {
	mu    sync.Mutex
	enc   codec.Encoder
	lines []string
}

func (k *keptSink) Write(_ context.Context, recs []flowruntime.Record) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, r := range recs {
		b, err := k.enc.AppendObject(nil, r.Fields)
		if err != nil {
			return err
		}
		k.lines = append(k.lines, string(b))
	}
	return nil
}

func (k *keptSink) Close() error { return nil }

func (k *keptSink) SaveState() ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return []byte(strconv.Itoa(len(k.lines))), nil
}

func (k *keptSink) RestoreState(b []byte) error {
	n, err := strconv.Atoi(string(b))
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if n > len(k.lines) {
		return fmt.Errorf("state says %d lines, the sink holds %d", n, len(k.lines))
	}
	k.lines = k.lines[:n]
	return nil
}

func (k *keptSink) text() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return strings.Join(k.lines, "\n")
}

// paceSink reads the source beside the pipeline under test and, while slow
// is set, takes a millisecond of real time per write: through the
// broadcast's backpressure it holds the source back, so that the test can
// take its snapshot in the middle of the run. Real time does not move the
// virtual clock, so the run's virtual timing does not change.
type paceSink struct {
	slow atomic.Bool
	seen atomic.Int64
}

func (p *paceSink) Write(_ context.Context, recs []flowruntime.Record) error {
	if p.slow.Load() {
		time.Sleep(time.Millisecond)
	}
	p.seen.Add(int64(len(recs)))
	return nil
}

func (p *paceSink) Close() error { return nil }

// restartRun is one execution of a restart case's pipeline.
type restartRun struct {
	ex   *flowruntime.Execution
	g    *flowruntime.Graph
	pace *paceSink
}

// startRestartRun builds pipeline "p" of src with files under dir on a
// virtual clock reading start, swaps its sink "out" for kept (unless out
// is nil: the .flow's own sink stays) and its sink "pace" for a pace sink,
// restores every stage from snap when snap is not nil, and starts it.
func startRestartRun(t *testing.T, src, dir string, start time.Time, kept *keptSink, snap *flowruntime.Snapshot) *restartRun {
	t.Helper()
	clock := flowruntime.NewVirtualClock(start)
	clock.SetAuto(true)
	p := optest.Plan(t, src, "p")
	g, err := all.Registry().BuildGraph(p, operators.BuildEnv{Clock: clock, Logger: hclog.NewNullLogger(), Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	run := &restartRun{g: g, pace: &paceSink{}}
	for _, n := range g.Nodes {
		switch {
		case n.Name == "out" && kept != nil:
			n.Sink = kept
		case n.Name == "pace":
			n.Sink = run.pace
		}
	}
	if snap != nil {
		restoreGraph(t, g, snap)
	}
	run.ex, err = flowruntime.Start(context.Background(), g, flowruntime.Options{Clock: clock, BatchSize: 32, Snapshots: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		run.ex.Kill()
		_ = run.ex.Wait()
	})
	return run
}

// restoreGraph restores every stage of g from snap, as a restarted flowrun
// does: a source from its checkpoint decoded from JSON (runtime.Resumer),
// a processor or sink from its saved state (runtime.Stateful). Every
// stateful processor must find its state in snap.
func restoreGraph(t *testing.T, g *flowruntime.Graph, snap *flowruntime.Snapshot) {
	t.Helper()
	for _, n := range g.Nodes {
		state, saved := snap.States[n.Name]
		if r, ok := n.Source.(flowruntime.Resumer); ok && saved {
			var cp any
			if err := json.Unmarshal(state, &cp); err != nil {
				t.Fatalf("source %q: checkpoint %s: %v", n.Name, state, err)
			}
			if err := r.Resume(cp); err != nil {
				t.Fatal(err)
			}
		}
		var op any = n.Processor
		if n.Sink != nil {
			op = n.Sink
		}
		st, ok := op.(flowruntime.Stateful)
		if !ok {
			continue
		}
		if !saved {
			if n.Processor != nil {
				t.Fatalf("stateful stage %q is not in the snapshot (%d states)", n.Name, len(snap.States))
			}
			continue
		}
		if err := st.RestoreState(state); err != nil {
			t.Fatal(err)
		}
	}
}

// restartCases each run a .flow pipeline "p" whose stage "s" feeds sink
// "out", beside a sink "pace" reading the source "in". A generate source
// with an interval emits record seq at epoch + seq * interval on the
// virtual clock.
var restartCases = []struct {
	name string
	// source is the body of source "in"; stages ends with stage "s".
	source, stages string
	// interval is the generate source's, to start a restarted run's clock
	// where its first record falls due.
	interval time.Duration
	// fileSink keeps the .flow's own sink "out" (a file sink writing
	// out.jsonl) instead of swapping it for a kept sink.
	fileSink bool
}{
	{name: "file → reduce → file", fileSink: true,
		source: `kind = "file"
    path = "in.jsonl"
    codec = "json"`,
		stages: `reduce "s" {
    from  = in
    group = host
    init  = {n: 0, sum: 0.0, last: null}
    step  = {n: acc.n + 1, sum: acc.sum + x, last: id}
  }`},
	{name: "file → window by count per key",
		source: `kind = "file"
    path = "in.jsonl"
    codec = "json"`,
		stages: `window "s" {
    from  = in
    group = host
    size  = 7
  }`},
	{name: "generate → dedupe → reduce (a fused chain)",
		source: `kind = "generate"
    count = 20000
    template = {k: seq % 1500, half: seq / 2, host: "h" + string(seq % 3)}`,
		stages: `filter "f" {
    from  = in
    where = k % 5 != 0
  }
  dedupe "d" {
    from     = f
    key      = k
    capacity = 700
  }
  map "m" {
    from = d
    set {
      w = half * 1.0
    }
  }
  reduce "s" {
    from  = m
    group = host
    step  = acc + w
  }`},
	{name: "generate → batch",
		source: `kind = "generate"
    count = 20000`,
		stages: `batch "s" {
    from    = in
    size    = 45
    timeout = "0s"
  }`},
	{name: "generate → take → skip",
		source: `kind = "generate"
    count = 20000`,
		stages: `take "t" {
    from  = in
    count = 15000
  }
  skip "s" {
    from  = t
    count = 1000
  }`},
	{name: "paced generate → time window per key", interval: 10 * time.Millisecond,
		source: `kind = "generate"
    count = 3000
    interval = "10ms"
    template = {host: "h" + string(seq % 3), v: seq % 7 == 0 ? 1.0 : seq}`,
		stages: `window "s" {
    from  = in
    group = host
    every = "95ms"
  }`},
	{name: "paced generate → reduce every", interval: 10 * time.Millisecond,
		source: `kind = "generate"
    count = 3000
    interval = "10ms"
    template = {host: "h" + string(seq % 4), v: seq}`,
		stages: `reduce "s" {
    from  = in
    group = host
    step  = acc + v
    every = "100ms"
  }`},
	{name: "paced generate → batch with a timeout", interval: 10 * time.Millisecond,
		source: `kind = "generate"
    count = 3000
    interval = "10ms"`,
		stages: `batch "s" {
    from    = in
    size    = 6
    timeout = "35ms"
  }`},
	{name: "paced generate → dedupe with a ttl", interval: 10 * time.Millisecond,
		source: `kind = "generate"
    count = 3000
    interval = "10ms"
    template = {k: seq % 13}`,
		stages: `dedupe "s" {
    from = in
    key  = k
    ttl  = "200ms"
  }`},
}

// TestRestartFromSnapshot runs each case's pipeline three ways through the
// real runtime: once without a stop; once taking a snapshot in the middle
// (runtime.Execution.Snapshot) and then killed after more was written; and
// once built afresh, restored from that snapshot and run to the end. The
// restarted output, on top of what the killed run had written by the
// snapshot, equals the uninterrupted output.
func TestRestartFromSnapshot(t *testing.T) {
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 5_000_000, time.UTC) // 5ms past a window boundary
	var input strings.Builder
	for i := range 20000 {
		x := fmt.Sprint(i%10, ".5")
		if i%4 == 0 {
			x = fmt.Sprint(i % 10) // a whole number
		}
		fmt.Fprintf(&input, `{"id":%d,"host":"h%d","x":%s}`+"\n", i, i%5, x)
	}
	for _, tc := range restartCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := fmt.Sprintf(`pipeline "p" {
  source "in" {
    %s
  }
  %s
  sink "out" {
    from = s
    kind = "file"
    path = "out.jsonl"
  }
  sink "pace" {
    from = in
    kind = "discard"
  }
}
`, tc.source, tc.stages)
			newDir := func() string {
				dir := t.TempDir()
				if err := os.WriteFile(filepath.Join(dir, "in.jsonl"), []byte(input.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return dir
			}
			output := func(dir string, kept *keptSink) string {
				if tc.fileSink {
					return strings.TrimSuffix(readFile(t, filepath.Join(dir, "out.jsonl")), "\n")
				}
				return kept.text()
			}
			var keptWhole, keptCut *keptSink
			if !tc.fileSink {
				keptWhole, keptCut = &keptSink{}, &keptSink{}
			}

			wholeDir := newDir()
			whole := startRestartRun(t, src, wholeDir, epoch, keptWhole, nil)
			if err := whole.ex.Wait(); err != nil {
				t.Fatal(err)
			}
			want := output(wholeDir, keptWhole)
			total := whole.pace.seen.Load()

			dir := newDir()
			cut := startRestartRun(t, src, dir, epoch, keptCut, nil)
			cut.pace.slow.Store(true)
			optest.Eventually(t, 20*time.Second, "the run to be under way", func() bool { return cut.pace.seen.Load() >= total/10 })
			snap, err := cut.ex.Snapshot(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			cut.pace.slow.Store(false)
			var pos any
			if err := json.Unmarshal(snap.States["in"], &pos); err != nil {
				t.Fatalf("source state %s: %v", snap.States["in"], err)
			}
			if done, of := progress(t, pos, total, input.Len()); done <= 0 || done >= of {
				t.Fatalf("the snapshot is not in the middle of the run: the source is at %d of %d", done, of)
			}
			t.Logf("snapshot: %d states, source at %s, stage s: %.200s", len(snap.States), snap.States["in"], snap.States["s"])
			// The run goes on past the snapshot, then dies.
			atSnapshot := cut.pace.seen.Load()
			optest.Eventually(t, 20*time.Second, "the run to go on", func() bool {
				return cut.pace.seen.Load() >= atSnapshot+total/10 || isDone(cut.ex)
			})
			cut.ex.Kill()
			if err := cut.ex.Wait(); err != nil && !errors.Is(err, flowruntime.ErrKilled) {
				t.Fatalf("killed run: %v", err)
			}
			if keptCut != nil {
				keptCut.mu.Lock()
				t.Logf("killed with %d lines written, %s by the snapshot", len(keptCut.lines), snap.States["out"])
				keptCut.mu.Unlock()
			}

			restartAt := epoch
			if seq, ok := pos.(float64); ok && tc.interval > 0 {
				restartAt = epoch.Add(time.Duration(seq) * tc.interval)
			}
			again := startRestartRun(t, src, dir, restartAt, keptCut, snap)
			if err := again.ex.Wait(); err != nil {
				t.Fatal(err)
			}
			got := output(dir, keptCut)
			if want == "" {
				t.Fatal("the uninterrupted run wrote nothing")
			}
			if got != want {
				gotLines, wantLines := strings.Split(got, "\n"), strings.Split(want, "\n")
				t.Errorf("restarted output: %d lines, uninterrupted: %d (-uninterrupted +restarted):\n%.3000s",
					len(gotLines), len(wantLines), cmp.Diff(wantLines, gotLines))
			}
		})
	}
}

func isDone(ex *flowruntime.Execution) bool {
	select {
	case <-ex.Done():
		return true
	default:
		return false
	}
}

// progress returns how far a source checkpoint is, of how far it goes: a
// generate source's sequence number of total records, or a file source's
// offset of size bytes.
func progress(t *testing.T, cp any, total int64, size int) (done, of int64) {
	t.Helper()
	switch v := cp.(type) {
	case float64:
		return int64(v), total
	case []any:
		if len(v) == 1 {
			if p, ok := v[0].(map[string]any); ok {
				if off, ok := p["offset"].(float64); ok {
					return int64(off), int64(size)
				}
			}
		}
	}
	t.Fatalf("source checkpoint %v: neither a sequence number nor one file's position", cp)
	return 0, 0
}
