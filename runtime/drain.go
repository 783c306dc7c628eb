package runtime

import (
	"errors"
	"fmt"
	"time"
)

// DrainTimeoutError is what Wait returns for an execution that StopWithin
// killed because its drain had not finished in time. It wraps ErrKilled:
// the records still in flight were abandoned, so their sources were not
// acknowledged for them and a durable source delivers them again.
type DrainTimeoutError struct {
	Pipeline string
	// Timeout is the bound the drain did not finish within.
	Timeout time.Duration

	ex *Execution
}

// Abandoned returns how many records were still on the execution's edges
// (queued, or being processed by their consumer) when it ended: the records
// the kill abandoned. Records a holder (batch, window, reduce) had taken
// from its edge are not counted, though they are abandoned too.
func (e *DrainTimeoutError) Abandoned() int64 {
	if e.ex == nil {
		return 0
	}
	// The error is only seen through Wait, once the execution has ended,
	// when the count no longer moves.
	return e.ex.inFlight.Load()
}

// Error says which pipeline did not drain, within what, and what was lost.
func (e *DrainTimeoutError) Error() string {
	return fmt.Sprintf("pipeline %q: drain not finished within %s: killed, %d records in flight abandoned (not acknowledged)", e.Pipeline, e.Timeout, e.Abandoned())
}

// Unwrap returns ErrKilled.
func (e *DrainTimeoutError) Unwrap() error { return ErrKilled }

// StopWithin stops the execution gracefully, as Stop does, and kills it if
// the drain has not finished within timeout (wall-clock time, whatever the
// execution's Clock): Wait then returns a *DrainTimeoutError, joined to the
// error that had failed the execution if there was one. A timeout of zero
// or less waits without bound: StopWithin is then Stop. It does not wait;
// use Wait. Called again, the earliest deadline wins.
func (e *Execution) StopWithin(timeout time.Duration) {
	e.Stop()
	if timeout <= 0 {
		return
	}
	go func() {
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-e.done:
		case <-t.C:
			e.killAfterDrain(&DrainTimeoutError{Pipeline: e.pipeline, Timeout: timeout, ex: e})
		}
	}()
}

// killAfterDrain kills the execution, as Kill does, with err as the reason
// Wait gives, unless it has already ended or was killed.
func (e *Execution) killAfterDrain(err *DrainTimeoutError) {
	e.mu.Lock()
	select {
	case <-e.done:
		e.mu.Unlock()
		return
	default:
	}
	switch {
	case e.err == nil:
		e.err = err
	case !errors.Is(e.err, ErrKilled):
		e.err = errors.Join(e.err, err)
	}
	e.killed = true
	e.mu.Unlock()
	e.runCancel()
}
