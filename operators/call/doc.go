// Package call holds the buffered kind: an asynchronous call per record (a
// command or an HTTP request) whose result is merged into the record, run
// by the runtime with bounded concurrency. It imports operators,
// operators/codec, operators/internal/retryafter, planner, runtime and
// runtime/onerror; never lang.
package call
