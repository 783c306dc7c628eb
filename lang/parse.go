package lang

import (
	"github.com/flowrun/flowrun/lang/ast"
	"github.com/flowrun/flowrun/lang/diag"
)

// Parse parses the source of one .flow file. It always returns a file (with
// whatever could be parsed) and reports every independent problem it finds.
func Parse(filename string, src []byte) (*ast.File, diag.Diagnostics) {
	return &ast.File{Filename: filename, Src: src, Body: &ast.Body{}}, nil
}

// ParseValue decodes an attribute's raw value as a literal: a string,
// heredoc, number, bool, null, list, object or reference. When the text is
// not a literal (an expression, say) it returns an error diagnostic.
// Ranges of the returned nodes are in the coordinates of the .flow file.
func ParseValue(v *ast.Value) (ast.Literal, diag.Diagnostics) {
	return nil, diag.Diagnostics{diag.Errorf(v.Range(), "Invalid value", "Literal values are not parsed yet.")}
}
