package planner

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/alecthomas/participle/v2/lexer"

	"github.com/flowrun/flowrun/lang"
	"github.com/flowrun/flowrun/lang/ast"
	"github.com/flowrun/flowrun/lang/diag"
	"github.com/flowrun/flowrun/lang/suggest"
)

// varAttributes are the attributes a var block may set.
var varAttributes = []string{"default", "description"}

// commandLine is the subject of diagnostics about --var flags.
var commandLine = diag.Range{Filename: "--var"}

// planVars decides the value of every declared variable: the --var override
// converted to the default's type, else the default.
func (p *planner) planVars(blocks []*ast.Block, overrides map[string]string) {
	p.varRanges = map[string]diag.Range{}
	p.brokenVars = map[string]bool{}
	defaults := map[string]any{}
	hasDefault := map[string]bool{}
	var order []string
	for _, b := range blocks {
		name, ok := p.name(b, "variable")
		if !ok {
			continue
		}
		if !isIdent(name) {
			p.errorf(b.Labels[0].Range(), "Invalid variable name",
				"Variable names are identifiers (letters, digits and underscores) so that var.NAME can refer to them; %q is not one.", name)
			continue
		}
		if first, dup := p.varRanges[name]; dup {
			p.errorf(b.Labels[0].Range(), "Duplicate variable",
				"Variable %q is already declared at %s.", name, first)
			continue
		}
		p.varRanges[name] = header(b)
		order = append(order, name)
		p.plan.Vars[name] = nil
		for _, nb := range b.Body.Blocks() {
			p.errorf(nb.TypeRange(), "Unexpected block", "A var block holds only the attributes default and description.")
		}
		for _, a := range b.Body.Attributes() {
			switch a.Name {
			case "default":
				lit, ok := p.literal(a.Value, "a literal value")
				if !ok {
					continue
				}
				v, ok := ast.Go(lit)
				if !ok {
					p.errorf(a.Value.Range(), "Invalid default",
						"A variable's default is a literal value; references are not allowed here.")
					p.brokenVars[name] = true
					continue
				}
				defaults[name], hasDefault[name] = v, true
			case "description":
				lit, ok := p.literal(a.Value, "a string")
				if !ok {
					continue
				}
				if _, isString := lit.(*ast.String); !isString {
					p.errorf(a.Value.Range(), "Invalid description", "A description is a string.")
				}
			default:
				d := p.errorf(a.NameRange(), "Unknown attribute",
					"A var block sets only default and description, not %q.", a.Name)
				d.Hint = suggest.Hint(a.Name, varAttributes)
			}
		}
	}

	names := make([]string, 0, len(overrides))
	for k := range overrides {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if _, ok := p.varRanges[k]; !ok {
			d := p.errorf(commandLine, "Unknown variable",
				"--var %s=%s sets a variable that no var block declares.", k, overrides[k])
			d.Hint = suggest.Hint(k, order)
		}
	}

	for _, name := range order {
		raw, set := overrides[name]
		switch {
		case set:
			v, err := convertVar(raw, defaults[name], hasDefault[name])
			if err != nil {
				p.errorf(commandLine, "Invalid variable value", "--var %s=%s: %s.", name, raw, err)
				p.brokenVars[name] = true
				continue
			}
			p.plan.Vars[name] = v
		case hasDefault[name]:
			p.plan.Vars[name] = defaults[name]
		default:
			if !p.brokenVars[name] {
				p.errorf(p.varRanges[name], "Missing variable value",
					"Variable %q has no default: give it one, or pass --var %s=VALUE.", name, name)
			}
			p.brokenVars[name] = true
		}
	}
}

