// Package sink holds the sink kinds: stdout, file and discard, and a memory
// sink for tests. A sink's Write returns nil only once the records are
// written as durably as the sink promises. It imports operators,
// operators/codec, planner and runtime; never lang.
package sink
