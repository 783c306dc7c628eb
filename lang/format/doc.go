// Package format prints a parsed .flow file in the one canonical layout
// used by `flowrun fmt`: two-space indentation, aligned `=` in runs of
// attributes, one blank line between top-level blocks, comments kept, and
// attribute values kept as written apart from their indentation.
//
// format depends on lang/ast only; it must not import the planner or the
// runtime.
package format
