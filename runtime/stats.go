package runtime

// Stats is a snapshot of an execution's counters, read while it runs.
type Stats struct {
	Pipeline string
	// Nodes holds one entry per node, in graph order.
	Nodes []NodeStats
	// Edges holds one entry per edge, in graph order.
	Edges []EdgeStats
	// InFlight is the number of records on edges now (queued or being
	// processed by their consumer); PeakInFlight is its highest value so far.
	InFlight, PeakInFlight int64
	// BytesInFlight and PeakBytesInFlight count the estimated bytes on edges
	// that limit bytes.
	BytesInFlight, PeakBytesInFlight int64
	// Acks is the number of acknowledgement units not finished yet.
	Acks int64
}

// NodeStats counts what one node did.
type NodeStats struct {
	Name string
	Kind Kind
	// In counts records the node received; Out counts records it emitted
	// (for a sink: records written).
	In, Out int64
	// Errors counts records the node gave up on (after their retries):
	// Skipped and DeadLettered count those the policy skipped or
	// dead-lettered; a record that failed the run counts in Errors only.
	Errors, Skipped, DeadLettered int64
	// Dropped counts records dropped on the node's lossy input edge (it is
	// a lossy branch of a broadcast) because it was full.
	Dropped int64
	// Retries counts retry attempts (per record, or per batch for sinks).
	Retries int64
	// Own holds the counters the node's operator keeps itself (see
	// CountReporter), in the operator's order.
	Own []Count
}

// A CountReporter is a Source, Processor, Caller or Sink that keeps
// counters of its own beyond those the runtime keeps for every node (the
// http source counts its answers by status). Counts may be called at any
// time, concurrently with the operator's work.
type CountReporter interface {
	Counts() []Count
}

// Count is one named counter of an operator. Names are snake_case and
// bounded (never record data), so that they can label metrics.
type Count struct {
	Name  string
	Value int64
}

// NonZero lists the node's non-zero counts in a fixed order: the runtime's
// counters (in, out, errors, retries, skipped, dead_lettered, dropped), then
// the operator's own.
func (n NodeStats) NonZero() []Count {
	var cs []Count
	for _, c := range append([]Count{
		{"in", n.In}, {"out", n.Out}, {"errors", n.Errors}, {"retries", n.Retries},
		{"skipped", n.Skipped}, {"dead_lettered", n.DeadLettered}, {"dropped", n.Dropped},
	}, n.Own...) {
		if c.Value != 0 {
			cs = append(cs, c)
		}
	}
	return cs
}

// SourceRecords sums the records the sources emitted.
func (s Stats) SourceRecords() int64 { return s.sum(KindSource) }

// SinkRecords sums the records the sinks wrote (dead-letter sinks included).
func (s Stats) SinkRecords() int64 { return s.sum(KindSink) }

func (s Stats) sum(k Kind) int64 {
	var total int64
	for _, n := range s.Nodes {
		if n.Kind == k {
			total += n.Out
		}
	}
	return total
}

// EdgeStats describes one edge's fill.
type EdgeStats struct {
	From, To string
	// Capacity and Bytes are the edge's limits (Bytes is 0 when unlimited).
	Capacity int
	Bytes    int64
	// Fill is the number of records queued on the edge or being processed
	// by its consumer; FillBytes their estimated size when Bytes is set.
	Fill      int64
	FillBytes int64
	// Dropped counts records a lossy edge dropped.
	Dropped int64
}
