package planner_test

import (
	"path/filepath"
	"testing"

	"github.com/flowrun/flowrun/runtime/onerror"

	"github.com/flowrun/flowrun/planner"
)

// TestPlanInvariants checks, on every valid test file, the shape the
// runtime relies on: stages in topological order, edges listed once and
// joined at both ends, at most one input except for merges, at most one
// normal output except for fanouts plus at most one dead-letter output, and
// a memory bound that counts every edge.
func TestPlanInvariants(t *testing.T) {
	paths, _ := filepath.Glob("testdata/plan/*.flow")
	more, _ := filepath.Glob("graph/testdata/*.flow")
	paths = append(paths, more...)
	if len(paths) == 0 {
		t.Fatal("no plan files")
	}
	for _, path := range paths {
		t.Run(path, func(t *testing.T) {
			src := mustRead(t, path)
			_, vars := expectations(t, src)
			p, ds, _ := planFile(t, path, vars)
			if ds.HasErrors() {
				t.Fatalf("not valid:\n%v", ds)
			}
			for _, pl := range p.Pipelines {
				checkPipeline(t, pl)
			}
		})
	}
}

func checkPipeline(t *testing.T, pl *planner.Pipeline) {
	t.Helper()
	pos := map[*planner.Stage]int{}
	names := map[string]bool{}
	for i, st := range pl.Stages {
		pos[st] = i
		if names[st.Name] {
			t.Errorf("%s: stage %q twice", pl.Name, st.Name)
		}
		names[st.Name] = true
	}
	edges := map[*planner.Edge]bool{}
	records := 0
	var bytes int64
	for _, e := range pl.Edges {
		if edges[e] {
			t.Errorf("%s: edge %s -> %s listed twice", pl.Name, e.From.Name, e.To.Name)
		}
		edges[e] = true
		records += e.Capacity
		bytes += e.Bytes
		if e.Capacity < 1 {
			t.Errorf("%s: edge %s -> %s has capacity %d", pl.Name, e.From.Name, e.To.Name, e.Capacity)
		}
		if _, ok := pos[e.From]; !ok {
			t.Errorf("%s: edge from unknown stage %q", pl.Name, e.From.Name)
		}
		if pos[e.From] >= pos[e.To] {
			t.Errorf("%s: %s comes before %s, which it reads", pl.Name, e.To.Name, e.From.Name)
		}
		if e.WhenFull.Lossy() && e.From.Block != "fanout" {
			t.Errorf("%s: lossy edge %s -> %s does not leave a fanout", pl.Name, e.From.Name, e.To.Name)
		}
	}
	if pl.Bound.Records < records || pl.Bound.Bytes != bytes {
		t.Errorf("%s: bound %v, edges hold %d records and %d bytes", pl.Name, pl.Bound, records, bytes)
	}
	for _, st := range pl.Stages {
		for _, e := range st.Inputs {
			if e.To != st || !edges[e] {
				t.Errorf("%s: input of %s is not an edge into it", pl.Name, st.Name)
			}
		}
		normal, dead := 0, 0
		for _, e := range st.Outputs {
			if e.From != st || !edges[e] {
				t.Errorf("%s: output of %s is not an edge out of it", pl.Name, st.Name)
			}
			if e.DeadLetter {
				dead++
			} else {
				normal++
			}
		}
		if st.Block != "merge" && len(st.Inputs) > 1 {
			t.Errorf("%s: %s %s has %d inputs", pl.Name, st.Block, st.Name, len(st.Inputs))
		}
		if st.Block != "fanout" && normal > 1 {
			t.Errorf("%s: %s %s has %d outputs", pl.Name, st.Block, st.Name, normal)
		}
		if dead > 1 || (dead == 1 && st.OnError.Mode != onerror.DeadLetter) {
			t.Errorf("%s: %s has %d dead-letter outputs with on_error %q", pl.Name, st.Name, dead, st.OnError.Mode)
		}
		if st.Block == "source" && len(st.Inputs) > 0 {
			t.Errorf("%s: source %s has inputs", pl.Name, st.Name)
		}
	}
}
