// Package lang parses .flow files into syntax trees (package ast) and
// attribute values into literals, reporting every problem as a
// diag.Diagnostic with an exact range.
//
// lang knows the syntax only: it does not know which blocks, options or
// stage kinds exist (that is the planner's job). It must not import the
// planner, the runtime or the operators.
package lang
