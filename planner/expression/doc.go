// Package expression compiles and runs the expr-lang expressions of .flow
// files with flowrun's own functions (env, ...) next to expr's builtins
// (upper, lower, trim, len, split, now, ...).
//
// Expressions are compiled once, at plan time, by Compile: the record's fields
// are free variables, `var.NAME` is replaced by the variable's value, calls of
// unknown functions are errors with a did-you-mean hint, and every error is a
// diagnostic placed at its own line and column in the .flow file. A Runner
// then runs a compiled Program many times with a reused VM.
//
// This package imports lang/diag and lang/suggest only; it must not import
// the planner, the runtime or the operators.
package expression
