package runtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	flowruntime "github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/runtime/onerror"
	"github.com/flowrun/flowrun/runtime/overflow"
	"github.com/hashicorp/go-hclog"
)

// fanGraph is src -> fan -> one sink per branch; whenFull and capacity
// apply to each branch's edge.
func fanGraph(src flowruntime.Source, mode flowruntime.FanoutMode, router flowruntime.Router, branches []flowruntime.Sink, capacity []int, whenFull []overflow.Mode) *flowruntime.Graph {
	g := &flowruntime.Graph{Pipeline: "p"}
	g.Nodes = append(g.Nodes,
		&flowruntime.Node{Name: "src", Source: src},
		&flowruntime.Node{Name: "fan", Fanout: &flowruntime.Fanout{Mode: mode, Router: router}})
	g.Edges = append(g.Edges, &flowruntime.Edge{From: "src", To: "fan", Capacity: 64})
	for i, s := range branches {
		name := fmt.Sprintf("sink%d", i)
		g.Nodes = append(g.Nodes, &flowruntime.Node{Name: name, Sink: s})
		g.Edges = append(g.Edges, &flowruntime.Edge{From: "fan", To: name, Capacity: capacity[i], WhenFull: whenFull[i]})
	}
	return g
}

// TestAckAfterEverySink: a broadcast to a fast and a slow sink acknowledges
// a source batch only once both wrote all of it, and both get every record
// in order, each its own copy.
func TestAckAfterEverySink(t *testing.T) {
	var mu sync.Mutex
	wrote := [2]map[int64]bool{{}, {}}
	mark := func(k int) func([]flowruntime.Record) {
		return func(recs []flowruntime.Record) {
			mu.Lock()
			defer mu.Unlock()
			for _, r := range recs {
				wrote[k][field(r)] = true
				r.Fields["by"] = k // each branch owns its records
			}
		}
	}
	fast := &collect{onW: mark(0)}
	slow := &collect{onW: mark(1), delay: 300 * time.Microsecond}
	var early []string
	src := &gen{count: 2000, per: 25}
	src.onDone = func(first, n int) {
		mu.Lock()
		defer mu.Unlock()
		for i := first; i < first+n; i++ {
			if !wrote[0][int64(i)] || !wrote[1][int64(i)] {
				early = append(early, fmt.Sprintf("record %d acknowledged before both sinks wrote it", i))
				return
			}
		}
	}
	ex := run(t, fanGraph(src, flowruntime.Broadcast, nil, []flowruntime.Sink{fast, slow}, []int{32, 32}, []overflow.Mode{overflow.Block, overflow.Block}), flowruntime.Options{BatchSize: 16})
	if err := ex.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(early) > 0 {
		t.Fatal(early[0])
	}
	if src.doneCalls.Load() != 2000/25 || src.acked.Load() != 2000 {
		t.Fatalf("done ran %d times for %d records, want 80 for 2000", src.doneCalls.Load(), src.acked.Load())
	}
	for k, c := range []*collect{fast, slow} {
		got := c.records()
		if len(got) != 2000 {
			t.Fatalf("sink %d got %d records", k, len(got))
		}
		for i, r := range got {
			if field(r) != int64(i) || r.Fields["by"] != k {
				t.Fatalf("sink %d record %d = %v", k, i, r.Fields)
			}
		}
	}
}

// TestLossyBranch: a lossy branch whose sink is stuck neither gates the
// source nor holds back acknowledgements, and counts its drops.
func TestLossyBranch(t *testing.T) {
	for _, tc := range []struct {
		mode  overflow.Mode
		bytes int64
	}{{overflow.DropNewest, 0}, {overflow.DropOldest, 0}, {overflow.DropNewest, 4000}, {overflow.DropOldest, 4000}} {
		mode := tc.mode
		t.Run(fmt.Sprintf("%s/bytes=%d", mode, tc.bytes), func(t *testing.T) {
			durable := &collect{}
			release := make(chan struct{})
			dash := &gateSink{release: release}
			src := &gen{count: 5000, per: 50}
			g := fanGraph(src, flowruntime.Broadcast, nil, []flowruntime.Sink{durable, dash}, []int{64, 40}, []overflow.Mode{overflow.Block, mode})
			g.Edges[2].Bytes = tc.bytes
			var logs bytes.Buffer
			logger := hclog.New(&hclog.LoggerOptions{Output: &logs, JSONFormat: true, Level: hclog.Warn})
			started := time.Now()
			ex := run(t, g, flowruntime.Options{BatchSize: 16, Logger: logger})
			waitFor(t, "the durable sink to get everything", func() bool { return durable.len() == 5000 })
			waitFor(t, "every acknowledgement", func() bool { return src.acked.Load() == 5000 })
			st := ex.Stats()
			if tc.bytes > 0 && st.PeakBytesInFlight > tc.bytes {
				t.Errorf("lossy edge held %d bytes, limit %d", st.PeakBytesInFlight, tc.bytes)
			}
			branch, _ := st.Node("sink1")
			var lossy flowruntime.EdgeStats
			for _, e := range st.Edges {
				if e.To == "sink1" {
					lossy = e
				}
			}
			close(release)
			if err := ex.Wait(); err != nil {
				t.Fatal(err)
			}
			got := dash.records()
			if fan, _ := st.Node("fan"); lossy.Dropped == 0 || branch.Dropped != lossy.Dropped || fan.Dropped != 0 {
				t.Fatalf("dropped: edge %d, branch %d, fanout %d; want the edge's count on the branch", lossy.Dropped, branch.Dropped, fan.Dropped)
			}
			if int64(len(got))+lossy.Dropped != 5000 {
				t.Fatalf("dashboard got %d + dropped %d != 5000", len(got), lossy.Dropped)
			}
			last := field(got[len(got)-1])
			if mode == overflow.DropOldest && last != 4999 {
				t.Errorf("drop_oldest: last record kept is %d, want 4999", last)
			}
			if mode == overflow.DropNewest && last == 4999 {
				t.Errorf("drop_newest kept the newest record")
			}
			for i := 1; i < len(got); i++ {
				if field(got[i]) <= field(got[i-1]) {
					t.Fatalf("dashboard order broken at %d", i)
				}
			}
			checkDropWarnings(t, logs.String(), mode, lossy.Dropped, time.Since(started))
		})
	}
}

