// Package ast holds the syntax tree of a .flow file: blocks, attributes,
// labels, comments and raw attribute values, plus the literal nodes a value
// decodes to (strings, numbers, booleans, null, lists, objects, references).
//
// The nodes carry participle grammar tags; package lang builds the parsers
// from them. Every node knows its source range in the .flow file.
//
// ast imports only lang/diag and participle's lexer (for positions). It must
// not import lang, the planner or the runtime.
package ast
