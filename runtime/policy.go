package runtime

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff returns the wait before retry number attempt (1 for the first
// retry) under p (see [Backoff]).
func backoff(p ErrorPolicy, attempt int) time.Duration {
	return Backoff(p.Backoff, p.MaxBackoff, attempt)
}

// Backoff returns the wait before try number attempt (1 for the first):
// initial doubled per try, capped at limit, with "equal jitter": a
// uniformly random duration in [d/2, d].
func Backoff(initial, limit time.Duration, attempt int) time.Duration {
	d := initial
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

func (n *node) recordError(rec Record, err error) *StageError {
	return &StageError{
		Pipeline: n.ex.pipeline, Stage: n.spec.Name,
		HasRecord: true, Source: rec.Meta.Source, Position: rec.Meta.Position,
		Err: err,
	}
}

func (n *node) logSkip(rec Record, err error, count int) {
	n.log.Warn("record skipped",
		"pipeline", n.ex.pipeline, "stage", n.spec.Name, "error", err.Error(),
		"source", rec.Meta.Source, "position", rec.Meta.Position, "records", count)
}

// deadLetter sends rec on the node's dead-letter edge with the fields
// error and stage added.
func (n *node) deadLetter(ctx context.Context, dlo *outport, rec Record, err error) bool {
	if rec.Fields == nil {
		rec.Fields = make(map[string]any, 2)
	}
	rec.Fields["error"] = err.Error()
	rec.Fields["stage"] = n.spec.Name
	n.deadLettered.Add(1)
	n.log.Warn("record dead-lettered", "pipeline", n.ex.pipeline, "stage", n.spec.Name,
		"error", err.Error(), "source", rec.Meta.Source, "position", rec.Meta.Position)
	return dlo.emit(ctx, rec)
}

// onError applies the node's policy to rec, which failed with err; again
// re-runs the work for a retry. It reports whether the node may go on (false
// when the execution failed or ended).
func (n *node) onError(ctx context.Context, t *task, dlo *outport, rec Record, err error, again func() error) bool {
	p := n.policy
	switch p.Mode {
	case "skip":
		n.skipped.Add(1)
		n.logSkip(rec, err, 1)
		return true
	case "dead_letter":
		return n.deadLetter(ctx, dlo, rec, err)
	case "retry":
		for attempt := 1; attempt < p.Attempts && !IsPermanent(err); attempt++ {
			d := backoff(p, attempt)
			n.log.Debug("retrying record", "pipeline", n.ex.pipeline, "stage", n.spec.Name,
				"error", err.Error(), "attempt", attempt, "backoff", d)
			if !t.sleep(ctx, n.ex.clock, d) {
				return false
			}
			n.retries.Add(1)
			if err = again(); err == nil {
				return true
			}
		}
		if dlo != nil {
			return n.deadLetter(ctx, dlo, rec, err)
		}
		n.ex.fail(n.recordError(rec, err))
		return false
	default:
		n.ex.fail(n.recordError(rec, err))
		return false
	}
}
