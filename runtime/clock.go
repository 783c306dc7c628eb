package runtime

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (RealClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Sleep waits for d or until ctx is done.
func (RealClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// VirtualClock is a Clock whose time moves only when told: by Advance, or,
// in auto mode, by itself when the executions running on it are idle.
//
// Auto mode rule: the clock counts the goroutines of every execution started
// with it (node loops, sources, Caller calls) that are running. A goroutine
// stops counting while it waits inside the runtime (for records, credit, a
// timer or a backoff) or inside this clock's Sleep called with the context
// the runtime gave it (Source.Run, Gate.Wait, Caller.Call, Sink.Write); it
// counts again the moment something wakes it (a record or credit arriving,
// its timer firing), before it is even scheduled. When the count falls to
// zero the clock jumps to the earliest pending timer and fires every timer
// due then, in the order they were set. So time never moves while any
// goroutine of the execution can still act at the current instant, which
// makes timer-driven operators deterministic: a throttle of 100/s with burst
// 10 passes exactly the records due by each virtual instant.
//
// To take part, an operator must wait with Sleep and the runtime's context
// (a goroutine waiting on After's channel, or on anything outside the
// runtime, counts as running, which only stops auto mode from advancing),
// and must not call Sleep with the runtime's context from a goroutine of its
// own. Sleep and After called by goroutines outside any execution (a test)
// work as ordinary timers on virtual time.
type VirtualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers timerHeap
	seq    uint64
	auto   bool
	busy   int
}

// NewVirtualClock returns a virtual clock reading start, in manual mode.
func NewVirtualClock(start time.Time) *VirtualClock { return &VirtualClock{now: start} }

// Now returns the clock's time.
func (c *VirtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After returns a channel that receives the time once the clock has moved
// d past now.
func (c *VirtualClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.addLocked(d, nil, false)
	c.advanceLocked()
	return t.c
}

// Sleep waits until the clock has moved d past now, or ctx is done.
func (c *VirtualClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	tracked := ctx.Value(trackKey{}) == c
	c.mu.Lock()
	t := c.addLocked(d, nil, tracked)
	if tracked {
		c.busy--
	}
	c.advanceLocked()
	c.mu.Unlock()
	select {
	case <-t.c:
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		if !t.fired {
			heap.Remove(&c.timers, t.index)
			if tracked {
				c.busy++
			}
		}
		c.mu.Unlock()
		return ctx.Err()
	}
}

// Advance moves the clock forward by d, firing due timers in order, each at
// its own time.
func (c *VirtualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	target := c.now.Add(d)
	for len(c.timers) > 0 && !c.timers[0].when.After(target) {
		if c.timers[0].when.After(c.now) {
			c.now = c.timers[0].when
		}
		c.fire(heap.Pop(&c.timers).(*vtimer))
	}
	if target.After(c.now) {
		c.now = target
	}
	c.advanceLocked()
}

// SetAuto turns auto mode on or off (see VirtualClock).
func (c *VirtualClock) SetAuto(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.auto = on
	c.advanceLocked()
}

// Pending returns the number of timers not fired yet.
func (c *VirtualClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// trackKey marks contexts given to operators by an execution running on a
// virtual clock; its value is that clock.
type trackKey struct{}

type vtimer struct {
	when    time.Time
	seq     uint64
	c       chan time.Time
	owner   *task
	sleeper bool
	fired   bool
	index   int
}

func (c *VirtualClock) addLocked(d time.Duration, owner *task, sleeper bool) *vtimer {
	c.seq++
	t := &vtimer{when: c.now.Add(d), seq: c.seq, c: make(chan time.Time, 1), owner: owner, sleeper: sleeper}
	if d <= 0 {
		c.fire(t)
		return t
	}
	heap.Push(&c.timers, t)
	return t
}

func (c *VirtualClock) fire(t *vtimer) {
	t.fired = true
	t.c <- c.now
	if t.sleeper {
		c.busy++
	}
	if t.owner != nil {
		c.notifyLocked(t.owner)
	}
}

// advanceLocked jumps to the next timers while auto mode is on and no
// tracked goroutine is running.
func (c *VirtualClock) advanceLocked() {
	for c.auto && c.busy <= 0 && len(c.timers) > 0 {
		if when := c.timers[0].when; when.After(c.now) {
			c.now = when
		}
		for len(c.timers) > 0 && !c.timers[0].when.After(c.now) {
			c.fire(heap.Pop(&c.timers).(*vtimer))
		}
	}
}

func (c *VirtualClock) stopTimer(t *vtimer) {
	c.mu.Lock()
	if !t.fired {
		heap.Remove(&c.timers, t.index)
		t.fired = true
	}
	c.mu.Unlock()
}

// attach counts n more running goroutines.
func (c *VirtualClock) attach(n int) {
	c.mu.Lock()
	c.busy += n
	c.mu.Unlock()
}

// detach counts one running goroutine less: it has ended.
func (c *VirtualClock) detach() {
	c.mu.Lock()
	c.busy--
	c.advanceLocked()
	c.mu.Unlock()
}

// idle marks t blocked, unless a notification reached it since it last
// looked, in which case it returns false and t must look again.
func (c *VirtualClock) idle(t *task) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.pending {
		t.pending = false
		return false
	}
	t.blocked = true
	c.busy--
	c.advanceLocked()
	return true
}

func (c *VirtualClock) resume(t *task) {
	c.mu.Lock()
	if t.blocked {
		t.blocked = false
		c.busy++
	}
	t.pending = false
	c.mu.Unlock()
}

func (c *VirtualClock) notify(t *task) {
	c.mu.Lock()
	c.notifyLocked(t)
	c.mu.Unlock()
}

func (c *VirtualClock) notifyLocked(t *task) {
	t.pending = true
	if t.blocked {
		t.blocked = false
		c.busy++
	}
}

// timerHeap orders timers by time, then by the order they were set in
// (container/heap).
type timerHeap []*vtimer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].when.Equal(h[j].when) {
		return h[i].seq < h[j].seq
	}
	return h[i].when.Before(h[j].when)
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timerHeap) Push(x any) {
	t := x.(*vtimer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return t
}