// convertVar converts the text of a --var flag to the type of the
// variable's default; without a default (or a default of another kind) it
// is parsed as a literal, and taken as a string when it is not one.
func convertVar(raw string, def any, hasDefault bool) (any, error) {
	if hasDefault {
		switch def.(type) {
		case string:
			return raw, nil
		case int64:
			n, err := strconv.ParseInt(raw, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("the default is an integer and %q is not one", raw)
			}
			return n, nil
		case float64:
			f, err := strconv.ParseFloat(raw, 64)
			if err != nil {
				return nil, fmt.Errorf("the default is a number and %q is not one", raw)
			}
			return f, nil
		case bool:
			b, err := strconv.ParseBool(raw)
			if err != nil {
				return nil, fmt.Errorf("the default is a boolean and %q is not true or false", raw)
			}
			return b, nil
		}
	}
	v := &ast.Value{Raw: raw, Pos: lexer.Position{Filename: "--var", Line: 1, Column: 1}}
	lit, ds := lang.ParseValue(v)
	if ds.HasErrors() || lit == nil {
		return raw, nil
	}
	if g, ok := ast.Go(lit); ok {
		if hasDefault {
			if err := sameKind(def, g); err != nil {
				return nil, err
			}
		}
		return g, nil
	}
	return raw, nil
}

func sameKind(def, v any) error {
	switch def.(type) {
	case []any:
		if _, ok := v.([]any); !ok {
			return fmt.Errorf("the default is a list and the value is not one")
		}
	case map[string]any:
		if _, ok := v.(map[string]any); !ok {
			return fmt.Errorf("the default is an object and the value is not one")
		}
	}
	return nil
}

// literal parses an attribute value as a literal; what says what was
// expected, for the diagnostic when the value is not a literal.
func (p *planner) literal(v *ast.Value, what string) (ast.Literal, bool) {
	lit, ds := lang.ParseValue(v)
	if !ds.HasErrors() && lit != nil {
		return lit, true
	}
	var hint string
	for _, e := range ds {
		if e.Summary == "Unterminated string" {
			// lang.Parse reports it already: it ends the value.
			return nil, false
		}
		if e.Summary != "Invalid value" {
			// A malformed literal (a bad escape, a number out of range):
			// lang's diagnostic says it best.
			p.diags = append(p.diags, ds...)
			return nil, false
		}
		hint = e.Hint
	}
	d := p.errorf(v.Range(), "Invalid value", "Expected %s, not an expression.", what)
	d.Hint = hint
	return nil, false
}

// value converts a literal to a plain Go value, replacing var.NAME by the
// variable's value. Any other reference is an error.
func (p *planner) value(lit ast.Literal) (any, bool) {
	switch l := lit.(type) {
	case *ast.Ref:
		return p.varRef(l)
	case *ast.List:
		out := make([]any, len(l.Elems))
		ok := true
		for i, e := range l.Elems {
			v, eok := p.value(e)
			out[i], ok = v, ok && eok
		}
		return out, ok
	case *ast.Object:
		out := make(map[string]any, len(l.Items))
		ok := true
		for _, it := range l.Items {
			v, eok := p.value(it.Value)
			out[it.Key.Value], ok = v, ok && eok
		}
		return out, ok
	}
	v, ok := ast.Go(lit)
	return v, ok
}

// varRef resolves var.NAME; any other reference is an error.
func (p *planner) varRef(r *ast.Ref) (any, bool) {
	if len(r.Parts) != 2 || r.Parts[0] != "var" {
		d := p.errorf(r.Range(), "Unexpected reference",
			"%s is not a value here: write a string in quotes, or var.NAME for a variable.", r)
		if len(r.Parts) == 1 {
			d.Hint = fmt.Sprintf("Did you mean %q?", r.Parts[0])
		}
		return nil, false
	}
	name := r.Parts[1]
	v, ok := p.plan.Vars[name]
	if !ok {
		names := make([]string, 0, len(p.plan.Vars))
		for k := range p.plan.Vars {
			names = append(names, k)
		}
		sort.Strings(names)
		d := p.errorf(r.Range(), "Unknown variable",
			"No variable %q is declared. Declare it with a var %q block.", name, name)
		if s := suggest.Suggest(name, names); s != "" {
			d.Hint = fmt.Sprintf("Did you mean var.%s?", s)
		}
		return nil, false
	}
	if p.brokenVars[name] {
		// Why the variable has no value is already reported.
		return nil, false
	}
	return v, true
}
