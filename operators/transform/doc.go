// Package transform holds the record-at-a-time processor kinds: filter,
// map, take, skip, dedupe, reduce, batch, window and throttle. Each runs
// compiled expressions through one reused operators.Eval. The kinds that
// keep something between records (take, skip, dedupe, reduce, batch,
// window) are runtime.Stateful: state.go holds their shared, versioned JSON
// encoding, and docs/state.md says what each keeps. It imports operators,
// operators/codec, planner and runtime; never lang.
package transform
