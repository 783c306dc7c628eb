// Package planner turns parsed .flow files into a checked plan: every
// pipeline as a DAG of stages joined by bounded edges, with implicit fanout
// and merge stages inserted, each edge's capacity set and the memory bound
// stated; the variables in force; and the test blocks.
//
// Build runs every check the runtime relies on and reports every independent
// problem as a diagnostic. The plan is a plain value: it can be printed
// (Print, package planner/graph), compared and tested without running
// anything. Option schemas come from a Registry (operators/all provides the
// real one).
//
// planner imports lang (syntax and literals), lang/diag and
// planner/expression; it must not import the runtime or the operators.
package planner
