package call_test

import (
	"context"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	flowruntime "github.com/flowrun/flowrun/runtime"
)

// pidOf runs one call and returns the pid the command answered with.
func pidOf(t *testing.T, c flowruntime.Caller, ctx context.Context) int64 {
	t.Helper()
	out, err := c.Call(ctx, flowruntime.Record{Fields: M{}})
	if err != nil {
		t.Fatal(err)
	}
	pid, ok := out.Fields["result"].(int64)
	if !ok {
		t.Fatalf("result %v is not a pid", out.Fields["result"])
	}
	return pid
}

func alive(pid int64) bool { return syscall.Kill(int(pid), 0) == nil }

func TestPersistentExec(t *testing.T) {
	echoPid := []string{"sh", "-c", `while read -r line; do echo $$; done`}
	c := caller(t, M{"call": "exec", "command": echoPid, "persistent": true, "concurrency": 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := pidOf(t, c, ctx)
	for range 5 {
		if pid := pidOf(t, c, ctx); pid != first {
			t.Fatalf("a call ran in process %d, not in the running copy %d", pid, first)
		}
	}
	if err := c.(io.Closer).Close(); err != nil {
		t.Fatal(err)
	}
	if alive(first) {
		t.Errorf("process %d still runs after Close", first)
	}
	if _, err := c.Call(ctx, flowruntime.Record{Fields: M{}}); err == nil {
		t.Error("a call after Close succeeded")
	}
}

// TestPersistentExecEndsWithContext checks that the copies stop when the
// context the calls run under ends.
func TestPersistentExecEndsWithContext(t *testing.T) {
	c := caller(t, M{"call": "exec", "command": []string{"sh", "-c", `while read -r line; do echo $$; done`}, "persistent": true})
	ctx, cancel := context.WithCancel(context.Background())
	pid := pidOf(t, c, ctx)
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if alive(pid) {
		t.Errorf("process %d still runs after the context ended", pid)
	}
}

// TestPersistentExecReplacesFailedCopies checks that a copy that dies or
// hangs is replaced by a fresh one on the next call.
func TestPersistentExecReplacesFailedCopies(t *testing.T) {
	// Each copy answers once, then exits.
	c := caller(t, M{"call": "exec", "command": []string{"sh", "-c", `read -r line; echo $$; echo bye >&2`}, "persistent": true, "concurrency": 1})
	ctx := context.Background()
	first := pidOf(t, c, ctx)
	_, err := c.Call(ctx, flowruntime.Record{Fields: M{}})
	if err == nil || !strings.Contains(err.Error(), "the command ended before") || !strings.Contains(err.Error(), "bye") {
		t.Fatalf("a call to a copy that exited: %v", err)
	}
	if again := pidOf(t, c, ctx); again == first {
		t.Errorf("the dead copy %d answered again", first)
	}
	c.(io.Closer).Close()

	hang := caller(t, M{"call": "exec", "command": []string{"sleep", "30"}, "persistent": true, "timeout": 100 * time.Millisecond})
	start := time.Now()
	if _, err := hang.Call(ctx, flowruntime.Record{Fields: M{}}); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("a copy that never answers: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the timed-out call took %v", took)
	}
	hang.(io.Closer).Close()
}

func BenchmarkExec(b *testing.B) {
	for _, persistent := range []bool{false, true} {
		name := "per_record"
		if persistent {
			name = "persistent"
		}
		b.Run(name, func(b *testing.B) {
			c := callerTB(b, M{"call": "exec", "command": []string{"cat"}, "persistent": persistent})
			defer c.(io.Closer).Close()
			rec := M{"id": int64(1), "msg": "hello"}
			for b.Loop() {
				if _, err := c.Call(context.Background(), flowruntime.Record{Fields: rec}); err != nil {
					b.Fatal(err)
				}
				delete(rec, "result")
			}
		})
	}
}
