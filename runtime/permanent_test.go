package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	flowruntime "github.com/flowrun/flowrun/runtime"
)

func TestPermanent(t *testing.T) {
	base := errors.New("422 Unprocessable Entity")
	p := flowruntime.Permanent(base)
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", base, false},
		{"marked", p, true},
		{"wrapped after marking", fmt.Errorf("write: %w", p), true},
		{"stage error", &flowruntime.StageError{Stage: "out", Err: p}, true},
	}
	for _, tt := range tests {
		if got := flowruntime.IsPermanent(tt.err); got != tt.want {
			t.Errorf("%s: IsPermanent = %v, want %v", tt.name, got, tt.want)
		}
	}
	if flowruntime.Permanent(nil) != nil {
		t.Error("Permanent(nil) is not nil")
	}
	if p.Error() != base.Error() || !errors.Is(p, base) {
		t.Errorf("Permanent changes the error: %v", p)
	}
}

// openSink records its calls and fails every Write with err.
type openSink struct {
	mu    sync.Mutex
	calls []string
	err   error
}

func (s *openSink) Open(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "open")
	return nil
}

func (s *openSink) Write(context.Context, []flowruntime.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "write")
	return s.err
}

func (s *openSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "close")
	return nil
}

// oneRecord emits one record.
type oneRecord struct{}

func (oneRecord) Run(ctx context.Context, out flowruntime.Emitter) error {
	return out.Emit(ctx, []flowruntime.Record{{Fields: map[string]any{"a": int64(1)}}}, nil)
}

// TestPermanentSinkError: a sink opened before its first Write fails with a
// permanent error; the retry policy gives up at once.
func TestPermanentSinkError(t *testing.T) {
	for _, tt := range []struct {
		name  string
		err   error
		calls []string
	}{
		{"permanent", flowruntime.Permanent(errors.New("bad request")), []string{"open", "write", "close"}},
		{"transient", errors.New("unavailable"), []string{"open", "write", "write", "write", "close"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &openSink{err: tt.err}
			g := &flowruntime.Graph{Pipeline: "p",
				Nodes: []*flowruntime.Node{
					{Name: "src", Source: oneRecord{}},
					{Name: "out", Sink: s, OnError: flowruntime.ErrorPolicy{Mode: "retry", Attempts: 3,
						Backoff: time.Millisecond, MaxBackoff: time.Millisecond}},
				},
				Edges: []*flowruntime.Edge{{From: "src", To: "out", Capacity: 8}},
			}
			ex, err := flowruntime.Start(context.Background(), g, flowruntime.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := ex.Wait(); !errors.Is(err, tt.err) {
				t.Fatalf("Wait = %v, want %v", err, tt.err)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if fmt.Sprint(s.calls) != fmt.Sprint(tt.calls) {
				t.Errorf("calls %v, want %v", s.calls, tt.calls)
			}
		})
	}
}
