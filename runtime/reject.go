package runtime

import (
	"context"

	"github.com/flowrun/flowrun/runtime/onerror"
)

// Rejecter is implemented by the Emitter the runtime gives a source. A
// source hands it input it cannot turn into a record (a malformed line), and
// the source's on_error policy applies: skip counts and logs it,
// dead_letter (and retry, when the source has a dead letter) sends it to the
// dead-letter sink with the error, and stop (and retry without a dead
// letter, since reading the same bytes again cannot mend them) returns an
// error wrapping err, which the source returns from Run: the run then fails
// once every record the source emitted before is written.
type Rejecter interface {
	Reject(ctx context.Context, rec Record, err error) error
}

// Reject applies out's policy to rec, which a source could not decode. An
// Emitter that is not a Rejecter (a test's) gets err back: the source stops.
func Reject(ctx context.Context, out Emitter, rec Record, err error) error {
	if r, ok := out.(Rejecter); ok {
		return r.Reject(ctx, rec, err)
	}
	return err
}

// rejected is a source's undecodable input under a policy that stops the
// run: the source returns it from Run, and the run fails only once what the
// source emitted before it is written.
type rejected struct {
	rec Record
	err error
}

func (r *rejected) Error() string { return r.err.Error() }
func (r *rejected) Unwrap() error { return r.err }

// Reject implements Rejecter.
func (em *emitter) Reject(ctx context.Context, rec Record, err error) error {
	n := em.n
	switch mode := n.policy.Mode; {
	case mode == onerror.Skip:
	case em.dlo != nil && (mode == onerror.DeadLetter || mode == onerror.Retry):
		em.ex.emitGate.RLock()
		defer em.ex.emitGate.RUnlock()
		select {
		case em.sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		defer func() { <-em.sem }()
	default:
		n.errors.Add(1)
		return &rejected{rec, err}
	}
	if !n.settle(em.ex.opCtx, em.dlo, rec, err) {
		return context.Canceled
	}
	// Flush at once: a source may wait a long time for more input.
	if em.dlo != nil && !em.dlo.flush(em.ex.opCtx) {
		return context.Canceled
	}
	return nil
}
