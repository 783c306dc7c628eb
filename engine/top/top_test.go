package top

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/muesli/termenv"

	"github.com/flowrun/flowrun/engine/admin"
	"github.com/flowrun/flowrun/lang"
	"github.com/flowrun/flowrun/lang/ast"
	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/operators/supervisor"
	"github.com/flowrun/flowrun/planner"
)

// throttledFlow is a throttle behind a fast source: the throttle is the
// bottleneck.
const throttledFlow = `pipeline "p" {
  edge_capacity = 64
  source "gen" { kind = "generate" }
  throttle "pace" {
    from = gen
    rate = 200
  }
  sink "out" {
    from = pace
    kind = "discard"
  }
}
`

// plain is a renderer without colours or attributes, so that frames are
// plain text.
func plain() *lipgloss.Renderer {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.Ascii)
	return r
}

// serve plans text, runs it under a supervisor and serves it with an admin
// server on 127.0.0.1:0 that samples every 20ms; it returns the server's
// URL. The run stops when the test ends.
func serve(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "p.flow")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	f, ds := lang.Parse(path, []byte(text))
	p, pds := planner.Build([]*ast.File{f}, all.Registry(), nil)
	if ds = append(ds, pds...); ds.HasErrors() {
		t.Fatal(ds)
	}
	sup := supervisor.New(supervisor.Config{Registry: all.Registry()})
	srv, err := admin.Listen("127.0.0.1:0", admin.Config{Supervisor: sup, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := sup.Start(p); err != nil {
		srv.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sup.Stop()
		if err := sup.Wait(); err != nil {
			t.Error(err)
		}
		srv.Close()
	})
	return "http://" + srv.Addr().String()
}

// waitFor reads tm's output until it holds every one of want.
func waitFor(t *testing.T, tm *teatest.TestModel, want ...string) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(out []byte) bool {
		for _, w := range want {
			if !bytes.Contains(out, []byte(w)) {
				return false
			}
		}
		return true
	}, teatest.WithDuration(15*time.Second), teatest.WithCheckInterval(20*time.Millisecond))
}

// TestDashboard runs the dashboard in bubbletea's test driver against an
// admin server over a running pipeline: it names the pipeline, every
// stage and the bottleneck, and q quits.
func TestDashboard(t *testing.T) {
	base := serve(t, throttledFlow)
	m := New(Config{Client: Client{Base: base}, Interval: 50 * time.Millisecond, Renderer: plain()})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(120, 40))
	waitFor(t, tm, `pipeline "p"  running`, "gen → pace", "pace → out", "bottleneck: pace", "◀ bottleneck")
	tm.Type("q")
	final, ok := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(Model)
	if !ok || !final.Quitting() {
		t.Fatalf("q did not quit: %#v", final)
	}
	if err := final.Err(); err != nil {
		t.Errorf("last poll: %v", err)
	}
	frame := final.render()
	for _, want := range []string{"gen", "pace", "out", "source", "processor", "sink"} {
		if !strings.Contains(frame, want) {
			t.Errorf("the last frame does not name %q:\n%s", want, frame)
		}
	}
}

// TestUnreachable: a server that cannot be reached is said on a line of
// its own, the dashboard keeps polling it, and ctrl+c quits.
func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	m := New(Config{Client: Client{Base: "http://" + addr}, Addr: addr, Interval: 20 * time.Millisecond, Renderer: plain()})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(120, 40))
	waitFor(t, tm, "cannot reach "+addr, "connection refused", "(3 polls failed; retrying every 20ms)")
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	final := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(Model)
	if !final.Quitting() || final.Err() == nil {
		t.Errorf("final model: quitting %v, err %v", final.Quitting(), final.Err())
	}
}

func name(s string) *string    { return &s }
func share(v float64) *float64 { return &v }

// fixed is a pipeline as the admin server could answer it, with a
// bottleneck, a full edge, a lossy branch, a dead-letter edge and an edge
// that limits bytes.
var fixed = []admin.Pipeline{{
	Name: "orders", State: "running", WindowSeconds: 5,
	RecordsIn: 14800, RecordsOut: 12160, InFlight: 264,
	Stages: []admin.Stage{
		{Name: "gen", Kind: "source", Out: 14800, OutPerSecond: 2001.3},
		{Name: "fan", Kind: "fanout", In: 14800, Out: 14800, InPerSecond: 2001.3, OutPerSecond: 2001.3},
		{Name: "enrich", Kind: "caller", In: 12800, Out: 12160, Errors: 3, Retries: 41, DeadLettered: 3,
			InPerSecond: 2048.5, OutPerSecond: 2000, BusySeconds: share(6.07), Busy: share(0.98)},
		{Name: "dash", Kind: "sink", In: 900, Out: 900, Dropped: 1900, InPerSecond: 180, OutPerSecond: 180,
			BusySeconds: share(0.5), Busy: share(0.1)},
		{Name: "out", Kind: "sink", In: 12160, Out: 12160, InPerSecond: 2000, OutPerSecond: 2000,
			BusySeconds: share(0.0002), Busy: share(0.00003)},
		{Name: "dlq", Kind: "sink", In: 3, Out: 3, Skipped: 1, BusySeconds: share(0), Busy: share(0)},
	},
	Edges: []admin.Edge{
		{From: "gen", To: "fan", Queued: 12, Capacity: 64, WhenFull: "block"},
		{From: "fan", To: "enrich", Queued: 64, Capacity: 64, QueuedBytes: 30000, CapacityBytes: 65536, Full: true, WhenFull: "block"},
		{From: "fan", To: "dash", Queued: 40, Capacity: 64, WhenFull: "drop_oldest"},
		{From: "enrich", To: "out", Queued: 0, Capacity: 64, WhenFull: "block"},
		{From: "enrich", To: "dlq", Queued: 1, Capacity: 64, WhenFull: "block", DeadLetter: true},
	},
	Bottleneck: name("enrich"),
}, {
	Name: "idle", State: "finished",
	Stages: []admin.Stage{{Name: "src", Kind: "source"}},
}}

// TestFrame compares a frame of fixed input with
// testdata/TestFrame.golden (go test -update rewrites it).
func TestFrame(t *testing.T) {
	m := New(Config{Client: Client{Base: "http://127.0.0.1:9180"}, Addr: "127.0.0.1:9180", Renderer: plain()})
	next, _ := m.Update(polledMsg{pipelines: fixed})
	golden.RequireEqual(t, []byte(next.View()))
}

// TestFrameUnreachable compares the frame of a server that stopped
// answering, its last answer still shown, with
// testdata/TestFrameUnreachable.golden.
func TestFrameUnreachable(t *testing.T) {
	var m tea.Model = New(Config{Client: Client{Base: "http://127.0.0.1:9180"}, Addr: "127.0.0.1:9180", Renderer: plain()})
	m, _ = m.Update(polledMsg{pipelines: fixed[1:]})
	for range 2 {
		m, _ = m.Update(polledMsg{err: errors.New("dial tcp 127.0.0.1:9180: connect: connection refused")})
	}
	golden.RequireEqual(t, []byte(m.View()))
}