// gateSink blocks its first Write until release is closed.
type gateSink struct {
	collect
	release chan struct{}
}

func (g *gateSink) Write(ctx context.Context, recs []flowruntime.Record) error {
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.collect.Write(ctx, recs)
}

type modRouter struct{}

func (modRouter) Route(r flowruntime.Record, n int) (int, error) {
	i := field(r)
	if i == 13 {
		return 0, fmt.Errorf("unlucky record")
	}
	return int(i % int64(n)), nil
}

func TestRoundRobinAndHash(t *testing.T) {
	for _, mode := range []flowruntime.FanoutMode{flowruntime.RoundRobin, flowruntime.Hash} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			sinks := []*collect{{}, {}, {}}
			g := fanGraph(&gen{count: 300, per: 7}, mode, modRouter{}, []flowruntime.Sink{sinks[0], sinks[1], sinks[2]}, []int{16, 16, 16}, make([]overflow.Mode, 3))
			g.Nodes[1].OnError = onerror.Policy{Mode: onerror.Skip}
			ex := run(t, g, flowruntime.Options{})
			if err := ex.Wait(); err != nil {
				t.Fatal(err)
			}
			total := 0
			for k, s := range sinks {
				got := s.records()
				total += len(got)
				for _, r := range got {
					if mode == flowruntime.Hash && field(r)%3 != int64(k) {
						t.Fatalf("hash: record %d at output %d", field(r), k)
					}
				}
				if len(got) < 99 || len(got) > 100 {
					t.Errorf("output %d got %d records, want about 100", k, len(got))
				}
			}
			want := 300
			if mode == flowruntime.Hash {
				want = 299
				fan, _ := ex.Stats().Node("fan")
				if fan.Skipped != 1 {
					t.Errorf("hash skipped %d, want 1", fan.Skipped)
				}
			}
			if total != want {
				t.Errorf("total %d, want %d", total, want)
			}
		})
	}
}

// TestMergeFairness: two busy sources merged into a slow sink get turns.
func TestMergeFairness(t *testing.T) {
	g := &flowruntime.Graph{Pipeline: "p"}
	a := &gen{count: -1, per: 8}
	b := &gen{count: -1, per: 8}
	var mu sync.Mutex
	var order []string
	sink := &collect{delay: 100 * time.Microsecond}
	sink.onW = func(recs []flowruntime.Record) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range recs {
			order = append(order, r.Meta.Source)
		}
	}
	tag := func(name string) flowruntime.Processor {
		return proc(func(r flowruntime.Record, emit func(flowruntime.Record)) error {
			r.Meta.Source = name
			emit(r)
			return nil
		})
	}
	g.Nodes = []*flowruntime.Node{
		{Name: "a", Source: a}, {Name: "b", Source: b},
		{Name: "ta", Processor: tag("a")}, {Name: "tb", Processor: tag("b")},
		{Name: "m", Merge: true}, {Name: "sink", Sink: sink},
	}
	g.Edges = []*flowruntime.Edge{
		{From: "a", To: "ta", Capacity: 32}, {From: "b", To: "tb", Capacity: 32},
		{From: "ta", To: "m", Capacity: 32}, {From: "tb", To: "m", Capacity: 32},
		{From: "m", To: "sink", Capacity: 8},
	}
	ex := run(t, g, flowruntime.Options{BatchSize: 8})
	waitFor(t, "records", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(order) >= 2000
	})
	ex.Stop()
	if err := ex.Wait(); err != nil {
		t.Fatal(err)
	}
	// Past the start-up, in every window of 200 records each input has a
	// fair share.
	for start := 200; start+200 <= 2000; start += 200 {
		n := 0
		for _, s := range order[start : start+200] {
			if s == "a" {
				n++
			}
		}
		if n < 80 || n > 120 {
			t.Fatalf("records %d-%d: %d from a, %d from b", start, start+200, n, 200-n)
		}
	}
}

// checkDropWarnings checks the warnings a lossy edge logged: at least one,
// no more than the rate limit allows in elapsed, each naming the edge and
// a running total that ends at no more than dropped.
func checkDropWarnings(t *testing.T, logs string, mode overflow.Mode, dropped int64, elapsed time.Duration) {
	t.Helper()
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if entry["@message"] == "lossy branch full: records dropped" {
			lines = append(lines, entry)
		}
	}
	// The limit: ten at first, then one per ten seconds.
	if limit := 10 + 1 + int(elapsed/(10*time.Second)); len(lines) == 0 || len(lines) > limit {
		t.Fatalf("%d drop warnings, want 1 to %d:\n%s", len(lines), limit, logs)
	}
	var last float64
	for _, e := range lines {
		if e["@level"] != "warn" || e["from"] != "fan" || e["to"] != "sink1" || e["when_full"] != mode.String() {
			t.Errorf("drop warning %v, want a warn naming fan -> sink1 and %v", e, mode)
		}
		total, _ := e["dropped_total"].(float64)
		if total <= last || total > float64(dropped) {
			t.Errorf("dropped_total %v after %v, want it to grow up to %d", total, last, dropped)
		}
		last = total
	}
}
