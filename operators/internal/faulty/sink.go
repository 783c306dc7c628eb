package faulty

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	flowruntime "github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/runtime/onerror"
)

// ErrTransient is the error of a write [Sink.FailFirst] fails; it is not
// permanent, so a policy may retry it.
var ErrTransient = errors.New("faulty: transient failure")

// ErrRejected is wrapped by the error of a record [Sink.Reject] or
// [Sink.RejectEach] refuses; that error is marked [onerror.Permanent].
var ErrRejected = errors.New("faulty: record rejected")

// Sink is a runtime sink that fails as its test scripts it. A Write is
// answered by the first rule that applies: the first n writes of
// [Sink.FailFirst] fail with ErrTransient, writing nothing; a batch holding
// an id of [Sink.Reject] fails permanently, writing nothing; the records
// holding an id of [Sink.RejectEach] fail one by one in an
// *onerror.Failures while the rest are written; otherwise the batch is
// written. A record's id is its "id" field as an integer, -1 when it has
// none.
//
// The zero Sink writes everything. Its methods are safe for concurrent
// use, scripting included. To use it in a planned pipeline, build the graph
// and set the Sink of the node to replace (see [Swap]): the node keeps the
// on_error policy of its file.
type Sink struct {
	mu         sync.Mutex
	failFirst  int
	retryAfter time.Duration
	reject     map[int64]bool
	rejectEach map[int64]bool
	writes     int
	recs       []flowruntime.Record
	closed     bool
}

// NewSink returns a sink that writes everything until scripted otherwise.
func NewSink() *Sink { return &Sink{} }

// FailFirst makes the next n writes fail with ErrTransient; when
// retryAfter is positive, each error asks for that wait with
// [onerror.RetryAfter]. It returns s.
func (s *Sink) FailFirst(n int, retryAfter time.Duration) *Sink {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failFirst, s.retryAfter = n, retryAfter
	return s
}

// Reject makes every batch holding a record with one of ids fail with a
// permanent error (wrapping ErrRejected) and write nothing, however often
// it is retried: the runtime must split the batch to write the rest. It
// returns s.
func (s *Sink) Reject(ids ...int64) *Sink {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject = addIDs(s.reject, ids)
	return s
}

// RejectEach makes the records with one of ids fail one by one: a batch
// holding them is written but for them, and Write returns an
// *onerror.Failures naming them, each with a permanent error wrapping
// ErrRejected. It returns s.
func (s *Sink) RejectEach(ids ...int64) *Sink {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectEach = addIDs(s.rejectEach, ids)
	return s
}

func addIDs(set map[int64]bool, ids []int64) map[int64]bool {
	if set == nil {
		set = make(map[int64]bool)
	}
	for _, id := range ids {
		set[id] = true
	}
	return set
}

// Write writes recs as scripted. It returns ctx.Err() when ctx is done.
func (s *Sink) Write(ctx context.Context, recs []flowruntime.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	if s.failFirst > 0 {
		s.failFirst--
		err := fmt.Errorf("write %d: %w", s.writes, ErrTransient)
		if s.retryAfter > 0 {
			return onerror.RetryAfter(err, s.retryAfter)
		}
		return err
	}
	for _, r := range recs {
		if id := RecordID(r); s.reject[id] {
			return onerror.Permanent(fmt.Errorf("write %d: id %d: %w", s.writes, id, ErrRejected))
		}
	}
	var failed onerror.Failures
	for i, r := range recs {
		if id := RecordID(r); s.rejectEach[id] {
			failed.Fail(i, onerror.Permanent(fmt.Errorf("id %d: %w", id, ErrRejected)))
			continue
		}
		s.recs = append(s.recs, r)
	}
	return failed.Err()
}

// Close marks the sink closed.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// Written returns the ids of the records written so far, in order.
func (s *Sink) Written() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int64, len(s.recs))
	for i, r := range s.recs {
		ids[i] = RecordID(r)
	}
	return ids
}

// Records returns the records written so far, in order.
func (s *Sink) Records() []flowruntime.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.recs)
}

// Writes returns the number of Write calls so far, failed ones included.
func (s *Sink) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

// Closed reports whether Close was called.
func (s *Sink) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// RecordID returns the "id" field of r as an integer, -1 when it has none.
func RecordID(r flowruntime.Record) int64 { return idOf(r.Fields["id"]) }

// Records returns one record {"id": id} per id, with its position set to
// its index.
func Records(ids ...int64) []flowruntime.Record {
	out := make([]flowruntime.Record, len(ids))
	for i, id := range ids {
		out[i] = flowruntime.Record{Fields: map[string]any{"id": id},
			Meta: flowruntime.Meta{Source: "in", Position: int64(i)}}
	}
	return out
}

// IDs returns the ids from to to-1, for Records.
func IDs(from, to int64) []int64 {
	var out []int64
	for id := from; id < to; id++ {
		out = append(out, id)
	}
	return out
}

// Source is a runtime source that emits each of its batches with one Emit
// call, in order, and ends.
type Source struct {
	Batches [][]flowruntime.Record
}

// Run emits the batches.
func (s *Source) Run(ctx context.Context, out flowruntime.Emitter) error {
	for _, b := range s.Batches {
		if err := out.Emit(ctx, b, nil); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	return nil
}

// Graph returns the pipeline "faulty": the source "in", src, feeding the
// sink "out", s, whose error policy is p. When dl is not nil, "out" has a
// dead-letter edge to the sink "dead", dl, which receives each record "out"
// gives up on with the fields "error" and "stage" added.
func Graph(src flowruntime.Source, s flowruntime.Sink, p onerror.Policy, dl flowruntime.Sink) *flowruntime.Graph {
	g := &flowruntime.Graph{
		Pipeline: "faulty",
		Nodes: []*flowruntime.Node{
			{Name: "in", Source: src},
			{Name: "out", Sink: s, OnError: p},
		},
		Edges: []*flowruntime.Edge{{From: "in", To: "out"}},
	}
	if dl != nil {
		g.Nodes = append(g.Nodes, &flowruntime.Node{Name: "dead", Sink: dl})
		g.Edges = append(g.Edges, &flowruntime.Edge{From: "out", To: "dead", DeadLetter: true})
	}
	return g
}

// Swap sets the Sink of g's node named name to s, so a sink planned from a
// .flow file (a discard sink, say) is replaced by a faulty one that keeps
// its policy and edges. It reports whether g has that node.
func Swap(g *flowruntime.Graph, name string, s flowruntime.Sink) bool {
	for _, n := range g.Nodes {
		if n.Name == name && n.Sink != nil {
			n.Sink = s
			return true
		}
	}
	return false
}
