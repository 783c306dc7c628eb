// Package lang parses .flow files into syntax trees (package ast) and
// attribute values into literals, reporting every problem as a
// diag.Diagnostic with an exact range.
//
// The file structure:
//
//	body      = { attribute | block | comment | NEWLINE | ";" }
//	block     = IDENT { STRING | IDENT } "{" body "}"
//	attribute = IDENT "=" VALUE
//
// A VALUE is raw text: from after "=" to the end of the line, or further
// while a bracket ( [ {, a string ("...", '...', `...`) or a heredoc
// (<<ID or <<-ID, then lines up to one holding only ID) is open. At bracket
// depth 0 a ";", a "}" closing the block, or a comment (#, //, /* */) ends
// it; inside brackets only // and /* */ are comments. A /* */ comment inside
// a block header or around "=" is allowed and kept by the formatter.
//
// ParseValue reads a VALUE as a literal:
//
//	literal = STRING | HEREDOC | NUMBER | "true" | "false" | "null"
//	        | "[" [ literal { "," literal } [ "," ] ] "]"
//	        | "{" [ item { ( "," | NEWLINE ) item } ] "}"
//	        | IDENT { "." IDENT }
//	item    = ( IDENT | STRING ) ( "=" | ":" ) literal
//
// Strings know the escapes \n \t \r \" \\ and \uXXXX. Numbers are int64
// when written without a fraction or exponent, float64 otherwise. Text that
// is not a literal is an expression, which the planner compiles.
//
// Parse reports all independent problems: lexical ones anywhere in the
// file, and one syntax error per top-level block; after a syntax error it
// resumes at the next line that starts a block at column 1.
//
// lang knows the syntax only: it does not know which blocks, options or
// stage kinds exist (that is the planner's job). It must not import the
// planner, the runtime or the operators.
package lang
