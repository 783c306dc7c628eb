package runtime

import (
	"strconv"

	"github.com/flowrun/flowrun/runtime/onerror"
	"github.com/flowrun/flowrun/runtime/overflow"
)

// Graph is a pipeline ready to run: its nodes and the bounded edges between
// them. The operators package builds it from a plan; the runtime never sees
// the plan itself.
type Graph struct {
	Pipeline string
	Nodes    []*Node
	Edges    []*Edge
}

// Node is one stage. Exactly one of Source, Processor, Caller, Sink, Fanout
// or Merge is set; a Processor may also implement Holder, Timed and Gate.
type Node struct {
	Name      string
	Source    Source
	Processor Processor
	Caller    Caller
	Sink      Sink
	Fanout    *Fanout
	Merge     bool
	// OnError is the node's error policy; what it leaves unset takes the
	// default of the node's role (onerror.Policy.Resolve).
	OnError onerror.Policy
}

// Kind is what a node does: which of its fields is set.
type Kind uint8

// The node kinds.
const (
	KindSource Kind = iota
	KindProcessor
	KindCaller
	KindSink
	KindFanout
	KindMerge
)

var kindNames = [...]string{KindSource: "source", KindProcessor: "processor", KindCaller: "caller",
	KindSink: "sink", KindFanout: "fanout", KindMerge: "merge"}

// String returns the kind's name, as "sink".
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Kind returns which kind of node n is; a node with none of its fields set
// is a processor (validation rejects it).
func (n *Node) Kind() Kind {
	switch {
	case n.Source != nil:
		return KindSource
	case n.Caller != nil:
		return KindCaller
	case n.Sink != nil:
		return KindSink
	case n.Fanout != nil:
		return KindFanout
	case n.Merge:
		return KindMerge
	}
	return KindProcessor
}

// Operator returns the node's operator: its Source, Processor, Caller or
// Sink, or nil for a fanout or merge.
func (n *Node) Operator() any {
	switch {
	case n.Source != nil:
		return n.Source
	case n.Processor != nil:
		return n.Processor
	case n.Caller != nil:
		return n.Caller
	case n.Sink != nil:
		return n.Sink
	}
	return nil
}

// Stateful returns the node's operator as a Stateful, or nil: only
// processors and sinks keep their state that way (a source keeps its
// position as a Checkpointer).
func (n *Node) Stateful() Stateful {
	if n.Processor == nil && n.Sink == nil {
		return nil
	}
	st, _ := n.Operator().(Stateful)
	return st
}

// Fanout describes a node that sends each record to one or all of its
// outputs.
type Fanout struct {
	Mode FanoutMode
	// Router picks the output in hash mode.
	Router Router
}

// FanoutMode is how a fanout chooses the outputs of a record.
type FanoutMode uint8

// The fanout modes.
const (
	// Broadcast sends every record to every output.
	Broadcast FanoutMode = iota
	// RoundRobin sends each record to the next output in turn.
	RoundRobin
	// Hash sends each record to the output its Router picks.
	Hash
)

// Edge joins two nodes by name. Capacity is its credit limit in records;
// Bytes, when not zero, also limits the bytes in flight. WhenFull is
// overflow.Block for a lossless edge or a lossy mode for a fanout branch.
// DeadLetter marks the edge that takes the From node's failed records.
type Edge struct {
	From, To   string
	Capacity   int
	Bytes      int64
	WhenFull   overflow.Mode
	DeadLetter bool
}
