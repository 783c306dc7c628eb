package source_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/operators/internal/optest"
	"github.com/flowrun/flowrun/operators/source"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// numbered returns the lines "0" to "n-1".
func numbered(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%d\n", i)
	}
	return b.String()
}

// stdinVersion builds a stdin source on feed, runs it until it has taken
// credit for k records, then stops it, as a handover stops the old
// version, and returns the lines it emitted.
func stdinVersion(t *testing.T, feed *source.Feed, opts M, k int) []map[string]any {
	t.Helper()
	env := optest.Env(nil)
	env.Stdin = feed
	s := build(t, "stdin", opts, env)
	e := &optest.Emitter{Credit: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, e) }()
	for range k {
		e.Credit <- struct{}{}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel = %v", err)
	}
	return e.Fields()
}

// TestStdinHandsOver runs ten stdin sources one after the other on one
// Feed, each stopped in the midst of a batch with its line reader's buffer
// full: each goes on exactly after the last line the one before emitted,
// so together they read every line once, in order.
func TestStdinHandsOver(t *testing.T) {
	const n = 50_000
	feed := source.NewFeed(strings.NewReader(numbered(n)))
	var got []string
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 10 {
		for _, f := range stdinVersion(t, feed, M{}, 100+rnd.IntN(3000)) {
			got = append(got, f["line"].(string))
		}
	}
	env := optest.Env(nil)
	env.Stdin = feed
	last, err := run(t, build(t, "stdin", M{}, env))
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, lines(last)...)
	if len(got) != n {
		t.Errorf("read %d lines, want %d", len(got), n)
	}
	for i, l := range got {
		if l != strconv.Itoa(i) {
			t.Fatalf("line %d read is %q: a line was lost or read twice", i, l)
		}
	}
}

// heldEmitter records what is emitted and holds the done callbacks, as a
// pipeline does while the records are in flight.
type heldEmitter struct {
	mu    sync.Mutex
	lines []string
	dones []func()
}

func (e *heldEmitter) Emit(_ context.Context, recs []flowruntime.Record, done func()) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range recs {
		e.lines = append(e.lines, r.Fields["line"].(string))
	}
	e.dones = append(e.dones, done)
	return nil
}

func (e *heldEmitter) emitted() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.lines)
}

// TestStdinHandsOverWhatIsFinished: the next source starts after the last
// line whose record is finished when it starts, not when the one before
// stopped: what was in flight and is then written is not read again, and
// what was never written (a drain cut short) is read again.
func TestStdinHandsOverWhatIsFinished(t *testing.T) {
	pr, pw := io.Pipe()
	feed := source.NewFeed(pr)
	env := optest.Env(nil)
	env.Stdin = feed
	first := build(t, "stdin", M{}, env)
	var e heldEmitter
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx, &e) }()
	for i, line := range []string{"1\n", "2\n", "3\n"} {
		if _, err := io.WriteString(pw, line); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for e.emitted() <= i {
			if time.Now().After(deadline) {
				t.Fatalf("line %d not emitted", i+1)
			}
			time.Sleep(time.Millisecond)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Lines 1 and 2 are written after the source stopped; 3 never is.
	e.dones[0]()
	e.dones[1]()
	go func() {
		_, _ = io.WriteString(pw, "4\n")
		pw.Close()
	}()
	next, err := run(t, build(t, "stdin", M{}, env))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"3", "4"}, lines(next)); diff != "" {
		t.Errorf("the next source read (-want +got):\n%s", diff)
	}
}

// TestStdinHandsOverTheCSVHeader: a csv source after a handover takes the
// header the one before read, and reads the next row as a row.
func TestStdinHandsOverTheCSVHeader(t *testing.T) {
	in := "a,b\n" + strings.Repeat("1,2\n", 1000)
	feed := source.NewFeed(strings.NewReader(in))
	opts := M{"codec": "csv"}
	got := stdinVersion(t, feed, opts, 300)
	env := optest.Env(nil)
	env.Stdin = feed
	rest, err := run(t, build(t, "stdin", opts, env))
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, rest.Fields()...)
	if len(got) != 1000 {
		t.Errorf("read %d rows, want 1000", len(got))
	}
	for i, f := range got {
		if diff := cmp.Diff(M{"a": "1", "b": "2"}, f); diff != "" {
			t.Fatalf("row %d (-want +got):\n%s", i, diff)
		}
	}
}
