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
// # Scheduling
//
// Every source, sink, fanout, merge and caller node runs on its own
// goroutine. Processors do too, except that a chain of plain processors
// (neither Holder, Timed nor Gate) joined by lossless edges without a byte
// limit is fused into one loop that takes each record of a batch through
// every stage; Options.NoFusion turns that off. A Gate is asked before each
// record (TryWait first when it is a TryGate), a Timed processor is ticked
// when its deadline comes, and a Holder is flushed at end of stream. A
// Caller gets up to Concurrency calls at once, each on its own goroutine,
// and its results go on in input order when Ordered. A broadcast fanout
// waits for credit on every lossless branch (the slowest gates) and gives
// each branch but the first a deep copy of the records; round_robin deals
// records in turn and hash asks the Router. A merge takes up to a batch of
// records from each input in turn. A sink is written one batch at a time, small batches
// queued together being joined up to the batch size.
//
// End of stream flows down the graph: a source's Run returns, its edge
// closes, each node finishes what it holds (holders flush) and closes its
// outputs, sinks Close, and the execution ends. Stop cancels only the
// sources' context, so the same happens with what is in flight; Kill
// cancels everything, abandons what is in flight unacknowledged and still
// closes the sinks.
//
// # Errors
//
// A node's ErrorPolicy applies to a record its processor, router or call
// failed on, and to a batch its sink failed to write: stop fails the
// execution with a *StageError naming the pipeline, the stage and the
// record's source and position; skip counts the records and logs them at
// warn; retry tries again, Attempts tries in all, waiting Backoff doubled
// per retry up to MaxBackoff, each wait drawn uniformly from its upper half
// (on the execution's clock), then dead-letters the records if the node has
// a dead-letter edge and fails the execution otherwise; dead_letter sends
// them at once on the dead-letter edge with the fields "error" (the
// message) and "stage" added, counted and logged at warn. The default is
// stop, and retry for sinks. A panic in an operator fails the execution.
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
