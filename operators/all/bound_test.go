package all_test

import (
	"context"
	"fmt"
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

// TestPlannedBoundHoldsWithASlowStage runs a file → map → throttle → file
// pipeline whose throttle is far slower than the source, and samples the
// runtime's counters while it runs: the records and bytes in flight never
// exceed the memory bound the planner stated, and the source never reads
// more than that bound ahead of what the sink has written.
func TestPlannedBoundHoldsWithASlowStage(t *testing.T) {
	dir := t.TempDir()
	var in strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&in, "{\"id\":%d,\"msg\":\"%s\"}\n", i, strings.Repeat("x", i%50))
	}
	if err := os.WriteFile(filepath.Join(dir, "in.jsonl"), []byte(in.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	p := optest.Plan(t, `
pipeline "p" {
  edge_capacity = 64
  edge_bytes    = 8192

  source "in" {
    kind  = "file"
    path  = "in.jsonl"
    codec = "json"
  }
  map "tag" {
    from = in
    set {
      tagged = true
    }
  }
  throttle "slow" {
    from  = tag
    rate  = 20000
    per   = "1s"
    burst = 16
  }
  sink "out" {
    from = slow
    kind = "file"
    path = "out.jsonl"
  }
}`, "p")
	if p.Bound.Records != 3*64 || p.Bound.Bytes != 3*8192 {
		t.Fatalf("planned bound = %d records, %d bytes; want %d and %d", p.Bound.Records, p.Bound.Bytes, 3*64, 3*8192)
	}
	env := operators.BuildEnv{Clock: flowruntime.RealClock{}, Logger: hclog.NewNullLogger(), Dir: dir}
	g, err := all.Registry().BuildGraph(p, env)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ex, err := flowruntime.Start(ctx, g, flowruntime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var maxAhead, samples int64
	for {
		st := ex.Stats()
		src, _ := st.Node("in")
		sink, _ := st.Node("out")
		// The source's records out minus the sink's records written: what
		// was read and is not on disk yet.
		if ahead := src.Out - sink.Out; ahead > maxAhead {
			maxAhead = ahead
		}
		if st.InFlight > int64(p.Bound.Records) || st.BytesInFlight > p.Bound.Bytes {
			t.Fatalf("in flight: %d records, %d bytes; planned bound %d records, %d bytes",
				st.InFlight, st.BytesInFlight, p.Bound.Records, p.Bound.Bytes)
		}
		samples++
		select {
		case <-ex.Done():
		case <-time.After(200 * time.Microsecond):
			continue
		}
		break
	}
	if err := ex.Wait(); err != nil {
		t.Fatal(err)
	}
	st := ex.Stats()
	t.Logf("%d samples; peak in flight %d records, %d bytes; source at most %d records ahead of the sink; bound %d records, %d bytes",
		samples, st.PeakInFlight, st.PeakBytesInFlight, maxAhead, p.Bound.Records, p.Bound.Bytes)
	if st.PeakInFlight > int64(p.Bound.Records) || st.PeakBytesInFlight > p.Bound.Bytes {
		t.Errorf("peak in flight %d records, %d bytes exceeds the planned bound", st.PeakInFlight, st.PeakBytesInFlight)
	}
	if maxAhead > int64(p.Bound.Records) {
		t.Errorf("the source read %d records ahead of the sink, more than the bound %d", maxAhead, p.Bound.Records)
	}
	if st.PeakInFlight < 32 {
		t.Errorf("peak in flight %d: the slow stage never held the pipeline back", st.PeakInFlight)
	}
	if got := strings.Count(readFile(t, filepath.Join(dir, "out.jsonl")), "\n"); got != 20000 {
		t.Errorf("wrote %d records, want 20000", got)
	}
}
