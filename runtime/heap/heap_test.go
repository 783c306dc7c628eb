package heap

import (
	"runtime"
	"runtime/debug"
	"testing"
)

// gcPercent reads the GC percentage without changing it.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestTuneRaisesThePercentageForASmallHeap(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	before := gcPercent()
	restore := Tune(16)
	runtime.GC()
	runtime.GC() // the tuner runs after a collection, in the finalizer goroutine
	got := 0
	for range 100 {
		if got = gcPercent(); got > 100 {
			break
		}
		runtime.Gosched()
	}
	// With a live heap of well under 1 MiB, the percentage is capped by
	// the runtime's 4 MiB minimum heap goal: 16 MiB / 4 MiB = 400%.
	if got <= 100 || got > 400 {
		t.Errorf("GC percent after tuning for 16 MiB = %d, want in (100, 400]", got)
	}
	restore()
	runtime.GC()
	runtime.GC()
	if got := gcPercent(); got != before {
		t.Errorf("GC percent after restore = %d, want %d", got, before)
	}
}

func TestTuneLeavesAnExplicitSettingAlone(t *testing.T) {
	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv(env, "200")
			before := gcPercent()
			restore := Tune(16)
			if got := gcPercent(); got != before {
				t.Errorf("with %s set, Tune changed the GC percent from %d to %d", env, before, got)
			}
			restore()
		})
	}
}

func TestPercent(t *testing.T) {
	tests := []struct {
		name                  string
		target, live, scanned float64
		want                  int
	}{
		{"tiny heap: capped by the minimum heap goal", 12 << 20, 100 << 10, 200 << 10, 300},
		{"heap goal at the target", 64 << 20, 8 << 20, 8 << 20, 700},
		{"live heap above half the target: Go's default", 12 << 20, 8 << 20, 8 << 20, 100},
		{"no live heap yet", 12 << 20, 0, 0, 100},
	}
	for _, tt := range tests {
		if got := percent(tt.target, tt.live, tt.scanned); got != tt.want {
			t.Errorf("%s: percent = %d, want %d", tt.name, got, tt.want)
		}
	}
}
