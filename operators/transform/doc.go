// Package transform holds the record-at-a-time processor kinds: filter,
// map, take, skip, dedupe, reduce, batch, window and throttle. Each runs
// compiled expressions through one reused operators.Eval. It imports
// operators, operators/codec, planner and runtime; never lang.
package transform
