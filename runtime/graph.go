package runtime

import "time"

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
	OnError   ErrorPolicy
}

// Fanout describes a node that sends each record to one or all of its
// outputs.
type Fanout struct {
	// Mode is broadcast, round_robin or hash.
	Mode string
	// Router picks the output in hash mode.
	Router Router
}

// ErrorPolicy says what a node does with a record it fails to process.
type ErrorPolicy struct {
	// Mode is stop, skip, retry or dead_letter.
	Mode       string
	Attempts   int
	Backoff    time.Duration
	MaxBackoff time.Duration
}

// Edge joins two nodes by name. Capacity is its credit limit in records;
// Bytes, when not zero, also limits the bytes in flight. WhenFull is "" for a
// lossless edge or drop_oldest / drop_newest for a lossy fanout branch.
// DeadLetter marks the edge that takes the From node's failed records.
type Edge struct {
	From, To   string
	Capacity   int
	Bytes      int64
	WhenFull   string
	DeadLetter bool
}
