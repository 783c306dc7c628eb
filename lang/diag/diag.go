// Package diag describes problems found in .flow files: positions, ranges and
// diagnostics with a severity, a summary, a detail and the range they point at.
//
// It follows the conventions of HCL and Terraform. It depends on the standard
// library only, so every phase (lang, planner, cmd) can report through it.
package diag

import (
	"fmt"
	"strings"
)

// Pos is a position in a source file. Line and Column start at 1; Column
// counts bytes from the start of the line plus one; Byte is the offset from the
// start of the file.
type Pos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

// Range is a span of source text in one file, from Start (inclusive) to End
// (exclusive).
type Range struct {
	Filename string `json:"filename"`
	Start    Pos    `json:"start"`
	End      Pos    `json:"end"`
}

// String renders the range's start as file:line:col.
func (r Range) String() string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

// Severity says whether a diagnostic stops a file from being used.
type Severity int

const (
	// Error marks a problem that makes the file invalid.
	Error Severity = iota + 1
	// Warning marks a problem that does not stop the file from running.
	Warning
)

// String returns "error" or "warning".
func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return "error"
}

// Diagnostic is one problem: a short Summary ("Unknown stage kind"), a Detail
// written as sentences that say how to fix it, and the Subject range it is
// about. Hint, when set, is a suggestion such as `Did you mean "upper"?`.
type Diagnostic struct {
	Severity Severity
	Summary  string
	Detail   string
	Hint     string
	Subject  Range
}

// Error formats the diagnostic on one line as file:line:col: severity: summary.
func (d *Diagnostic) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s: %s", d.Subject, d.Severity, d.Summary)
	if d.Detail != "" {
		fmt.Fprintf(&b, "; %s", d.Detail)
	}
	if d.Hint != "" {
		fmt.Fprintf(&b, " %s", d.Hint)
	}
	return b.String()
}

// Diagnostics is a list of diagnostics. It is itself an error, so a phase can
// return it as one; a nil or empty list means no problems.
type Diagnostics []*Diagnostic

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

// Errs returns the error diagnostics as an error, or nil when there are none.
func (ds Diagnostics) Errs() error {
	if !ds.HasErrors() {
		return nil
	}
	return ds
}

// Error joins the diagnostics, one per line.
func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.Error()
	}
	return strings.Join(lines, "\n")
}

// Errorf returns an error diagnostic about subject.
func Errorf(subject Range, summary, detailFormat string, args ...any) *Diagnostic {
	return &Diagnostic{Severity: Error, Summary: summary, Detail: fmt.Sprintf(detailFormat, args...), Subject: subject}
}
