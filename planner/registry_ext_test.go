package planner_test

import (
	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/planner"
)

// registry is the real registry of every kind flowrun ships.
func registry() planner.Registry { return all.Registry() }
