// Package expression compiles and runs the expr-lang expressions of .flow
// files with flowrun's own functions (upper, lower, env, ...). Expressions are
// compiled once at plan time and run many times with a reused VM.
package expression

import (
	"github.com/expr-lang/expr/vm"

	"github.com/flowrun/flowrun/lang/diag"
)

// Program is a compiled expression and where it was written.
type Program struct {
	Source  string
	Range   diag.Range
	program *vm.Program
}
