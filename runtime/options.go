package runtime

import (
	"github.com/hashicorp/go-hclog"
)

// DefaultBatchSize is the number of records an edge batch holds when
// Options.BatchSize is zero.
const DefaultBatchSize = 256

// DefaultCapacity is the capacity of an edge whose Capacity is zero.
const DefaultCapacity = 1024

// Options tunes an execution. The zero value is ready to use.
type Options struct {
	// Clock is the execution's time; nil means RealClock. Pass the same
	// clock the operators were built with.
	Clock Clock
	// Logger receives skipped records, retries and failures; nil discards.
	Logger hclog.Logger
	// BatchSize is the most records an edge batch holds; 0 means
	// DefaultBatchSize.
	BatchSize int
	// NoFusion runs every processor on its own goroutine instead of fusing
	// chains of simple processors into one loop.
	NoFusion bool
	// Snapshots is set when the caller will take snapshots
	// (Execution.Snapshot): the stateful stages then save their final
	// state as they end, for the snapshots taken after.
	Snapshots bool
	// HoldSources holds every source at its first Emit until
	// Execution.LetSourcesGo, Stop, Kill or a failure: a Snapshot taken
	// meanwhile sees the pipeline before any record, and can be saved
	// before the first record is written.
	HoldSources bool
}
