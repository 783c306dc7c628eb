// Package flowtest runs the test blocks of a plan: it builds the tested
// pipeline with every source replaced by the records the test gives it and
// every sink replaced by a capture, runs it to the end on a virtual clock,
// and compares what each expected sink received with what the test expects.
//
// It imports planner, operators and runtime; it is used by `flowrun test`
// and by tests of the example pipelines.
package flowtest
