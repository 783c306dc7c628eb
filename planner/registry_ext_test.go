package planner_test

import (
	"slices"

	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/planner"
)

// registry is the real registry of every kind flowrun ships, with the kinds
// it lists in hints cut down to the core ones, so that golden diagnostics
// do not change each time a connector is added.
func registry() planner.Registry { return coreKinds{all.Registry()} }

// coreSourcesAndSinks are the source and sink kinds golden files may name.
var coreSourcesAndSinks = []string{"discard", "file", "generate", "stdin", "stdout"}

type coreKinds struct{ planner.Registry }

func (r coreKinds) Kinds(block string) []string {
	kinds := r.Registry.Kinds(block)
	if block != "source" && block != "sink" {
		return kinds
	}
	return slices.DeleteFunc(kinds, func(k string) bool { return !slices.Contains(coreSourcesAndSinks, k) })
}
