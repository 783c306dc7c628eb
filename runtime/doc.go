// Package runtime runs a Graph: one goroutine per node (consecutive simple
// processors fused into one loop), bounded credit-based edges between them,
// per-batch acknowledgements back to the sources, per-node error policies,
// a real or virtual clock, and live counters.
//
// Start validates a Graph and runs it; the returned Execution is stopped
// gracefully with Stop (sources stop at a checkpoint, everything in flight
// drains, sinks close), at once with Kill, and waited for with Wait. Stats
// reads the counters while it runs.
//
// # Edges and credits
//
// An edge holds at most Edge.Capacity records: queued, being processed by
// the consumer, or reserved by the producer for the batch it is filling. The
// producer reserves credits in bulk (up to the batch size) before it appends
// to its pending batch and sends only against them; the consumer hands the
// credits of a batch back in one step once it has finished the batch (sent
// its results on, written it, or dropped it). A pending batch is sent when
// it is full or when its producer is about to wait (for input, credit, time
// or a gate), so latency stays low at low rates. Records in flight therefore
// never exceed the sum of the edge capacities.
//
// When Edge.Bytes is set the edge also limits bytes in flight. A record's
// size is estimated by a cheap walk of its fields (see RecordSize): 64 bytes
// per record and per map, 16 per value plus the length of strings and keys.
// Bytes are charged when a batch is sent; a batch is split so that the
// bytes in flight stay within the limit, except that a single record larger
// than the limit may pass alone when the edge is empty.
//
// Lossy edges (WhenFull drop_oldest or drop_newest, only on fanout outputs)
// never make the producer wait: drop_newest drops what does not fit,
// drop_oldest evicts the oldest queued records first. Drops are counted.
// Records sent on a lossy edge do not hold acknowledgements.
//
// # Acknowledgements
//
// Each Emitter.Emit call is one acknowledgement unit with a reference count.
// Every batch holds one reference on each unit its records came from; a
// batch derived from another (a processor's output, a broadcast copy, a
// dead-lettered record) takes references before the original lets go of its
// own. A processor that implements Holder keeps the references of the
// records given to it until Held reports 0. When the count falls to zero the
// unit's done callback runs, exactly once.
//
// # Clocks
//
// RealClock is the wall clock. VirtualClock moves only when told: Advance,
// or in auto mode (SetAuto) by jumping to the next pending timer whenever
// every goroutine of the executions running on it is blocked (see
// VirtualClock for the exact rule and what operators must do to take part).
//
// The runtime never imports lang or planner, and it imports no operator.
package runtime
