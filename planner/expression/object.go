package expression

import (
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/parser"
)

// Object is a program whose expression is an object literal with constant
// keys, {k1: e1, k2: e2...}, compiled field by field: running it builds the
// map at its final size and runs no code for a field whose value is a
// constant or a plain variable. Records built from a template by the
// million are built this way.
type Object struct {
	fields []objectField
}

// objectField is one key of an Object: its value is a scalar constant,
// the variable named by name, or the result of program.
type objectField struct {
	key      string
	constant any
	variable string
	program  *Program
}

// Object returns p compiled field by field when p is an object literal
// with constant keys, each once, and false otherwise. (The VM lets the
// first of two equal keys win; such a literal is left to it.)
func (p *Program) Object() (*Object, bool) {
	m, ok := p.program.Node().(*ast.MapNode)
	if !ok {
		return nil, false
	}
	cfg := conf.CreateNew()
	for _, op := range options() {
		op(cfg)
	}
	obj := &Object{}
	seen := make(map[string]bool, len(m.Pairs))
	for _, n := range m.Pairs {
		pair, ok := n.(*ast.PairNode)
		if !ok {
			return nil, false
		}
		key, ok := pair.Key.(*ast.StringNode)
		if !ok || seen[key.Value] {
			return nil, false
		}
		seen[key.Value] = true
		f := objectField{key: key.Value}
		switch v := pair.Value.(type) {
		case *ast.StringNode:
			f.constant = v.Value
		case *ast.IntegerNode:
			f.constant = int64(v.Value)
		case *ast.FloatNode:
			f.constant = v.Value
		case *ast.BoolNode:
			f.constant = v.Value
		case *ast.NilNode:
		case *ast.IdentifierNode:
			f.variable = v.Value
		default:
			prog, err := compiler.Compile(&parser.Tree{Node: v, Source: p.program.Source()}, cfg)
			if err != nil {
				return nil, false
			}
			f.program = &Program{Source: p.Source, Range: p.Range, Kind: Any, program: prog, normalized: yieldsNormalized(v)}
		}
		obj.fields = append(obj.fields, f)
	}
	return obj, true
}

// Object evaluates o with the record's fields as variables, as Run
// evaluates the whole literal.
func (r *Runner) Object(o *Object, fields map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(o.fields))
	for _, f := range o.fields {
		switch {
		case f.program != nil:
			v, err := r.Run(f.program, fields)
			if err != nil {
				return nil, err
			}
			out[f.key] = v
		case f.variable != "":
			out[f.key] = fields[f.variable]
		default:
			out[f.key] = f.constant
		}
	}
	return out, nil
}
