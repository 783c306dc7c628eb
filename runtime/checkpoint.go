package runtime

import (
	"sync"
)

// Checkpoint tracks, for a source, the position up to which every record it
// emitted is finished. A source calls Track with the position just past a
// batch when it emits the batch, and passes the returned function as the
// batch's done callback. Batches may finish in any order; Committed only
// moves past a batch once every earlier batch has finished too, so it is
// always safe to resume from.
type Checkpoint struct {
	mu        sync.Mutex
	committed int64
	// pending holds the end positions of unfinished batches in emit order;
	// finished marks those done out of order.
	pending  []int64
	finished map[int64]bool
}

// NewCheckpoint returns a checkpoint that starts at position start.
func NewCheckpoint(start int64) *Checkpoint {
	return &Checkpoint{committed: start, finished: make(map[int64]bool)}
}

// Track registers a batch that ends at position end (exclusive) and returns
// the callback that marks it finished. Ends must grow from call to call.
func (c *Checkpoint) Track(end int64) (done func()) {
	c.mu.Lock()
	c.pending = append(c.pending, end)
	c.mu.Unlock()
	return func() { c.finish(end) }
}

func (c *Checkpoint) finish(end int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.finished[end] = true
	for len(c.pending) > 0 && c.finished[c.pending[0]] {
		delete(c.finished, c.pending[0])
		c.committed = c.pending[0]
		c.pending = c.pending[1:]
	}
}

// Committed returns the position before which every record is finished.
func (c *Checkpoint) Committed() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.committed
}

// Outstanding returns the number of batches emitted but not finished.
func (c *Checkpoint) Outstanding() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}
