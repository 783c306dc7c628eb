// Package route holds the kinds that shape the graph rather than the
// records: fanout (broadcast, round robin or by hash of a key) and merge.
// It imports operators, planner and runtime; never lang.
package route
