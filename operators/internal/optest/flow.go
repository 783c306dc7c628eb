package optest

import (
	"testing"

	"github.com/flowrun/flowrun/lang"
	"github.com/flowrun/flowrun/lang/ast"
	"github.com/flowrun/flowrun/lang/diag"
	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/planner"
)

// Plan parses and plans src, a .flow file, with every registered kind, and
// returns its pipeline named name. Any diagnostic fails the test.
func Plan(t testing.TB, src, name string) *planner.Pipeline {
	t.Helper()
	f, diags := lang.Parse("test.flow", []byte(src))
	if diags.HasErrors() {
		t.Fatalf("parse: %v", diags)
	}
	plan, diags := planner.Build([]*ast.File{f}, all.Registry(), nil)
	if diags.HasErrors() {
		t.Fatalf("plan: %v", diags)
	}
	for _, p := range plan.Pipelines {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no pipeline %q planned", name)
	return nil
}

// PlanDiagnostics parses and plans src and returns the diagnostics.
func PlanDiagnostics(t testing.TB, src string) diag.Diagnostics {
	t.Helper()
	f, diags := lang.Parse("test.flow", []byte(src))
	if diags.HasErrors() {
		t.Fatalf("parse: %v", diags)
	}
	_, diags = planner.Build([]*ast.File{f}, all.Registry(), nil)
	return diags
}

// PlanStage plans src and returns the stage named stage of its pipeline
// named "p".
func PlanStage(t testing.TB, src, stage string) *planner.Stage {
	t.Helper()
	st := Plan(t, src, "p").Stage(stage)
	if st == nil {
		t.Fatalf("no stage %q planned", stage)
	}
	return st
}
