// Package call holds the buffered kind: an asynchronous call per record (a
// command or an HTTP request) whose result is merged into the record, run
// by the runtime with bounded concurrency. It imports operators,
// operators/codec, planner and runtime; never lang.
package call
