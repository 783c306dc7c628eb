package runtime_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	flowruntime "github.com/flowrun/flowrun/runtime"
)

var errBroken = errors.New("broken")

// closingGen is a generator that records, when it is closed, how many of
// its batches had finished.
type closingGen struct {
	gen
	closes     atomic.Int64
	ackedAtEnd atomic.Int64
	err        error
}

func (c *closingGen) Close() error {
	c.closes.Add(1)
	c.ackedAtEnd.Store(c.acked.Load())
	return c.err
}

func TestSourceCloserRunsAfterEveryDoneCallback(t *testing.T) {
	for _, tc := range []struct {
		name    string
		kill    bool
		stop    bool
		err     error
		wantErr error
	}{
		{name: "end of stream"},
		{name: "stop", stop: true},
		{name: "kill", kill: true, wantErr: flowruntime.ErrKilled},
		{name: "close error", err: errBroken, wantErr: errBroken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &closingGen{gen: gen{count: 5000, per: 100}, err: tc.err}
			if tc.stop || tc.kill {
				src.count = -1
			}
			sink := &collect{}
			ex, err := flowruntime.Start(context.Background(), chain(64, src, sink), flowruntime.Options{})
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			if tc.stop || tc.kill {
				waitFor(t, "records written", func() bool { return sink.len() > 500 })
				if tc.kill {
					ex.Kill()
				} else {
					ex.Stop()
				}
			}
			if err := ex.Wait(); (tc.wantErr == nil) != (err == nil) || (err != nil && !errors.Is(err, tc.wantErr)) {
				t.Fatalf("Wait = %v, want %v", err, tc.wantErr)
			}
			if got := src.closes.Load(); got != 1 {
				t.Fatalf("Close called %d times, want 1", got)
			}
			if got, final := src.ackedAtEnd.Load(), src.acked.Load(); got != final {
				t.Fatalf("%d records acknowledged when Close ran, %d in the end: a done callback ran after Close", got, final)
			}
			if !tc.kill && src.acked.Load() != src.emitted.Load() {
				t.Fatalf("acknowledged %d of %d emitted records", src.acked.Load(), src.emitted.Load())
			}
		})
	}
}
