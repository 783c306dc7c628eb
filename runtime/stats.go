package runtime

import (
	"sync/atomic"
	"time"

	"github.com/flowrun/flowrun/runtime/overflow"
)

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
	// Busy is the time the node spent working, measured per batch (see
	// BusyMeasured): for a processor, the time its goroutine took over its
	// input batches, less the time it waited for credit on its output
	// (processors fused onto one goroutine each count the chain's time, and
	// a gate's wait, a throttle's pacing, counts as work); for a caller, the
	// time its calls took (retries included) divided by its concurrency, so
	// that a caller whose every slot is always taken is busy all the time;
	// for a sink, the time its writes took, retries and their backoff
	// included.
	Busy time.Duration
	// Writes is, for a sink, how long each Write call took.
	Writes Histogram
	// TapDropped counts the samples taps on the node missed because their
	// buffer was full (see Tap).
	TapDropped int64
}

// epoch is the origin of monoNow.
var epoch = time.Now()

// monoNow reads the monotonic clock only, as the time since epoch: one
// clock read where time.Now makes two (the wall clock too), for the busy
// times measured on every batch.
func monoNow() time.Duration { return time.Since(epoch) }

// BusyMeasured reports whether the runtime measures the busy time of nodes
// of kind k: processors, callers and sinks. Sources, fanouts and merges
// report none.
func BusyMeasured(k Kind) bool {
	return k == KindProcessor || k == KindCaller || k == KindSink
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
	// WhenFull is the edge's overflow mode: Block for a lossless edge.
	WhenFull overflow.Mode
	// DeadLetter marks the edge that takes From's failed records.
	DeadLetter bool
}

// WriteBuckets are the upper bounds of the buckets of a sink's write-time
// histogram (NodeStats.Writes), from 100µs to 10s.
var WriteBuckets = []time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// Histogram is a snapshot of a histogram of durations.
type Histogram struct {
	// Bounds are the buckets' upper bounds, in increasing order (shared:
	// do not modify); Counts[i] counts the observations at most Bounds[i]
	// and above the bound before it; Counts[len(Bounds)] those above the
	// last bound. Counts is nil when nothing was observed.
	Bounds []time.Duration
	Counts []uint64
	// Count is the number of observations and Sum their total.
	Count uint64
	Sum   time.Duration
}

// Cumulative returns, for each bound, the number of observations at most
// that bound, as Prometheus buckets count them.
func (h Histogram) Cumulative() []uint64 {
	out := make([]uint64, len(h.Bounds))
	var c uint64
	for i := range h.Bounds {
		if i < len(h.Counts) {
			c += h.Counts[i]
		}
		out[i] = c
	}
	return out
}

// histogram counts durations into fixed buckets with atomic counters: one
// Observe is a short scan of the bounds and two atomic adds.
type histogram struct {
	bounds []time.Duration
	counts []atomic.Uint64
	sum    atomic.Int64
}

func newHistogram(bounds []time.Duration) *histogram {
	return &histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

func (h *histogram) observe(d time.Duration) {
	i := 0
	for i < len(h.bounds) && d > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// snapshot reads the histogram; a nil one reads as empty.
func (h *histogram) snapshot() Histogram {
	if h == nil {
		return Histogram{}
	}
	s := Histogram{Bounds: h.bounds, Counts: make([]uint64, len(h.counts)), Sum: time.Duration(h.sum.Load())}
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
		s.Count += s.Counts[i]
	}
	return s
}
