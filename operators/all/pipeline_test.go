package all_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowrun/flowrun/runtime/onerror"
	"github.com/flowrun/flowrun/runtime/overflow"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/operators/internal/optest"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// runFlow plans src, builds pipeline "p" with files under dir, runs it to
// the end on clock and returns what the stdout sinks wrote.
func runFlow(t *testing.T, src, dir string, clock flowruntime.Clock) string {
	t.Helper()
	p := optest.Plan(t, src, "p")
	var stdout bytes.Buffer
	env := operators.BuildEnv{Clock: clock, Logger: hclog.NewNullLogger(), Stdout: &stdout, Dir: dir}
	g, err := all.Registry().BuildGraph(p, env)
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
	return stdout.String()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestErrorAlertsPipeline(t *testing.T) {
	dir := t.TempDir()
	in := `{"level": "ERROR", "msg": "disk full", "id": 1}
{"level": "INFO", "msg": "ok", "id": 2}
{"level": "ERROR", "msg": "", "id": 3}
{"level": "ERROR", "msg": "out of memory", "id": 4}
`
	if err := os.WriteFile(filepath.Join(dir, "app.log"), []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	src := `
pipeline "p" {
  source "logs" {
    kind  = "file"
    path  = "app.log"
    codec = "json"
  }
  filter "errors" {
    from  = logs
    where = level == "ERROR" && len(msg) > 0
  }
  map "enrich" {
    from = errors
    set {
      msg  = upper(msg)
      odd  = id % 2 == 1
    }
    drop = ["level"]
  }
  sink "console" {
    from = enrich
    kind = "stdout"
  }
  sink "archive" {
    from = enrich
    kind = "file"
    path = "out/errors.jsonl"
  }
}
`
	stdout := runFlow(t, src, dir, nil)
	want := `{"id":1,"msg":"DISK FULL","odd":true}
{"id":4,"msg":"OUT OF MEMORY","odd":false}
`
	if stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
	if got := readFile(t, filepath.Join(dir, "out/errors.jsonl")); got != want {
		t.Errorf("archive:\n%s\nwant:\n%s", got, want)
	}
}

// TestTimedPipeline runs a throttle and a batch on a virtual clock: the
// timing is exact and the test takes no real time. Records pass the
// throttle at 0s (five, the burst), then one every 100ms until 2.0s; a batch
// closes 250ms after its first record, or at the end of the stream.
func TestTimedPipeline(t *testing.T) {
	dir := t.TempDir()
	clock := flowruntime.NewVirtualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	clock.SetAuto(true)
	src := `
pipeline "p" {
  source "gen" {
    kind     = "generate"
    count    = 25
  }
  throttle "slow" {
    from  = gen
    rate  = 10
    per   = "1s"
    burst = 5
  }
  batch "b" {
    from    = slow
    size    = 10
    timeout = "250ms"
  }
  map "summary" {
    from = b
    to   = {count: count, first: records[0].seq}
  }
  sink "out" {
    from = summary
    kind = "stdout"
  }
}
`
	start := clock.Now()
	stdout := runFlow(t, src, dir, clock)
	if got, want := clock.Now().Sub(start), 2*time.Second; got != want {
		t.Errorf("virtual time passed: %v, want %v", got, want)
	}
	want := `{"count":7,"first":0}
{"count":3,"first":7}
{"count":3,"first":10}
{"count":3,"first":13}
{"count":3,"first":16}
{"count":3,"first":19}
{"count":3,"first":22}
`
	if stdout != want {
		t.Errorf("batches:\n%s\nwant:\n%s", stdout, want)
	}
}

func TestGroupingPipeline(t *testing.T) {
	dir := t.TempDir()
	src := `
pipeline "p" {
  source "a" {
    kind     = "generate"
    count    = 6
    template = {host: "a", bytes: seq}
  }
  source "b" {
    kind     = "generate"
    count    = 3
    template = {host: "b", bytes: 100}
  }
  dedupe "uniq" {
    from = [a, b]
    key  = host + string(bytes)
  }
  reduce "per_host" {
    from  = uniq
    group = host
    init  = { n = 0, total = 0 }
    step  = {n: acc.n + 1, total: acc.total + bytes}
  }
  sink "out" {
    from = per_host
    kind = "file"
    path = "totals.jsonl"
  }
}
`
	runFlow(t, src, dir, nil)
	got := strings.Split(strings.TrimSpace(readFile(t, filepath.Join(dir, "totals.jsonl"))), "\n")
	want := []string{`{"key":"a","value":{"n":6,"total":15}}`, `{"key":"b","value":{"n":1,"total":100}}`}
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestBuildGraph checks the translation of a plan: implicit stages, edge
// capacities and flags, and error policies.
func TestBuildGraph(t *testing.T) {
	src := `
pipeline "p" {
  edge_capacity = 64
  source "in" {
    kind = "generate"
  }
  map "m" {
    from        = in
    set {
      x = 1 / y
    }
    on_error    = "dead_letter"
    dead_letter = rejects
  }
  sink "a" {
    from = m
    kind = "discard"
  }
  sink "b" {
    from          = m
    kind          = "discard"
    when_full     = "drop_newest"
    edge_capacity = 8
  }
  sink "rejects" {
    kind = "discard"
  }
}
`
	p := optest.Plan(t, src, "p")
	g, err := all.Registry().BuildGraph(p, operators.BuildEnv{})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Nodes) != len(p.Stages) || len(g.Edges) != len(p.Edges) {
		t.Fatalf("%d nodes and %d edges for %d stages and %d edges", len(g.Nodes), len(g.Edges), len(p.Stages), len(p.Edges))
	}
	nodes := map[string]*flowruntime.Node{}
	for _, n := range g.Nodes {
		nodes[n.Name] = n
	}
	if f := nodes["m.fanout"]; f == nil || f.Fanout == nil || f.Fanout.Mode != flowruntime.Broadcast {
		t.Errorf("implicit fanout: %+v", f)
	}
	if m := nodes["m"]; m == nil || m.Processor == nil || m.OnError.Mode != onerror.DeadLetter {
		t.Errorf("map node: %+v", m)
	}
	var dl, lossy *flowruntime.Edge
	for _, e := range g.Edges {
		if e.DeadLetter {
			dl = e
		}
		if e.WhenFull.Lossy() {
			lossy = e
		}
	}
	if dl == nil || dl.From != "m" || dl.To != "rejects" {
		t.Errorf("dead-letter edge: %+v", dl)
	}
	if lossy == nil || lossy.To != "b" || lossy.WhenFull != overflow.DropNewest || lossy.Capacity != 8 {
		t.Errorf("lossy edge: %+v", lossy)
	}
	for _, e := range g.Edges {
		if e.Capacity <= 0 {
			t.Errorf("edge %s -> %s has capacity %d", e.From, e.To, e.Capacity)
		}
	}
}

// TestChecksAtPlanTime checks that what Build would reject is reported by
// the planner, at the option concerned, so a file that validates builds.
func TestChecksAtPlanTime(t *testing.T) {
	src := `
pipeline "p" {
  source "in" {
    kind = "generate"
  }
  throttle "t" {
    from = in
    rate = 0
  }
  window "w" {
    from = t
  }
  fanout "f" {
    from = w
    mode = "hash"
  }
  sink "out" {
    from = f
    kind = "file"
    path = "x.jsonl"
    columns = ["a"]
  }
}
`
	var got []string
	for _, d := range optest.PlanDiagnostics(t, src) {
		got = append(got, fmt.Sprintf("%d:%d %s", d.Subject.Start.Line, d.Subject.Start.Column, d.Detail))
	}
	want := []string{
		"8:12 The rate must be more than 0, not 0.",
		"10:3 A window needs size (a count of records) or every (a duration).",
		"15:12 A hash fanout needs a key, e.g. key = user_id.",
		"21:15 The columns option is for codec = \"csv\": remove it or set the codec.",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
}

// TestBuildGraphReportsEveryStage checks that BuildGraph, given a plan
// whose options were changed after planning, reports every bad stage.
func TestBuildGraphReportsEveryStage(t *testing.T) {
	src := `
pipeline "p" {
  source "in" {
    kind = "generate"
  }
  throttle "t" {
    from = in
    rate = 1
  }
  take "n" {
    from  = t
    count = 1
  }
  sink "out" {
    from = n
    kind = "discard"
  }
}
`
	p := optest.Plan(t, src, "p")
	p.Stage("t").Options["rate"] = 0.0
	p.Stage("n").Options["count"] = int64(-1)
	_, err := all.Registry().BuildGraph(p, operators.BuildEnv{})
	if err == nil || !strings.Contains(err.Error(), `stage "t"`) || !strings.Contains(err.Error(), `stage "n"`) {
		t.Errorf("BuildGraph = %v, want errors for stages t and n", err)
	}
}
