package all_test

import (
	"slices"
	"testing"
	"time"

	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/planner"
)

// TestSchemas checks that the core kinds are registered, and that every
// registered kind is documented and its option defaults have the Go type the
// option type decodes to.
func TestSchemas(t *testing.T) {
	r := all.Registry()
	want := map[string][]string{
		"source":   {"file", "generate", "stdin"},
		"sink":     {"discard", "file", "stdout"},
		"filter":   {"filter"},
		"map":      {"map"},
		"buffered": {"buffered"},
		"throttle": {"throttle"},
		"fanout":   {"fanout"},
		"merge":    {"merge"},
		"batch":    {"batch"},
		"take":     {"take"},
		"skip":     {"skip"},
		"reduce":   {"reduce"},
		"window":   {"window"},
		"dedupe":   {"dedupe"},
	}
	for block, kinds := range want {
		got := r.Kinds(block)
		if !slices.IsSorted(got) {
			t.Errorf("Kinds(%q) = %v, not sorted", block, got)
		}
		for _, k := range kinds {
			if !slices.Contains(got, k) {
				t.Errorf("Kinds(%q) = %v, missing %q", block, got, k)
			}
		}
	}
	if got := len(r.Blocks()); got != len(want) {
		t.Errorf("Blocks() = %v, want %d block types", r.Blocks(), len(want))
	}
	reserved := []string{"from", "kind", "on_error", "dead_letter", "retry_attempts", "retry_backoff",
		"retry_max_backoff", "edge_capacity", "edge_bytes", "when_full"}
	for _, block := range r.Blocks() {
		for _, kind := range r.Kinds(block) {
			s, ok := r.Lookup(block, kind)
			if !ok {
				t.Fatalf("Lookup(%q, %q) failed", block, kind)
			}
			if s.Block != block || s.Kind != kind {
				t.Errorf("Lookup(%q, %q) = schema of %s %s", block, kind, s.Block, s.Kind)
			}
			if s.Doc == "" {
				t.Errorf("%s %s: no doc", block, kind)
			}
			for _, o := range s.Options {
				name := block + " " + kind + " option " + o.Name
				if o.Doc == "" {
					t.Errorf("%s: no doc", name)
				}
				if slices.Contains(reserved, o.Name) {
					t.Errorf("%s: the planner handles this option", name)
				}
				if o.Required && o.Default != nil {
					t.Errorf("%s: required with a default", name)
				}
				if o.Default != nil && !defaultFits(o) {
					t.Errorf("%s: default %#v does not fit type %d", name, o.Default, o.Type)
				}
				if (o.Type == planner.Enum) != (len(o.Enum) > 0) {
					t.Errorf("%s: enum values only and always for Enum options", name)
				}
			}
		}
	}
	if _, ok := r.Lookup("source", "nope"); ok {
		t.Error("Lookup of an unknown kind succeeded")
	}
}

func defaultFits(o planner.OptionSpec) bool {
	switch o.Type {
	case planner.String:
		_, ok := o.Default.(string)
		return ok
	case planner.Enum:
		s, ok := o.Default.(string)
		return ok && slices.Contains(o.Enum, s)
	case planner.Int:
		_, ok := o.Default.(int64)
		return ok
	case planner.Float:
		_, ok := o.Default.(float64)
		return ok
	case planner.Bool:
		_, ok := o.Default.(bool)
		return ok
	case planner.Duration:
		_, ok := o.Default.(time.Duration)
		return ok
	case planner.StringList:
		_, ok := o.Default.([]string)
		return ok
	case planner.Value:
		return true
	}
	return false
}
