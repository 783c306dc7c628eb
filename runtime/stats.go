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
	// In counts records the node received; Out counts records it emitted
	// (for a sink: records written).
	In, Out int64
	// Errors counts records the node gave up on (after their retries):
	// Skipped and DeadLettered count those the policy skipped or
	// dead-lettered; a record that failed the run counts in Errors only.
	Errors, Skipped, DeadLettered int64
	// Dropped counts records dropped on the node's lossy output edges.
	Dropped int64
	// Retries counts retry attempts (per record, or per batch for sinks).
	Retries int64
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
