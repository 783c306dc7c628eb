package all_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/operators/internal/optest"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// runCounted builds pipeline name of src with files under dir, runs it to
// the end on a virtual clock that advances by itself, and returns what the
// stdout sinks wrote, the plan's memory bound in records and how many
// records the source stage src emitted.
func runCounted(t *testing.T, src, name, dir, source string) (stdout string, bound, emitted int64) {
	t.Helper()
	p := optest.Plan(t, src, name)
	clock := flowruntime.NewVirtualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	clock.SetAuto(true)
	var out bytes.Buffer
	g, err := all.Registry().BuildGraph(p, operators.BuildEnv{Clock: clock, Logger: hclog.NewNullLogger(), Stdout: &out, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ex, err := flowruntime.Start(ctx, g, flowruntime.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := ex.Wait(); err != nil {
		t.Fatal(err)
	}
	st, ok := ex.Stats().Node(source)
	if !ok {
		t.Fatalf("no stage %q in the stats", source)
	}
	return out.String(), int64(p.Bound.Records), st.Out
}

// TestThrottledExampleStopsItsGenerator runs pipelines/throttled.flow
// (generate without a count → take 100 → throttle → stdout) in process: the
// finished take stops the generator, which emits at most the take's count
// plus the plan's memory bound and the batch of the Emit call under way.
func TestThrottledExampleStopsItsGenerator(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "pipelines", "throttled.flow"))
	if err != nil {
		t.Fatal(err)
	}
	const count = 100
	stdout, bound, emitted := runCounted(t, string(src), "throttled", t.TempDir(), "ticks")
	if n := strings.Count(stdout, "\n"); n != count {
		t.Errorf("printed %d records, want %d", n, count)
	}
	limit := count + bound + flowruntime.DefaultBatchSize
	t.Logf("generated %d records for a take of %d (limit %d)", emitted, count, limit)
	if emitted > limit {
		t.Errorf("the generator emitted %d records; want at most %d (count %d + memory bound %d + one batch %d)",
			emitted, limit, count, bound, flowruntime.DefaultBatchSize)
	}
}

// TestTakeOnOneBranchStopsNothing: a take that reads a broadcast beside a
// sink that wants every record stops nothing: the sink gets them all.
func TestTakeOnOneBranchStopsNothing(t *testing.T) {
	const total = 5000
	dir := t.TempDir()
	stdout, _, emitted := runCounted(t, `
pipeline "p" {
  source "gen" {
    kind  = "generate"
    count = 5000
  }
  take "first" {
    from  = gen
    count = 10
  }
  sink "some" {
    from = first
    kind = "stdout"
  }
  sink "every" {
    from = gen
    kind = "file"
    path = "every.jsonl"
  }
}`, "p", dir, "gen")
	if n := strings.Count(stdout, "\n"); n != 10 {
		t.Errorf("the take's sink got %d records, want 10", n)
	}
	if n := strings.Count(readFile(t, filepath.Join(dir, "every.jsonl")), "\n"); emitted != total || n != total {
		t.Errorf("the generator emitted %d records and the other sink wrote %d; want all %d", emitted, n, total)
	}
}
