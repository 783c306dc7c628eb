package transform

import (
	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var _ flowruntime.Finisher = (*Take)(nil)

var takeKind = &operators.Kind{
	Schema: checked(schema("take", "Passes on the first count records and drops the rest.",
		planner.OptionSpec{Name: "count", Type: planner.Int, Required: true,
			Doc: "How many records pass."},
	), checkCount),
	Build: func(st *planner.Stage, _ operators.BuildEnv) (*flowruntime.Node, error) {
		return &flowruntime.Node{Processor: &Take{left: st.Options.Int("count")}}, nil
	},
}

var skipKind = &operators.Kind{
	Schema: checked(schema("skip", "Drops the first count records and passes on the rest.",
		planner.OptionSpec{Name: "count", Type: planner.Int, Required: true,
			Doc: "How many records are dropped."},
	), checkCount),
	Build: func(st *planner.Stage, _ operators.BuildEnv) (*flowruntime.Node, error) {
		return &flowruntime.Node{Processor: &Skip{left: st.Options.Int("count")}}, nil
	},
}

func checkCount(p *operators.Problems, o planner.Options) { p.Min(o, "count", 0) }

// Take passes on the first records.
type Take struct{ left int64 }

// Process emits rec while fewer than count records have passed.
func (t *Take) Process(rec flowruntime.Record, emit func(flowruntime.Record)) error {
	if t.left > 0 {
		t.left--
		emit(rec)
	}
	return nil
}

// Finished reports that count records have passed: the runtime then ends
// the stream after take, and stops the sources once no sink can receive
// more.
func (t *Take) Finished() bool { return t.left == 0 }

// Skip drops the first records.
type Skip struct{ left int64 }

// Process emits rec once count records have been dropped.
func (s *Skip) Process(rec flowruntime.Record, emit func(flowruntime.Record)) error {
	if s.left > 0 {
		s.left--
		return nil
	}
	emit(rec)
	return nil
}
