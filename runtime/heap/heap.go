// Package heap tunes the garbage collector for a streaming process: a live
// heap that is small and bounded, allocated at a high rate.
package heap

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// DefaultTargetMiB is the heap size a pipeline process lets the garbage
// collector grow to before collecting, while the live heap is smaller. A
// pipeline's live heap is small and bounded by its edges' credit, but it
// allocates records at a high rate: with Go's default (collect when the heap
// doubles) a heap of a few MiB is collected hundreds of times a second, and
// the collector and the scavenger returning its pages cost as much CPU as
// the pipeline itself.
const DefaultTargetMiB = 10

// minGCPercent is the lowest GC percentage the tuner sets: Go's default.
const minGCPercent = 100

// heapMinimum is the runtime's smallest heap goal at GOGC=100; it scales
// with the GC percentage, which caps the percentage for a target.
const heapMinimum = 4 << 20

// tuner sets the GC percentage after every collection so that the next
// one starts when the heap reaches target bytes, or doubles once the live
// heap is above half of target. It learns of each collection through a
// finalizer on a sentinel that re-arms itself.
type tuner struct {
	target float64
	sample []metrics.Sample
	// mu orders a retuning against the stop that restores the setting.
	mu      sync.Mutex
	stopped bool
}

// Tune lets the heap grow to targetMiB MiB between collections while the
// live heap is below about half of that; above, the collector runs as with
// Go's default (GOGC=100). It does nothing when targetMiB is 0 or the
// environment sets GOGC or GOMEMLIMIT. The returned function stops the
// tuning and restores the previous GC percentage.
func Tune(targetMiB int) (restore func()) {
	if targetMiB <= 0 || os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	t := &tuner{
		target: float64(targetMiB) * (1 << 20),
		sample: []metrics.Sample{
			{Name: "/gc/heap/live:bytes"},
			{Name: "/gc/scan/globals:bytes"},
			{Name: "/gc/scan/stack:bytes"},
		},
	}
	prev := debug.SetGCPercent(t.percent())
	t.arm()
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.stopped = true
		debug.SetGCPercent(prev)
	}
}

// arm sets a finalizer on a new sentinel: it runs after the next
// collection, retunes and arms again.
func (t *tuner) arm() {
	sentinel := new([16]byte) // not tiny-allocated, so finalized on its own
	runtime.SetFinalizer(sentinel, func(*[16]byte) {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.stopped {
			return
		}
		debug.SetGCPercent(t.percent())
		t.arm()
	})
}

// percent is the GC percentage that starts the next collection when the
// heap reaches the target, given the live heap of the last one.
func (t *tuner) percent() int {
	metrics.Read(t.sample)
	live := float64(t.sample[0].Value.Uint64())
	scanned := live + float64(t.sample[1].Value.Uint64()) + float64(t.sample[2].Value.Uint64())
	return percent(t.target, live, scanned)
}

// percent is the GC percentage for a heap goal of target bytes. Go's heap
// goal is live + scanned * percent / 100, where scanned adds the globals
// and stacks to the live heap, and at least heapMinimum * percent / 100.
func percent(target, live, scanned float64) int {
	if live <= 0 {
		return minGCPercent
	}
	p := (target - live) / scanned * 100
	return int(math.Max(minGCPercent, math.Min(target/heapMinimum*100, p)))
}
