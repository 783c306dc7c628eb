package flowtest

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/sink"
	"github.com/flowrun/flowrun/operators/source"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// epoch is where every test's virtual clock starts, so that tests that read
// the time are repeatable.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Result is the outcome of one test block.
type Result struct {
	Test *planner.Test
	// Err is set when the pipeline could not be built or failed while
	// running; the comparison is not made then.
	Err error
	// Mismatches holds one entry per expected sink whose records differ.
	Mismatches []Mismatch
	// Got holds what every sink received, by sink name.
	Got map[string][]map[string]any
}

// Passed reports whether the test ran and every expected sink matched.
func (r *Result) Passed() bool { return r.Err == nil && len(r.Mismatches) == 0 }

// Mismatch is an expected sink that received other records than expected.
type Mismatch struct {
	Sink string
	Want []map[string]any
	Got  []map[string]any
	// Diff explains the difference, one line per differing record.
	Diff string
}

// Runner runs test blocks with a registry.
type Runner struct {
	Registry *operators.Registry
	// Logger receives the pipelines' logs; nil discards them.
	Logger hclog.Logger
	// Timeout bounds each test's run in wall time; 0 means one minute.
	Timeout time.Duration
}

// Run runs one test block of plan.
func (r *Runner) Run(ctx context.Context, plan *planner.Plan, test *planner.Test) *Result {
	res := &Result{Test: test}
	p := pipelineNamed(plan, test.Pipeline)
	if p == nil {
		res.Err = fmt.Errorf("test %q: no pipeline %q", test.Name, test.Pipeline)
		return res
	}
	logger := r.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	clock := flowruntime.NewVirtualClock(epoch)
	env := operators.BuildEnv{Clock: clock, Logger: logger, Stdin: eofReader{}, Stdout: io.Discard}
	g, err := r.Registry.BuildGraph(p, env)
	if err != nil {
		res.Err = err
		return res
	}
	captures := replaceEnds(g, p, test)

	timeout := r.Timeout
	if timeout == 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	clock.SetAuto(true)
	exec, err := flowruntime.Start(ctx, g, flowruntime.Options{Clock: clock, Logger: logger})
	if err != nil {
		res.Err = err
		return res
	}
	if err := exec.Wait(); err != nil {
		res.Err = err
		return res
	}
	if ctx.Err() != nil {
		res.Err = fmt.Errorf("test %q: pipeline did not finish within %s", test.Name, timeout)
		return res
	}
	res.Got = make(map[string][]map[string]any, len(captures))
	for name, m := range captures {
		res.Got[name] = m.Fields()
	}
	for _, name := range sortedKeys(test.Expect) {
		want := test.Expect[name]
		got := withoutFields(res.Got[name], test.Ignore[name])
		if diff := Diff(want, got); diff != "" {
			res.Mismatches = append(res.Mismatches, Mismatch{Sink: name, Want: want, Got: got, Diff: diff})
		}
	}
	return res
}

// replaceEnds swaps every source for the records the test gives it (none
// when the test names it not) and every sink for a capture, and returns the
// captures by sink name.
func replaceEnds(g *flowruntime.Graph, p *planner.Pipeline, test *planner.Test) map[string]*sink.Memory {
	captures := make(map[string]*sink.Memory)
	for _, n := range g.Nodes {
		st := p.Stage(n.Name)
		if st == nil {
			continue
		}
		switch st.Block {
		case "source":
			n.Source = source.NewRecords(n.Name, test.Inputs[n.Name])
		case "sink":
			m := &sink.Memory{}
			n.Sink = m
			captures[n.Name] = m
		}
	}
	return captures
}

// withoutFields returns copies of records without the named fields.
func withoutFields(records []map[string]any, fields []string) []map[string]any {
	if len(fields) == 0 {
		return records
	}
	out := make([]map[string]any, len(records))
	for i, r := range records {
		c := make(map[string]any, len(r))
		for k, v := range r {
			c[k] = v
		}
		for _, f := range fields {
			delete(c, f)
		}
		out[i] = c
	}
	return out
}

func pipelineNamed(plan *planner.Plan, name string) *planner.Pipeline {
	for _, p := range plan.Pipelines {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// eofReader is the standard input of a pipeline under test: always empty.
type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
