package planner

import (
	"fmt"
	"time"

	"github.com/flowrun/flowrun/lang/ast"
	"github.com/flowrun/flowrun/lang/suggest"
	"github.com/flowrun/flowrun/planner/expression"
)

// expects describes in words what a value of type t must be.
func expects(spec *OptionSpec) string {
	switch spec.Type {
	case String:
		return "a string"
	case Int:
		return "an integer"
	case Float:
		return "a number"
	case Bool:
		return "true or false"
	case Duration:
		return `a duration such as "250ms" or "1s"`
	case Enum:
		return "one of " + quoteList(spec.Enum)
	case Expr:
		return "an expression"
	case Predicate:
		return "a condition"
	case Fields:
		return "a block of field = expression attributes"
	case StringList:
		return "a list of strings"
	case Value:
		return "a literal value"
	case StageRef:
		return "the name of a stage"
	}
	return "a value"
}

// ref is a reference to a stage, with where it was written.
type ref struct {
	name string
	at   ast.Node
}

// decode decodes the attribute a as option spec. For a StageRef it returns
// a ref, resolved later against the pipeline's stages.
func (p *planner) decode(spec *OptionSpec, a *ast.Attribute) (any, bool) {
	switch spec.Type {
	case Expr, Predicate:
		want := expression.Any
		if spec.Type == Predicate {
			want = expression.Bool
		}
		prog, ds := expression.Compile(a.Value.Raw, a.Value.Range(), p.plan.Vars, want)
		p.diags = append(p.diags, ds...)
		return prog, prog != nil && !ds.HasErrors()
	case Fields:
		p.errorf(a.NameRange(), "Block expected",
			"%s is a block of field = expression attributes: write %s { field = expression }.", a.Name, a.Name)
		return nil, false
	}
	lit, ok := p.literal(a.Value, expects(spec))
	if !ok {
		return nil, false
	}
	if spec.Type == StageRef {
		r, isRef := lit.(*ast.Ref)
		if !isRef || len(r.Parts) != 1 {
			d := p.errorf(lit.Range(), "Invalid option type", "%s takes the name of a stage, written bare.", a.Name)
			if s, isString := lit.(*ast.String); isString {
				d.Hint = fmt.Sprintf("Write %s = %s, without quotes.", a.Name, s.Value)
			}
			return nil, false
		}
		return ref{name: r.Parts[0], at: r}, true
	}
	v, ok := p.value(lit)
	if !ok {
		return nil, false
	}
	return p.convert(spec, a.Name, v, lit)
}

// convert checks and converts the Go value v of option name to the option's
// type.
func (p *planner) convert(spec *OptionSpec, name string, v any, lit ast.Literal) (any, bool) {
	bad := func() (any, bool) {
		p.errorf(lit.Range(), "Invalid option type", "%s takes %s, not %s.", name, expects(spec), describe(v))
		return nil, false
	}
	switch spec.Type {
	case String:
		if s, ok := v.(string); ok {
			return s, true
		}
		return bad()
	case Int:
		if n, ok := v.(int64); ok {
			return n, true
		}
		return bad()
	case Float:
		switch n := v.(type) {
		case int64:
			return float64(n), true
		case float64:
			return n, true
		}
		return bad()
	case Bool:
		if b, ok := v.(bool); ok {
			return b, true
		}
		return bad()
	case Duration:
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			p.errorf(lit.Range(), "Invalid duration",
				"%s takes a duration such as \"250ms\", \"1s\" or \"1m30s\" (units ns, us, ms, s, m, h); %q is not one.", name, s)
			return nil, false
		}
		return d, true
	case Enum:
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		for _, e := range spec.Enum {
			if e == s {
				return s, true
			}
		}
		d := p.errorf(lit.Range(), "Invalid option value", "%s takes %s, not %q.", name, quoteList(spec.Enum), s)
		d.Hint = suggest.Hint(s, spec.Enum)
		return nil, false
	case StringList:
		switch l := v.(type) {
		case string:
			return []string{l}, true
		case []any:
			out := make([]string, len(l))
			for i, e := range l {
				s, ok := e.(string)
				if !ok {
					p.errorf(elemRange(lit, i).Range(), "Invalid option type",
						"%s takes a list of strings; element %d is %s.", name, i+1, describe(e))
					return nil, false
				}
				out[i] = s
			}
			return out, true
		}
		return bad()
	case Value:
		return v, true
	}
	return bad()
}

// elemRange returns the range of the i-th element of a list literal, or of
// the whole literal.
func elemRange(lit ast.Literal, i int) ast.Node {
	if l, ok := lit.(*ast.List); ok && i < len(l.Elems) {
		return l.Elems[i]
	}
	return lit
}

// describe names the type of a decoded value, for messages.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("the string %q", x)
	case int64:
		return fmt.Sprintf("the integer %d", x)
	case float64:
		return fmt.Sprintf("the number %g", x)
	case bool:
		return fmt.Sprintf("%t", x)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
