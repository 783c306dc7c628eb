package runtime

// Finisher is implemented by processors that can end their stream before
// their input ends (take). Once Finished reports true the runtime ends the
// processor's output, so the stages after it flush and finish, marks its
// input as no longer wanted, so that what only feeds it stops (see unwant),
// and acknowledges without processing whatever still arrives. When every
// sink of an execution has finished, the execution stops its sources
// gracefully, so a pipeline whose sinks can receive nothing more ends even
// if its sources could go on for ever.
type Finisher interface {
	// Finished reports whether the processor will emit nothing more.
	Finished() bool
}

// sinkFinished counts a sink that returned; the last one stops the sources.
func (ex *Execution) sinkFinished() {
	if ex.liveSinks.Add(-1) == 0 {
		ex.srcCancel()
	}
}

// finished reports whether a stage of the chain will emit nothing more.
func (pl *procLoop) finished() bool {
	for _, f := range pl.finishers {
		if f.Finished() {
			return true
		}
	}
	return false
}

// end closes the chain's outputs once a stage has finished or nothing
// downstream wants its output, and marks its input as no longer wanted; from
// then on the chain only acknowledges what arrives.
func (pl *procLoop) end() {
	pl.unhold(true)
	for _, o := range pl.ports {
		o.finish(pl.ctx)
	}
	pl.ended = true
	pl.in.unwant()
}

// discard acknowledges b without processing it.
func (pl *procLoop) discard(b *batch) {
	pl.in.release(len(b.recs), b.bytes)
	pl.ex.pool.put(b)
}
