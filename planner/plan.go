package planner

import (
	"time"

	"github.com/flowrun/flowrun/runtime/onerror"
	"github.com/flowrun/flowrun/runtime/overflow"

	"github.com/flowrun/flowrun/lang/diag"
	"github.com/flowrun/flowrun/planner/expression"
)

// Plan is the checked result of planning a set of .flow files: every pipeline
// as a DAG of stages joined by bounded edges, the variables in force and the
// test blocks. It is a plain value: it can be printed, compared and tested
// without running anything.
type Plan struct {
	Pipelines []*Pipeline
	Tests     []*Test
	// Vars holds the value of every declared variable after --var overrides.
	Vars map[string]any
}

// Pipeline is one pipeline block planned into a DAG.
type Pipeline struct {
	Name string
	// Stages lists every stage in topological order: a stage comes after all
	// the stages it reads from. Implicit fanout and merge stages are included.
	Stages []*Stage
	// Edges lists every edge, in the order of Stages' outputs.
	Edges []*Edge
	// EdgeCapacity is the default capacity, in records, of an edge.
	EdgeCapacity int
	// EdgeBytes is the default limit, in bytes, of an edge; 0 means none.
	EdgeBytes int64
	// Bound is the most memory the pipeline may hold in flight.
	Bound MemoryBound
	Range diag.Range
}

// Stage returns the stage named name, or nil.
func (p *Pipeline) Stage(name string) *Stage {
	for _, s := range p.Stages {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// MemoryBound states how much a pipeline may hold in flight: the sum of its
// edge capacities plus the in-flight limits of batching, windowing and
// buffered stages.
type MemoryBound struct {
	// Records is the most records in flight in the whole pipeline.
	Records int
	// Bytes is the most bytes in flight on edges that set edge_bytes; 0 when
	// no edge sets it.
	Bytes int64
}

// Stage is one node of the DAG.
type Stage struct {
	// Name is unique in its pipeline. Implicit stages are named after the
	// stage they serve, e.g. "logs.fanout".
	Name string
	// Block is the block type: source, sink, filter, map, throttle, ...
	Block string
	// Kind is the registered kind: the `kind` option of sources and sinks,
	// and the block type for every other stage.
	Kind string
	// Implicit is true for fanout and merge stages the planner inserted.
	Implicit bool
	// Options holds every option of the stage's schema, decoded and with
	// defaults applied (see OptionType for the Go type of each value).
	Options Options
	// OnError is the stage's error policy.
	OnError ErrorPolicy
	Inputs  []*Edge
	Outputs []*Edge
	Range   diag.Range
}

// ErrorPolicy says what a stage does with a record it fails to process:
// the runtime's policy, and where its dead letters go.
type ErrorPolicy struct {
	onerror.Policy
	// DeadLetter names the sink that receives dead-lettered records, or is
	// empty.
	DeadLetter string
}

// Edge joins two stages; Capacity is its credit limit in records and Bytes,
// when not zero, its limit in bytes.
type Edge struct {
	From, To *Stage
	Capacity int
	Bytes    int64
	// WhenFull is overflow.Block for a lossless edge (the producer waits for
	// credit), or a lossy mode for a branch of a broadcast fanout.
	WhenFull overflow.Mode
	// DeadLetter marks the edge that carries a stage's failed records to
	// its dead-letter sink.
	DeadLetter bool
}

// Options maps an option name to its decoded value.
type Options map[string]any

// String returns the string option name, or "".
func (o Options) String(name string) string { s, _ := o[name].(string); return s }

// Int returns the integer option name, or 0.
func (o Options) Int(name string) int64 { n, _ := o[name].(int64); return n }

// Float returns the number option name (an integer is converted), or 0.
func (o Options) Float(name string) float64 {
	switch v := o[name].(type) {
	case float64:
		return v
	case int64:
		return float64(v)
	}
	return 0
}

// Bool returns the boolean option name, or false.
func (o Options) Bool(name string) bool { b, _ := o[name].(bool); return b }

// Duration returns the duration option name, or 0.
func (o Options) Duration(name string) time.Duration { d, _ := o[name].(time.Duration); return d }

// Expr returns the expression option name, or nil when it is not set.
func (o Options) Expr(name string) *expression.Program {
	p, _ := o[name].(*expression.Program)
	return p
}

// Fields returns the field-expression block option name (such as map's set).
func (o Options) Fields(name string) []Field { f, _ := o[name].([]Field); return f }

// Field is one attribute of a field block such as map's `set`: the field
// name and the expression that computes it.
type Field struct {
	Name string
	Expr *expression.Program
}

// Test is a test block: records given to named sources and the records
// expected at named sinks.
type Test struct {
	Name     string
	Pipeline string
	// Inputs maps a source name to the records it yields instead of reading.
	Inputs map[string][]map[string]any
	// Expect maps a sink name to the records it must receive, in order.
	Expect map[string][]map[string]any
	// Ignore maps a sink name to the fields left out of the comparison of
	// its records (such as the error text of dead-lettered records).
	Ignore map[string][]string
	Range  diag.Range
}
