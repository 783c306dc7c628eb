package runtime

import (
	"context"
	"time"
)

// task is one goroutine of an execution as seen by the wake-up protocol:
// whoever makes progress possible for it (records on its input, credit on
// its output, its timer) calls notify; it parks when it has nothing to do.
// The one-slot channel never loses a wake-up: a task checks its condition,
// parks, and checks again after every wake-up, spurious ones included.
type task struct {
	wake chan struct{}
	vc   *VirtualClock // nil unless the execution runs on a virtual clock
	// pending and blocked are guarded by vc.mu.
	pending, blocked bool
}

func newTask(vc *VirtualClock) *task {
	return &task{wake: make(chan struct{}, 1), vc: vc}
}

func (t *task) notify() {
	if t.vc != nil {
		t.vc.notify(t)
	}
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// rewake re-arms t's wake-up after an inner wait (for credit, bytes or a
// timer) that may have consumed a notification meant for the outer wait:
// the outer wait then looks again instead of sleeping through it.
func (t *task) rewake() {
	t.notify()
}

// park waits for a notification, timer or the end of ctx, and reports
// whether it was the timer (whose value it then consumed). The caller
// checked its condition just before and checks it again afterwards.
func (t *task) park(ctx context.Context, timer <-chan time.Time) bool {
	if t.vc != nil {
		if !t.vc.idle(t) {
			return false
		}
		defer t.vc.resume(t)
	}
	select {
	case <-t.wake:
	case <-timer:
		return true
	case <-ctx.Done():
	}
	return false
}

// timer returns a channel that fires after d on clock, owned by t, and a
// function that stops it.
func (t *task) timer(clock Clock, d time.Duration) (<-chan time.Time, func()) {
	switch c := clock.(type) {
	case *VirtualClock:
		c.mu.Lock()
		vt := c.addLocked(d, t, false)
		c.mu.Unlock()
		return vt.c, func() { c.stopTimer(vt) }
	case RealClock:
		tm := time.NewTimer(d)
		return tm.C, func() { tm.Stop() }
	default:
		return clock.After(d), func() {}
	}
}

// sleep waits d on clock or until ctx ends; it reports whether the full
// time passed.
func (t *task) sleep(ctx context.Context, clock Clock, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	c, stop := t.timer(clock, d)
	defer stop()
	defer t.rewake()
	for ctx.Err() == nil {
		if t.park(ctx, c) {
			return true
		}
	}
	return false
}
