package planner_test

import (
	"testing"

	"github.com/flowrun/flowrun/lang/diag"
)

// TestExpectations checks how the check harness reads ERROR comments: on
// the line they follow, on the next line when alone, several per line, and
// about --var flags.
func TestExpectations(t *testing.T) {
	src := []byte(`# vars: a=1 b=two
x = 1 # ERROR "same line"
  # ERROR "next line"
y = 2
z = [
  // ERROR "slashes"
  w, // WARNING "warn" ERROR "second"
]
# ERROR(--var) "flag"
`)
	got, vars := expectations(t, src)
	want := []struct {
		line int
		sev  diag.Severity
		rx   string
	}{
		{2, diag.Error, "same line"},
		{4, diag.Error, "next line"},
		{7, diag.Error, "slashes"},
		{7, diag.Warning, "warn"},
		{7, diag.Error, "second"},
		{0, diag.Error, "flag"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d expectations, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.line != w.line || g.severity != w.sev || g.raw != w.rx {
			t.Errorf("expectation %d = line %d %s %q, want line %d %s %q", i, g.line, g.severity, g.raw, w.line, w.sev, w.rx)
		}
	}
	if len(vars) != 2 || vars["a"] != "1" || vars["b"] != "two" {
		t.Errorf("vars = %v, want a=1 b=two", vars)
	}
}
