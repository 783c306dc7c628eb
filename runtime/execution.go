package runtime

import (
	"context"
	"errors"
)

// ErrKilled is returned by Execution.Wait after Kill: records in flight were
// abandoned and their sources not acknowledged.
var ErrKilled = errors.New("execution killed")

// Execution is a running graph.
type Execution struct {
	done chan struct{}
	err  error
}

// Start validates g and starts running it. It returns an error, and starts
// nothing, when the graph is malformed. When ctx ends the execution stops
// gracefully, as with Stop.
func Start(ctx context.Context, g *Graph, opts Options) (*Execution, error) {
	return nil, errors.New("runtime: not implemented yet")
}

// Stop stops the execution gracefully: the sources' context is cancelled so
// they stop at a checkpoint, what is in flight drains through every stage,
// holders flush and sinks close. It does not wait; use Wait.
func (e *Execution) Stop() {}

// Kill stops the execution at once: every stage returns as soon as it can,
// sinks are closed, and what was in flight is abandoned (not acknowledged).
func (e *Execution) Kill() {}

// Wait waits until the execution has finished and returns nil after end of
// stream or Stop, ErrKilled after Kill, or the first error that failed it.
func (e *Execution) Wait() error {
	<-e.done
	return e.err
}

// Done is closed when the execution has finished.
func (e *Execution) Done() <-chan struct{} { return e.done }

// Stats returns a snapshot of the execution's counters.
func (e *Execution) Stats() Stats { return Stats{} }
