package runtime

import (
	"context"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/flowrun/flowrun/runtime/onerror"
)

// Every failure of a stage, whatever failed (a processor on a record, a
// sink's write, a buffered call, a router, a source's undecodable input),
// goes through the two functions of this file: tries retries a transient
// error as the policy allows, and settle gives up on one record the way the
// policy says.

// role returns the node's role for its default policy.
func role(n *Node) onerror.Role {
	if n.Kind() == KindSink {
		return onerror.Sink
	}
	return onerror.Other
}

// tries retries again, whose first try failed with err, until it succeeds,
// the policy gives up on its error, or ctx ends, waiting the policy's delay
// with sleep between tries (sleep reports false when ctx ended). It returns
// the last error, nil on success. A *onerror.Failures error is not retried
// here: its records are settled one by one.
func (n *node) tries(ctx context.Context, sleep func(time.Duration) bool, err error, again func() error) error {
	for tried := 1; err != nil && ctx.Err() == nil && n.policy.MayRetry(err, tried) && !isFailures(err); tried++ {
		d := n.policy.Delay(err, tried)
		n.log.Warn("retrying", "pipeline", n.ex.pipeline, "stage", n.spec.Name,
			"error", err.Error(), "try", tried+1, "backoff", d)
		if !sleep(d) {
			return err
		}
		n.retries.Add(1)
		err = again()
	}
	return err
}

func isFailures(err error) bool {
	var f *onerror.Failures
	return errors.As(err, &f)
}

// settle gives up on rec, which failed with err after the tries its policy
// allows: skip counts and logs it, dead_letter (and retry, when the stage
// has a dead letter) sends it there, and stop and retry fail the run. It
// reports whether the node may go on.
func (n *node) settle(ctx context.Context, dlo *outport, rec Record, err error) bool {
	n.errors.Add(1)
	switch {
	case ctx.Err() != nil:
		return false
	case n.policy.Mode == onerror.Skip:
		total := n.skipped.Add(1)
		n.skipWarn.Do(func() {
			n.log.Warn("record skipped", "pipeline", n.ex.pipeline, "stage", n.spec.Name, "error", err.Error(),
				"source", rec.Meta.Source, "position", rec.Meta.Position, "skipped_total", total)
		})
		return true
	case dlo != nil && (n.policy.Mode == onerror.DeadLetter || n.policy.Mode == onerror.Retry):
		return n.deadLetter(ctx, dlo, rec, err)
	default:
		n.ex.fail(n.recordError(rec, err))
		return false
	}
}

func (n *node) recordError(rec Record, err error) *StageError {
	return &StageError{
		Pipeline: n.ex.pipeline, Stage: n.spec.Name,
		HasRecord: true, Source: rec.Meta.Source, Position: rec.Meta.Position,
		Err: err,
	}
}

// deadLetter sends rec on the node's dead-letter edge with the fields
// error, stage and, when known, where it came from (source, file,
// position) added, and its NaN and infinite numbers written as text (see
// finite).
func (n *node) deadLetter(ctx context.Context, dlo *outport, rec Record, err error) bool {
	if rec.Fields == nil {
		rec.Fields = make(map[string]any, 5)
	}
	finite(rec.Fields)
	rec.Fields["error"] = err.Error()
	rec.Fields["stage"] = n.spec.Name
	if m := rec.Meta; m.Source != "" && m.Source != n.spec.Name {
		origin := map[string]any{"source": m.Source, "position": m.Position}
		if m.File != "" {
			origin["file"] = m.File
		}
		rec.Fields["origin"] = origin
	}
	total := n.deadLettered.Add(1)
	n.deadWarn.Do(func() {
		n.log.Warn("record dead-lettered", "pipeline", n.ex.pipeline, "stage", n.spec.Name,
			"error", err.Error(), "source", rec.Meta.Source, "position", rec.Meta.Position, "dead_lettered_total", total)
	})
	return dlo.emit(ctx, rec)
}

// finite replaces, in place, every NaN and infinite number in the values
// of v (a division by zero gives one) with its text: "NaN", "+Inf" or
// "-Inf". No JSON encoder takes such a number, so a record a sink failed to
// encode would otherwise fail its dead-letter sink too.
func finite(v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := nonFinite(e); ok {
				x[k] = s
			} else {
				finite(e)
			}
		}
	case []any:
		for i, e := range x {
			if s, ok := nonFinite(e); ok {
				x[i] = s
			} else {
				finite(e)
			}
		}
	}
}

// nonFinite returns the text of v when v is a NaN or infinite number.
func nonFinite(v any) (string, bool) {
	f, ok := v.(float64)
	if !ok || !(math.IsNaN(f) || math.IsInf(f, 0)) {
		return "", false
	}
	return strconv.FormatFloat(f, 'g', -1, 64), true
}
