package all_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/operators/internal/optest"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// jsonLines returns n lines of JSON log records.
func jsonLines(n int) string {
	var sb strings.Builder
	for i := range n {
		level := "INFO"
		if i%3 == 0 {
			level = "ERROR"
		}
		fmt.Fprintf(&sb, `{"id": %d, "level": %q, "msg": "request served", "latency": 1.5}`+"\n", i, level)
	}
	return sb.String()
}

// benchPipeline runs pipeline "p" of src once per iteration, with input
// written to in.jsonl, and reports the source's records per second.
func benchPipeline(b *testing.B, src, input string, records int) {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "in.jsonl"), []byte(input), 0o644); err != nil {
		b.Fatal(err)
	}
	p := optest.Plan(b, src, "p")
	env := operators.BuildEnv{Logger: hclog.NewNullLogger(), Dir: dir}
	b.ReportAllocs()
	for b.Loop() {
		g, err := all.Registry().BuildGraph(p, env)
		if err != nil {
			b.Fatal(err)
		}
		ex, err := flowruntime.Start(context.Background(), g, flowruntime.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := ex.Wait(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkJSONLPipeline is the JSONL workload of DESIGN §7:
// file -> filter -> map -> file.
func BenchmarkJSONLPipeline(b *testing.B) {
	benchPipeline(b, `
pipeline "p" {
  source "in" {
    kind  = "file"
    path  = "in.jsonl"
    codec = "json"
  }
  filter "errors" {
    from  = in
    where = level == "ERROR" || id % 2 == 0
  }
  map "enrich" {
    from = errors
    set {
      msg  = upper(msg)
      slow = latency > 1
    }
  }
  sink "out" {
    from = enrich
    kind = "file"
    path = "out.jsonl"
  }
}
`, jsonLines(100000), 100000)
}

// BenchmarkGeneratePipeline is generate -> filter -> map -> discard.
func BenchmarkGeneratePipeline(b *testing.B) {
	benchPipeline(b, `
pipeline "p" {
  source "in" {
    kind  = "generate"
    count = 200000
  }
  filter "some" {
    from  = in
    where = seq % 3 != 0
  }
  map "m" {
    from = some
    set {
      double = seq * 2
    }
  }
  sink "out" {
    from = m
    kind = "discard"
  }
}
`, "", 200000)
}
