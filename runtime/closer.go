package runtime

import "errors"

// SourceCloser is implemented by sources that keep a connection open after
// Run returned because the done callbacks of the records still draining
// need it: a broker consumer acknowledges each message, or commits its
// offset, as its records finish, and those may finish long after Run
// stopped reading. The runtime calls Close once per execution, after every
// stage has returned, so no done callback of the source runs afterwards;
// it is called however the execution ended (end of stream, Stop, Kill or
// failure), and also when Run was never reached. A Close error fails an
// execution that had not failed.
type SourceCloser interface {
	Close() error
}

// closeSources closes every source that implements SourceCloser.
func (ex *Execution) closeSources() {
	var errs []error
	for _, n := range ex.nodes {
		c, ok := n.spec.Source.(SourceCloser)
		if !ok {
			continue
		}
		if err := c.Close(); err != nil {
			errs = append(errs, &StageError{Pipeline: ex.pipeline, Stage: n.spec.Name, Err: err})
		}
	}
	if err := errors.Join(errs...); err != nil {
		ex.mu.Lock()
		if ex.err == nil {
			ex.err = err
		}
		ex.mu.Unlock()
	}
}
