package expression

import "github.com/expr-lang/expr/ast"

// fieldEquals is a condition of the form `field == "text"` or
// `field != "text"` (either way round), the commonest filter, evaluated
// without the VM: a map lookup and a string comparison. A field that is
// absent or not a string is not equal, as in the VM.
type fieldEquals struct {
	field  string
	value  string
	negate bool
}

// fieldEqualsOf returns the shortcut for n, or nil when n is of another
// form.
func fieldEqualsOf(n ast.Node) *fieldEquals {
	b, ok := n.(*ast.BinaryNode)
	if !ok || (b.Operator != "==" && b.Operator != "!=") {
		return nil
	}
	id, okID := b.Left.(*ast.IdentifierNode)
	s, okStr := b.Right.(*ast.StringNode)
	if !okID || !okStr {
		id, okID = b.Right.(*ast.IdentifierNode)
		s, okStr = b.Left.(*ast.StringNode)
	}
	if !okID || !okStr {
		return nil
	}
	return &fieldEquals{field: id.Value, value: s.Value, negate: b.Operator == "!="}
}

func (f *fieldEquals) eval(fields map[string]any) bool {
	s, ok := fields[f.field].(string)
	return (ok && s == f.value) != f.negate
}
