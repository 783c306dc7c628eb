package transform

import (
	"fmt"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var (
	_ flowruntime.Finisher = (*Take)(nil)
	_ flowruntime.Stateful = (*Take)(nil)
	_ flowruntime.Stateful = (*Skip)(nil)
)

var takeKind = &operators.Kind{
	Schema: checked(schema("take", "Passes on the first count records and drops the rest.",
		planner.OptionSpec{Name: "count", Type: planner.Int, Required: true,
			Doc: "How many records pass."},
	), checkCount),
	Build: func(st *planner.Stage, _ operators.BuildEnv) (*flowruntime.Node, error) {
		n := st.Options.Int("count")
		return &flowruntime.Node{Processor: &Take{stage: st.Name, count: n, left: n}}, nil
	},
}

var skipKind = &operators.Kind{
	Schema: checked(schema("skip", "Drops the first count records and passes on the rest.",
		planner.OptionSpec{Name: "count", Type: planner.Int, Required: true,
			Doc: "How many records are dropped."},
	), checkCount),
	Build: func(st *planner.Stage, _ operators.BuildEnv) (*flowruntime.Node, error) {
		n := st.Options.Int("count")
		return &flowruntime.Node{Processor: &Skip{stage: st.Name, count: n, left: n}}, nil
	},
}

func checkCount(p *operators.Problems, o planner.Options) { p.Min(o, "count", 0) }

// Take passes on the first records. It is Stateful: a restored take counts
// the records it let through before, so a take of 100 passes 100 in all.
type Take struct {
	stage       string
	count, left int64
}

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

// Skip drops the first records. It is Stateful: a restored skip counts the
// records it dropped before.
type Skip struct {
	stage       string
	count, left int64
}

// Process emits rec once count records have been dropped.
func (s *Skip) Process(rec flowruntime.Record, emit func(flowruntime.Record)) error {
	if s.left > 0 {
		s.left--
		return nil
	}
	emit(rec)
	return nil
}

// takeState is a take's saved state: how many records it let through. It
// counts what was done, not what is left, so a restored take whose count
// was changed lets through what the new count leaves.
type takeState struct {
	stateHeader
	Passed *int64 `json:"passed"`
}

// skipState is a skip's saved state: how many records it dropped.
type skipState struct {
	stateHeader
	Skipped *int64 `json:"skipped"`
}

// SaveState returns how many records the take let through.
func (t *Take) SaveState() ([]byte, error) {
	passed := t.count - t.left
	return saveState("take", t.stage, func(*valueCodec) (any, error) {
		return takeState{stateHeader: header("take"), Passed: &passed}, nil
	})
}

// RestoreState sets how many records the take let through before.
func (t *Take) RestoreState(b []byte) error {
	var st takeState
	return restoreState("take", t.stage, b, &st, func(*valueCodec) error {
		n, err := savedCount("passed", st.Passed)
		if err != nil {
			return err
		}
		t.left = max(t.count-n, 0)
		return nil
	})
}

// SaveState returns how many records the skip dropped.
func (s *Skip) SaveState() ([]byte, error) {
	skipped := s.count - s.left
	return saveState("skip", s.stage, func(*valueCodec) (any, error) {
		return skipState{stateHeader: header("skip"), Skipped: &skipped}, nil
	})
}

// RestoreState sets how many records the skip dropped before.
func (s *Skip) RestoreState(b []byte) error {
	var st skipState
	return restoreState("skip", s.stage, b, &st, func(*valueCodec) error {
		n, err := savedCount("skipped", st.Skipped)
		if err != nil {
			return err
		}
		s.left = max(s.count-n, 0)
		return nil
	})
}

// savedCount checks the count named name of a take or skip state.
func savedCount(name string, n *int64) (int64, error) {
	switch {
	case n == nil:
		return 0, fmt.Errorf("no %q in the state", name)
	case *n < 0:
		return 0, fmt.Errorf("negative %s count %d", name, *n)
	}
	return *n, nil
}
