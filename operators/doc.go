// Package operators is the catalogue of flowrun's stage kinds: for each kind
// its option schema (which the planner checks a .flow file against) and the
// function that turns a planned stage into the runtime value that runs it.
// BuildGraph turns a whole planned pipeline into a runtime.Graph.
//
// The implementations live in one package per family (source, transform,
// call, route, sink, and connector packages such as web and postgres);
// operators/all registers every kind. This package may
// import planner, planner/expression and runtime, never lang or cmd, and never
// the family packages (they import it).
package operators
