package admin

import (
	"slices"
	"sync"
	"time"

	"github.com/flowrun/flowrun/operators/supervisor"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// Defaults of Config.
const (
	// DefaultInterval is how often the sampler reads the stats.
	DefaultInterval = time.Second
	// DefaultWindow is how many intervals the rates and busy shares of
	// /api/v1/pipelines span.
	DefaultWindow = 5
)

// sample is one reading of a pipeline's stats.
type sample struct {
	at    time.Time
	stats flowruntime.Stats
}

// history is the samples kept of one execution of a pipeline, oldest
// first, at most window+1 of them.
type history struct {
	exec    *flowruntime.Execution
	samples []sample
}

// sampler reads every pipeline's stats each interval and keeps the view
// of each, which /api/v1/pipelines serves.
type sampler struct {
	sup      *supervisor.Supervisor
	interval time.Duration
	window   int
	now      func() time.Time

	mu    sync.Mutex
	hist  map[string]*history
	views []Pipeline
}

func newSampler(sup *supervisor.Supervisor, interval time.Duration, window int) *sampler {
	return &sampler{sup: sup, interval: interval, window: window, now: time.Now, hist: map[string]*history{}}
}

// run samples until stop is closed, once at once and then every interval.
func (s *sampler) run(stop <-chan struct{}) {
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for {
		s.sample()
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// sample reads the stats of every pipeline in place and remakes the views.
func (s *sampler) sample() {
	names := s.sup.Pipelines()
	views := make([]Pipeline, 0, len(names))
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	for _, name := range names {
		ex, ok := s.sup.Execution(name)
		if !ok {
			continue
		}
		status, _ := s.sup.Status(name)
		seen[name] = true
		h := s.hist[name]
		if h == nil || h.exec != ex {
			// A new pipeline, or a new version whose counters start again.
			h = &history{exec: ex}
			s.hist[name] = h
		}
		h.samples = append(h.samples, sample{at: s.now(), stats: ex.Stats()})
		if len(h.samples) > s.window+1 {
			h.samples = append(h.samples[:0], h.samples[len(h.samples)-s.window-1:]...)
		}
		views = append(views, view(name, status, h.samples))
	}
	for name := range s.hist {
		if !seen[name] {
			delete(s.hist, name)
		}
	}
	s.views = views
}

// pipelines returns the views of the last sample, sampling now first when
// the pipelines in place are not those of the last sample (the first
// request after a start or a reload).
func (s *sampler) pipelines() []Pipeline {
	names := s.sup.Pipelines()
	s.mu.Lock()
	views := s.views
	s.mu.Unlock()
	if !slices.EqualFunc(names, views, func(n string, p Pipeline) bool { return n == p.Name }) {
		s.sample()
		s.mu.Lock()
		views = s.views
		s.mu.Unlock()
	}
	return views
}

// Pipeline is one pipeline as /api/v1/pipelines shows it.
type Pipeline struct {
	Name string `json:"name"`
	// State is "running", "draining", "finished" or "failed".
	State string `json:"state"`
	// SampledAt is when the stats were read; WindowSeconds the span the
	// rates and busy shares are computed over (0 in the first sample).
	SampledAt     time.Time `json:"sampled_at"`
	WindowSeconds float64   `json:"window_seconds"`
	// RecordsIn is what the sources emitted, RecordsOut what the sinks
	// wrote, InFlight what is on the edges now.
	RecordsIn  int64   `json:"records_in"`
	RecordsOut int64   `json:"records_out"`
	InFlight   int64   `json:"in_flight"`
	Stages     []Stage `json:"stages"`
	Edges      []Edge  `json:"edges"`
	// Bottleneck names the stage holding the pipeline back now, or is
	// null (see docs/observability.md for the rule).
	Bottleneck *string `json:"bottleneck"`
}

// Stage is one stage of a Pipeline.
type Stage struct {
	Name string `json:"name"`
	// Kind is the runtime's kind: source, processor, caller, sink, fanout
	// or merge.
	Kind         string `json:"kind"`
	In           int64  `json:"in"`
	Out          int64  `json:"out"`
	Errors       int64  `json:"errors"`
	Retries      int64  `json:"retries"`
	Skipped      int64  `json:"skipped"`
	DeadLettered int64  `json:"dead_lettered"`
	Dropped      int64  `json:"dropped"`
	// Counters are the operator's own counters, by name.
	Counters map[string]int64 `json:"counters,omitempty"`
	// InPerSecond and OutPerSecond are the rates over the window.
	InPerSecond  float64 `json:"in_per_second"`
	OutPerSecond float64 `json:"out_per_second"`
	// BusySeconds is the busy time so far and Busy its share of the
	// window, from 0 to 1; both are null for the kinds whose busy time is
	// not measured (sources, fanouts, merges).
	BusySeconds *float64 `json:"busy_seconds"`
	Busy        *float64 `json:"busy"`
}

// Edge is one edge of a Pipeline.
type Edge struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Queued is the records on the edge (queued or being processed by To)
	// and Capacity its limit; QueuedBytes and CapacityBytes the same in
	// bytes, for an edge that limits them.
	Queued        int64 `json:"queued"`
	Capacity      int   `json:"capacity"`
	QueuedBytes   int64 `json:"queued_bytes,omitempty"`
	CapacityBytes int64 `json:"capacity_bytes,omitempty"`
	// Full is Queued (or QueuedBytes) at least FullShare of the limit.
	Full bool `json:"full"`
	// WhenFull is "block" for a lossless edge, else the lossy mode;
	// DeadLetter marks the edge of From's failed records.
	WhenFull   string `json:"when_full"`
	DeadLetter bool   `json:"dead_letter,omitempty"`
}

// view makes the Pipeline of the samples of one execution, the last one
// now.
func view(name string, status supervisor.Status, samples []sample) Pipeline {
	last := samples[len(samples)-1]
	first := samples[0]
	st := last.stats
	p := Pipeline{
		Name:       name,
		State:      status.String(),
		SampledAt:  last.at.UTC(),
		RecordsIn:  st.SourceRecords(),
		RecordsOut: st.SinkRecords(),
		InFlight:   st.InFlight,
		Stages:     make([]Stage, 0, len(st.Nodes)),
		Edges:      make([]Edge, 0, len(st.Edges)),
	}
	span := last.at.Sub(first.at).Seconds()
	if len(samples) > 1 && span > 0 {
		p.WindowSeconds = span
	}
	for i, n := range st.Nodes {
		s := Stage{
			Name: n.Name, Kind: n.Kind.String(),
			In: n.In, Out: n.Out, Errors: n.Errors, Retries: n.Retries,
			Skipped: n.Skipped, DeadLettered: n.DeadLettered, Dropped: n.Dropped,
		}
		if len(n.Own) > 0 {
			s.Counters = make(map[string]int64, len(n.Own))
			for _, c := range n.Own {
				s.Counters[c.Name] = c.Value
			}
		}
		if flowruntime.BusyMeasured(n.Kind) {
			secs := n.Busy.Seconds()
			s.BusySeconds = &secs
			share := 0.0
			if p.WindowSeconds > 0 {
				share = min(max((n.Busy-first.stats.Nodes[i].Busy).Seconds()/span, 0), 1)
			}
			s.Busy = &share
		}
		if p.WindowSeconds > 0 {
			old := first.stats.Nodes[i]
			s.InPerSecond = float64(n.In-old.In) / span
			s.OutPerSecond = float64(n.Out-old.Out) / span
		}
		p.Stages = append(p.Stages, s)
	}
	for _, e := range st.Edges {
		p.Edges = append(p.Edges, Edge{
			From: e.From, To: e.To,
			Queued: e.Fill, Capacity: e.Capacity,
			QueuedBytes: e.FillBytes, CapacityBytes: e.Bytes,
			Full:     full(e),
			WhenFull: e.WhenFull.String(), DeadLetter: e.DeadLetter,
		})
	}
	if status == supervisor.Running || status == supervisor.Draining {
		p.Bottleneck = bottleneck(p)
	}
	return p
}

// FullShare is the share of its limit from which an edge counts as full.
const FullShare = 0.75

// full reports whether e is full: its records, or its bytes when it
// limits them, at least FullShare of the limit.
func full(e flowruntime.EdgeStats) bool {
	if e.Capacity > 0 && float64(e.Fill) >= FullShare*float64(e.Capacity) {
		return true
	}
	return e.Bytes > 0 && float64(e.FillBytes) >= FullShare*float64(e.Bytes)
}

// MinBusy is the busy share below which a stage is never the bottleneck.
const MinBusy = 0.5

// bottleneck names the stage holding p back now: of the stages whose busy
// time is measured (processors, callers, sinks), those that are busy at
// least MinBusy of the window, with a full lossless input edge and room on
// every output edge but the dead-letter one (a sink has none: it waits on
// its destination), the busiest; the first in graph order among equals.
// It returns nil when no stage is such.
func bottleneck(p Pipeline) *string {
	if p.WindowSeconds == 0 {
		return nil
	}
	var best *Stage
	for i := range p.Stages {
		s := &p.Stages[i]
		if s.Busy == nil || *s.Busy < MinBusy {
			continue
		}
		inFull, outFull := false, false
		for _, e := range p.Edges {
			switch {
			case e.To == s.Name && e.WhenFull == "block" && e.Full:
				inFull = true
			case e.From == s.Name && !e.DeadLetter && e.Full:
				outFull = true
			}
		}
		if inFull && !outFull && (best == nil || *s.Busy > *best.Busy) {
			best = s
		}
	}
	if best == nil {
		return nil
	}
	name := best.Name
	return &name
}
