package runtime

import (
	"context"
)

// Rejecter is implemented by the Emitter the runtime gives a source. A
// source hands it input it cannot turn into a record (a malformed line), and
// the source's on_error policy applies: skip counts and logs it,
// dead_letter sends it to the dead-letter sink with the error, stop (and
// retry, since reading the same bytes again cannot mend them) fails the
// source with err.
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

// Reject implements Rejecter.
func (em *emitter) Reject(ctx context.Context, rec Record, err error) error {
	n := em.n
	switch n.policy.Mode {
	case "skip":
		n.skipped.Add(1)
		n.logSkip(rec, err, 1)
		return nil
	case "dead_letter":
		if em.dlo == nil {
			return err
		}
		select {
		case em.sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		defer func() { <-em.sem }()
		if !n.deadLetter(em.ex.opCtx, em.dlo, rec, err) {
			return context.Canceled
		}
		// Flush at once: a source may wait a long time for more input.
		if !em.dlo.flush(em.ex.opCtx) {
			return context.Canceled
		}
		return nil
	default:
		return err
	}
}
