package planner_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/flowrun/flowrun/lang"
	"github.com/flowrun/flowrun/lang/ast"
	"github.com/flowrun/flowrun/planner"
)

// FuzzBuild checks that planning whatever lang parses never panics, and that
// a plan without errors has every stage of its pipelines in order.
func FuzzBuild(f *testing.F) {
	for _, dir := range []string{"testdata/check", "testdata/plan"} {
		paths, _ := filepath.Glob(filepath.Join(dir, "*.flow"))
		for _, p := range paths {
			src, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(src)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		file, _ := lang.Parse("fuzz.flow", src)
		p, ds := planner.Build([]*ast.File{file}, registry(), map[string]string{"x": "1"})
		if p == nil {
			t.Fatal("Build returned no plan")
		}
		if ds.HasErrors() {
			return
		}
		for _, pl := range p.Pipelines {
			checkPipeline(t, pl)
		}
	})
}
