package faulty_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/flowrun/flowrun/operators/internal/faulty"
	flowruntime "github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/runtime/onerror"
)

func TestSinkWrite(t *testing.T) {
	ctx := context.Background()
	s := faulty.NewSink().FailFirst(2, time.Second).Reject(7).RejectEach(3)
	for i := range 2 {
		err := s.Write(ctx, faulty.Records(1))
		after, ok := onerror.RetryAfterOf(err)
		if !errors.Is(err, faulty.ErrTransient) || onerror.IsPermanent(err) || !ok || after != time.Second {
			t.Errorf("write %d: %v (retry after %v, %v), want a transient error asking for 1s", i+1, err, after, ok)
		}
	}
	if err := s.Write(ctx, faulty.Records(6, 7, 8)); !errors.Is(err, faulty.ErrRejected) || !onerror.IsPermanent(err) {
		t.Errorf("a batch holding 7: %v, want a permanent rejection", err)
	}
	err := s.Write(ctx, faulty.Records(1, 2, 3, 4))
	var f *onerror.Failures
	if !errors.As(err, &f) || len(f.Errs) != 1 || !onerror.IsPermanent(f.Errs[2]) {
		t.Errorf("a batch holding 3: %v, want record 2 failed alone", err)
	}
	if err := s.Write(ctx, faulty.Records(6, 8)); err != nil {
		t.Errorf("a batch without 7: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Write(cancelled, faulty.Records(9)); !errors.Is(err, context.Canceled) {
		t.Errorf("a write after its context ended: %v", err)
	}
	s.Close()
	if got, want := s.Written(), []int64{1, 2, 4, 6, 8}; !slices.Equal(got, want) || s.Writes() != 5 || !s.Closed() {
		t.Errorf("wrote %v in %d writes (closed %v), want %v in 5", got, s.Writes(), s.Closed(), want)
	}
}

// TestSinkGraph runs the sink behind the runtime: its policy retries the
// transient failures and isolates the rejected records.
func TestSinkGraph(t *testing.T) {
	retry := onerror.Policy{Mode: onerror.Retry, Attempts: onerror.Unlimited, Backoff: time.Millisecond, MaxBackoff: time.Millisecond}
	tests := []struct {
		name         string
		sink         *faulty.Sink
		policy       onerror.Policy
		deadLetter   bool
		wantErr      bool
		wantWritten  []int64
		wantDead     []int64
		wantRetries  int64
		checkWritten func([]int64) bool
	}{
		{name: "transient", sink: faulty.NewSink().FailFirst(3, 0), policy: retry,
			wantWritten: faulty.IDs(0, 10), wantRetries: 3},
		{name: "rejected to dead letter", sink: faulty.NewSink().Reject(7),
			policy: onerror.Policy{Mode: onerror.DeadLetter}, deadLetter: true,
			wantWritten: []int64{0, 1, 2, 3, 4, 5, 6, 8, 9}, wantDead: []int64{7}},
		{name: "rejected one by one", sink: faulty.NewSink().RejectEach(2, 5),
			policy:      onerror.Policy{Mode: onerror.Skip},
			wantWritten: []int64{0, 1, 3, 4, 6, 7, 8, 9}},
		{name: "rejected stops", sink: faulty.NewSink().Reject(7), policy: retry, wantErr: true,
			wantWritten: faulty.IDs(0, 7)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dead *faulty.Sink
			var dl flowruntime.Sink
			if tt.deadLetter {
				dead = faulty.NewSink()
				dl = dead
			}
			src := &faulty.Source{Batches: [][]flowruntime.Record{faulty.Records(faulty.IDs(0, 10)...)}}
			ex, err := flowruntime.Start(context.Background(), faulty.Graph(src, tt.sink, tt.policy, dl), flowruntime.Options{})
			if err != nil {
				t.Fatal(err)
			}
			err = ex.Wait()
			if (err != nil) != tt.wantErr {
				t.Errorf("pipeline: %v, want an error: %v", err, tt.wantErr)
			}
			if got := tt.sink.Written(); !slices.Equal(got, tt.wantWritten) {
				t.Errorf("wrote %v, want %v", got, tt.wantWritten)
			}
			if dead != nil {
				if got := dead.Written(); !slices.Equal(got, tt.wantDead) {
					t.Errorf("dead-lettered %v, want %v", got, tt.wantDead)
				}
			}
			if st, _ := ex.Stats().Node("out"); st.Retries != tt.wantRetries {
				t.Errorf("%d retries, want %d", st.Retries, tt.wantRetries)
			}
			if !tt.sink.Closed() {
				t.Error("the sink was not closed")
			}
		})
	}
}

func TestSwap(t *testing.T) {
	g := faulty.Graph(&faulty.Source{}, faulty.NewSink(), onerror.Policy{}, nil)
	s := faulty.NewSink()
	if !faulty.Swap(g, "out", s) || g.Nodes[1].Sink != s || faulty.Swap(g, "in", s) || faulty.Swap(g, "none", s) {
		t.Error("Swap replaces the sink of a sink node only")
	}
}
