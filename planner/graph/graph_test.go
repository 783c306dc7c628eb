package graph_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/flowrun/flowrun/lang"
	"github.com/flowrun/flowrun/lang/ast"
	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/planner"
	"github.com/flowrun/flowrun/planner/graph"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

func plan(t *testing.T, path string) *planner.Plan {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, ds := lang.Parse(filepath.ToSlash(path), src)
	p, pds := planner.Build([]*ast.File{f}, all.Registry(), nil)
	if ds = append(ds, pds...); ds.HasErrors() {
		t.Fatalf("%s is not valid:\n%v", path, ds)
	}
	return p
}

// TestGolden renders every file of testdata as dot and as mermaid.
func TestGolden(t *testing.T) {
	paths, err := filepath.Glob("testdata/*.flow")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			p := plan(t, path)
			var dot, mmd bytes.Buffer
			if err := graph.Dot(&dot, p.Pipelines...); err != nil {
				t.Fatal(err)
			}
			if err := graph.Mermaid(&mmd, p.Pipelines...); err != nil {
				t.Fatal(err)
			}
			base := strings.TrimSuffix(path, ".flow")
			golden(t, base+".dot", dot.Bytes())
			golden(t, base+".mmd", mmd.Bytes())
		})
	}
}

// TestMermaidIDs checks that node ids are unique, made of safe characters
// and never a bare mermaid keyword, and that every edge joins declared nodes.
func TestMermaidIDs(t *testing.T) {
	p := plan(t, "testdata/two_pipelines.flow")
	var out bytes.Buffer
	if err := graph.Mermaid(&out, p.Pipelines...); err != nil {
		t.Fatal(err)
	}
	node := regexp.MustCompile(`(?m)^\s+(\S+?)(\(\[|\[\(|\{\{|\[)"`)
	declared := map[string]bool{}
	for _, m := range node.FindAllStringSubmatch(out.String(), -1) {
		id := m[1]
		if declared[id] {
			t.Errorf("node id %q declared twice", id)
		}
		declared[id] = true
		if !regexp.MustCompile(`^n_[A-Za-z0-9_]+$`).MatchString(id) {
			t.Errorf("node id %q is not sanitised", id)
		}
	}
	stages := 0
	for _, pl := range p.Pipelines {
		stages += len(pl.Stages)
	}
	if len(declared) != stages {
		t.Errorf("%d node ids for %d stages and %d pipelines:\n%s", len(declared), stages, len(p.Pipelines), out.String())
	}
	edge := regexp.MustCompile(`(?m)^\s+(\S+) (?:-->|-\.->)\|"[^"]*"\| (\S+)$`)
	edges := edge.FindAllStringSubmatch(out.String(), -1)
	if len(edges) == 0 {
		t.Fatalf("no edges in:\n%s", out.String())
	}
	for _, m := range edges {
		if !declared[m[1]] || !declared[m[2]] {
			t.Errorf("edge %s -> %s joins an undeclared node", m[1], m[2])
		}
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./planner/graph -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test ./planner/graph -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
