package runtime

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Record is one item flowing through a pipeline: a JSON-like object whose
// values are nil, bool, int64, float64, string, []any or map[string]any, and
// where it came from.
type Record struct {
	Fields map[string]any
	Meta   Meta
}

// Meta says where a record came from.
type Meta struct {
	// Source is the name of the source stage that read the record.
	Source string
	// Position is the record's place in its source: a byte offset for files,
	// a sequence number for generators, a key or broker sequence elsewhere.
	Position int64
	// File names the file a file source read the record from.
	File string
	// Time is when the source read the record.
	Time time.Time
}

// Clock is the runtime's time. Operators that wait or act on time take it
// from here, never from package time, so tests can run them on a virtual
// clock.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives the time once d has passed.
	After(d time.Duration) <-chan time.Time
	// Sleep waits for d, or until ctx is done (then it returns ctx.Err()).
	Sleep(ctx context.Context, d time.Duration) error
}

// Env is what the runtime gives an operator when the pipeline starts.
type Env struct {
	Pipeline string
	Stage    string
	Clock    Clock
	Logger   hclog.Logger
}

// Source reads records from outside the pipeline.
type Source interface {
	// Run reads and emits records until the input ends, then returns nil.
	// When ctx is cancelled the source must stop at a checkpoint: emit
	// nothing more and return nil promptly.
	Run(ctx context.Context, out Emitter) error
}

// Emitter is how a source hands records to the pipeline.
type Emitter interface {
	// Emit sends recs downstream as one acknowledgement unit. It blocks while the source's edge has no
	// credit (that is backpressure) and returns ctx.Err() if ctx ends first.
	// done, when not nil, is called exactly once, after every record derived
	// from recs is finished: written by every sink it reaches, filtered out or
	// dead-lettered. Only then may the source acknowledge or checkpoint them.
	//
	// Emit copies the records out of recs before it returns, so the caller
	// may reuse the slice once it has returned. When it returns
	// an error, part of recs may have been sent already; done is then never
	// called (the records count as not delivered). A graceful stop
	// (Execution.Stop) never cuts a call short once part of recs is sent:
	// the call then sends the rest, so after a graceful stop every call
	// either sent all of its records or none. done runs on a runtime
	// goroutine: it must be quick and must not call Emit. Emit may be called
	// from several goroutines; calls are serialized.
	Emit(ctx context.Context, recs []Record, done func()) error
}

// Checkpointer is implemented by sources that know how far their input is
// finished, which is where a later run can resume without losing a record.
type Checkpointer interface {
	// Checkpoint returns the source's position as a JSON-encodable value.
	Checkpoint() any
}

// Resumer is implemented by sources that can continue where an earlier run
// of the same source stopped. Whoever builds the graph calls Resume, before
// the execution starts, with a value that source's Checkpoint returned; the
// source then skips everything before it. A checkpoint it cannot use (of
// another shape) is an error.
type Resumer interface {
	Resume(checkpoint any) error
}

// Processor handles one record at a time: filter, map, take, skip, dedupe,
// reduce, batch, window.
type Processor interface {
	// Process handles rec and calls emit zero or more times; emitting
	// nothing means the record is filtered out. A non-nil error applies the
	// stage's on_error policy to rec. Process is never called concurrently.
	//
	// Process owns rec: it may change rec.Fields in place and emit it (the
	// runtime gives every branch of a broadcast its own deep copy). emit may
	// block while the output edge has no credit.
	Process(rec Record, emit func(Record)) error
}

// Holder is implemented by processors that keep records between calls
// (batch, window, reduce). The runtime holds the acknowledgements of the
// records given to such a processor until Held reports zero.
type Holder interface {
	// Held is the number of records the processor holds now.
	Held() int
	// Flush emits what is held; it is called at end of stream.
	Flush(emit func(Record)) error
}

// Timed is implemented by processors that act on time (a batch timeout, a
// time window). The runtime calls Tick once the clock reaches Deadline.
type Timed interface {
	// Deadline returns the next time Tick must run, and false when none is
	// due.
	Deadline() (time.Time, bool)
	Tick(now time.Time, emit func(Record)) error
}

// Gate is implemented by processors that pace their input (throttle): the
// runtime calls Wait before handing it each record.
type Gate interface {
	// Wait blocks until one more record may pass, or ctx ends.
	// To keep a virtual clock in auto mode deterministic, wait with the
	// clock's Sleep and this ctx, not on its After channel.
	Wait(ctx context.Context) error
}

// TryGate may be implemented by a Gate that can let a record pass without
// waiting. The runtime calls TryWait first and keeps filling its output
// batch while it returns true; only when it returns false does it send what
// it holds and call Wait, so a gate passing records at a high rate does not
// cut batches down to one record.
type TryGate interface {
	// TryWait lets one more record pass now and returns true, or returns
	// false, changing nothing, when the record would have to wait.
	TryWait() bool
}

// Caller runs an asynchronous call per record (the buffered stage). The
// runtime runs up to Concurrency calls at once and, when Ordered, emits the
// results in input order.
type Caller interface {
	// Call returns the record with the call's result merged into it.
	Call(ctx context.Context, rec Record) (Record, error)
	Concurrency() int
	Ordered() bool
}

// Router chooses the output of a fanout stage in hash mode.
type Router interface {
	// Route returns the index of the output rec goes to, in [0, n).
	Route(rec Record, n int) (int, error)
}

// Sink writes records outside the pipeline.
type Sink interface {
	// Write writes recs. When it returns nil the records are as durable as
	// the sink promises and count as finished. An error applies the stage's
	// on_error policy to the whole batch (retry with backoff by default).
	// The runtime reuses recs after Write returns: keep the records (or
	// copies), never the slice.
	Write(ctx context.Context, recs []Record) error
	// Close flushes and releases the sink at end of stream.
	Close() error
}

// FailureAware is implemented by a sink that closes differently when the
// run failed or was killed (a file sink that wrote nothing leaves the
// previous output as it was): the runtime calls RunFailed just before
// Close then, on the sink's goroutine.
type FailureAware interface {
	RunFailed()
}

// Stateful is implemented by processors and sinks whose state a restarted
// pipeline keeps (see Execution.Snapshot): a reduce's totals, a dedupe's
// keys, a file sink's committed length.
type Stateful interface {
	// SaveState returns the operator's state as of the records it has
	// handled so far. The runtime calls it on the operator's own goroutine,
	// between records (or after Close, for the final state). A sink first
	// makes durable everything it wrote.
	SaveState() ([]byte, error)
	// RestoreState sets the state from what SaveState returned in an
	// earlier run. Whoever builds the graph calls it before the execution
	// starts (a sink before Open).
	RestoreState(state []byte) error
}
