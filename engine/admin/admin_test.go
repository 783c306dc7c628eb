package admin

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowrun/flowrun/lang"
	"github.com/flowrun/flowrun/lang/ast"
	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/operators/supervisor"
	"github.com/flowrun/flowrun/planner"
)

func TestCheckAddr(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:9180": "127.0.0.1:9180",
		":9180":          "127.0.0.1:9180",
		":0":             "127.0.0.1:0",
		"0.0.0.0:9180":   "0.0.0.0:9180",
		"[::]:9180":      "[::]:9180",
		"[::1]:0":        "[::1]:0",
		"localhost:9180": "localhost:9180",
		"9180":           "error: missing port",
		"127.0.0.1":      "error: missing port",
		"127.0.0.1:":     `error: port "" is not a number`,
		"127.0.0.1:-1":   `error: port "-1" is not a number`,
		"127.0.0.1:http": `error: port "http" is not a number`,
		"::1:9180":       "error: too many colons",
	} {
		got, err := CheckAddr(addr)
		if err != nil {
			got = "error: " + err.Error()
		}
		if !strings.HasPrefix(got, want) && !(strings.HasPrefix(want, "error: ") && strings.Contains(got, strings.TrimPrefix(want, "error: "))) {
			t.Errorf("CheckAddr(%q) = %q, want %q", addr, got, want)
		}
	}
}

// tickFlow generates a record every 10ms until stopped.
const tickFlow = `pipeline "tick" {
  source "gen" {
    kind     = "generate"
    interval = "10ms"
  }
  sink "out" {
    from = gen
    kind = "discard"
  }
}
`

// plan parses and plans the one .flow file text in dir.
func plan(t testing.TB, dir, text string) *planner.Plan {
	t.Helper()
	path := filepath.Join(dir, "p.flow")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	f, ds := lang.Parse(path, []byte(text))
	p, pds := planner.Build([]*ast.File{f}, all.Registry(), nil)
	if ds = append(ds, pds...); ds.HasErrors() {
		t.Fatal(ds)
	}
	return p
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestReadiness serves a supervisor through its life on 127.0.0.1:0:
// /readyz answers 503 before Start, 200 after, 503 once stopping, while
// /healthz answers 200 all along; /api/v1/tap refuses what it cannot tap.
func TestReadiness(t *testing.T) {
	dir := t.TempDir()
	p := plan(t, dir, tickFlow)
	sup := supervisor.New(supervisor.Config{Registry: all.Registry()})
	srv, err := Listen("127.0.0.1:0", Config{Supervisor: sup, Interval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := "http://" + srv.Addr().String()
	check := func(path string, want int) {
		t.Helper()
		if code, body := get(t, base+path); code != want {
			t.Errorf("GET %s = %d %q, want %d", path, code, body, want)
		}
	}
	check("/readyz", 503)
	check("/healthz", 200)
	if err := sup.Start(p); err != nil {
		t.Fatal(err)
	}
	check("/readyz", 200)
	check("/api/v1/tap?pipeline=tick&stage=nope", 404)
	check("/api/v1/tap?pipeline=nope&stage=gen", 404)
	check("/api/v1/tap?stage=gen&limit=0", 400)
	check("/api/v1/tap?pipeline=tick", 400)
	// The only pipeline may go unnamed.
	if code, body := get(t, base+"/api/v1/tap?stage=gen&limit=3"); code != 200 || strings.Count(body, `{"seq":`) != 3 {
		t.Errorf("tap: %d %q, want 3 records", code, body)
	}
	sup.Stop()
	check("/readyz", 503)
	check("/healthz", 200)
	if err := sup.Wait(); err != nil {
		t.Fatal(err)
	}
	check("/api/v1/tap?pipeline=tick&stage=gen", 409)
}

func share(v float64) *float64 { return &v }

// TestBottleneckRule: the busiest stage with a full lossless input and
// room on its outputs is named; a stage blocked by a full output, a lossy
// branch, an idle stage, a stage whose busy time is not measured and a
// first sample name none.
func TestBottleneckRule(t *testing.T) {
	edge := func(from, to string, full bool) Edge {
		return Edge{From: from, To: to, Full: full, WhenFull: "block"}
	}
	stage := func(name string, busy *float64) Stage { return Stage{Name: name, Busy: busy} }
	for _, tc := range []struct {
		name   string
		stages []Stage
		edges  []Edge
		want   string
	}{
		{"throttle behind a fast source", []Stage{stage("gen", nil), stage("pace", share(1)), stage("out", share(0.01))},
			[]Edge{edge("gen", "pace", true), edge("pace", "out", false)}, "pace"},
		{"slow sink: everything before it full", []Stage{stage("gen", nil), stage("map", share(0.2)), stage("out", share(0.99))},
			[]Edge{edge("gen", "map", true), edge("map", "out", true)}, "out"},
		{"idle", []Stage{stage("gen", nil), stage("map", share(0)), stage("out", share(0))},
			[]Edge{edge("gen", "map", false), edge("map", "out", false)}, ""},
		{"busy but fed slowly", []Stage{stage("gen", nil), stage("map", share(0.9)), stage("out", share(0.1))},
			[]Edge{edge("gen", "map", false), edge("map", "out", false)}, ""},
		{"full input, barely busy", []Stage{stage("gen", nil), stage("map", share(0.3)), stage("out", share(0.1))},
			[]Edge{edge("gen", "map", true), edge("map", "out", false)}, ""},
		{"a full dead-letter output does not count", []Stage{stage("gen", nil), stage("map", share(0.9)), stage("out", share(0.1)), stage("dlq", share(0.1))},
			[]Edge{edge("gen", "map", true), edge("map", "out", false), {From: "map", To: "dlq", Full: true, WhenFull: "block", DeadLetter: true}}, "map"},
		{"a lossy branch holds nothing back", []Stage{stage("gen", nil), stage("fan", nil), stage("fast", share(0.1)), stage("dash", share(1))},
			[]Edge{edge("gen", "fan", false), edge("fan", "fast", false), {From: "fan", To: "dash", Full: true, WhenFull: "drop_oldest"}}, ""},
		{"the busier of two branches", []Stage{stage("gen", nil), stage("fan", nil), stage("a", share(0.7)), stage("b", share(0.95))},
			[]Edge{edge("gen", "fan", true), edge("fan", "a", true), edge("fan", "b", true)}, "b"},
		{"a merge is not measured", []Stage{stage("m", nil), stage("out", share(0.1))},
			[]Edge{edge("a", "m", true), edge("m", "out", false)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := bottleneck(Pipeline{WindowSeconds: 1, Stages: tc.stages, Edges: tc.edges})
			if (got == nil) != (tc.want == "") || got != nil && *got != tc.want {
				t.Errorf("bottleneck = %v, want %q", got, tc.want)
			}
			if got := bottleneck(Pipeline{Stages: tc.stages, Edges: tc.edges}); got != nil {
				t.Errorf("bottleneck of a first sample = %q, want none", *got)
			}
		})
	}
}
