package planner

import (
	"sort"
	"time"
)

// testRegistry is a small registry of kinds for the planner's own tests.
type testRegistry map[[2]string]*Schema

func (r testRegistry) Lookup(block, kind string) (*Schema, bool) {
	s, ok := r[[2]string{block, kind}]
	return s, ok
}

func (r testRegistry) Kinds(block string) []string {
	var out []string
	for k := range r {
		if k[0] == block {
			out = append(out, k[1])
		}
	}
	sort.Strings(out)
	return out
}

func newTestRegistry() testRegistry {
	r := testRegistry{}
	add := func(s *Schema) { r[[2]string{s.Block, s.Kind}] = s }
	add(&Schema{Block: "source", Kind: "file", Options: []OptionSpec{
		{Name: "path", Type: String, Required: true},
		{Name: "codec", Type: Enum, Enum: []string{"lines", "json", "csv"}, Default: "lines"},
	}})
	add(&Schema{Block: "source", Kind: "generate", Options: []OptionSpec{
		{Name: "count", Type: Int, Default: int64(0)},
		{Name: "template", Type: Expr},
	}})
	add(&Schema{Block: "sink", Kind: "stdout"})
	add(&Schema{Block: "sink", Kind: "file", Options: []OptionSpec{
		{Name: "path", Type: String, Required: true},
		{Name: "columns", Type: StringList},
	}})
	add(&Schema{Block: "filter", Kind: "filter", Options: []OptionSpec{{Name: "where", Type: Predicate, Required: true}}})
	add(&Schema{Block: "map", Kind: "map", Options: []OptionSpec{{Name: "to", Type: Expr}, {Name: "set", Type: Fields}},
		Check: func(o Options) error {
			if o.Expr("to") == nil && o.Fields("set") == nil {
				return &OptionError{Option: "to", Message: "set to or set"}
			}
			return nil
		}})
	add(&Schema{Block: "throttle", Kind: "throttle", Options: []OptionSpec{
		{Name: "rate", Type: Float, Required: true},
		{Name: "per", Type: Duration, Default: time.Second},
		{Name: "burst", Type: Int, Default: int64(1)},
	}})
	add(&Schema{Block: "batch", Kind: "batch", Options: []OptionSpec{
		{Name: "size", Type: Int, Default: int64(256)},
	}, InFlight: func(o Options) int { return int(o.Int("size")) }})
	add(&Schema{Block: "fanout", Kind: "fanout", Options: []OptionSpec{
		{Name: "mode", Type: Enum, Enum: []string{"broadcast", "round_robin", "hash"}, Default: "broadcast"},
		{Name: "key", Type: Expr},
	}})
	add(&Schema{Block: "merge", Kind: "merge"})
	add(&Schema{Block: "reduce", Kind: "reduce", Options: []OptionSpec{
		{Name: "init", Type: Value, Default: int64(0)},
		{Name: "step", Type: Expr, Required: true},
		{Name: "into", Type: StageRef},
	}})
	return r
}
