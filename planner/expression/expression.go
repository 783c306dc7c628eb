package expression

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/flowrun/flowrun/lang/diag"
	"github.com/flowrun/flowrun/lang/suggest"
)

// Kind is what an expression must yield.
type Kind int

const (
	// Any accepts a value of any type.
	Any Kind = iota
	// Bool requires a boolean: the expression is a predicate.
	Bool
)

// String returns "any" or "bool".
func (k Kind) String() string {
	if k == Bool {
		return "bool"
	}
	return "any"
}

// Program is a compiled expression and where it was written.
type Program struct {
	Source string
	Range  diag.Range
	// Kind is what the program was compiled to yield.
	Kind    Kind
	program *vm.Program
	// normalized is true when every result is known to hold only record
	// types (int64, not int), so Run need not walk it.
	normalized bool
	// equals, when set, evaluates the condition without the VM.
	equals *fieldEquals
}

// String returns the expression's source text.
func (p *Program) String() string { return p.Source }

// Compile compiles src, an expression written at range at of a .flow file,
// into a Program. The record's fields are free variables; vars holds the
// value of every declared variable, which `var.NAME` is replaced by; want
// says what the expression must yield. The diagnostics cover syntax errors,
// type errors, unknown functions and unknown variables, each placed at its
// own position in the file.
func Compile(src string, at diag.Range, vars map[string]any, want Kind) (*Program, diag.Diagnostics) {
	loc := locator{src: src, at: at}
	if strings.TrimSpace(src) == "" {
		return nil, diag.Diagnostics{diag.Errorf(at, "Empty expression", "An expression is required here.")}
	}

	// Syntax first, so that a syntax error is reported as such.
	if _, err := parser.Parse(src); err != nil {
		d := loc.diagnostic(err, "Invalid expression syntax")
		if strings.Contains(err.Error(), `Operator("=")`) {
			d.Hint = "Expressions compare with == and build objects with {key: value}; a single = is not an operator."
		}
		return nil, diag.Diagnostics{d}
	}

	pv := &patcher{vars: vars, loc: &loc}
	opts := append(options(), expr.Patch(pv))
	prog, err := expr.Compile(src, opts...)
	pv.finish()
	if len(pv.diags) > 0 {
		// The names the patcher rejected are the cause of any later type
		// error; report only them.
		return nil, pv.diags
	}
	if err != nil {
		return nil, diag.Diagnostics{loc.diagnostic(err, "Invalid expression")}
	}
	if want == Bool {
		if b, ok := prog.Node().(*ast.BinaryNode); ok && arithmetic[b.Operator] {
			// With fields of unknown type the checker cannot tell, but
			// arithmetic never yields a boolean.
			return nil, diag.Diagnostics{{
				Severity: diag.Error,
				Summary:  "Condition is not a boolean",
				Detail:   fmt.Sprintf("The expression yields the result of %s, a number or a string; a condition must yield true or false.", b.Operator),
				Subject:  loc.rangeOf(0, len([]rune(src))),
			}}
		}
		if t := prog.Node().Type(); t != nil && t.Kind() != reflect.Bool && t.Kind() != reflect.Interface {
			return nil, diag.Diagnostics{{
				Severity: diag.Error,
				Summary:  "Condition is not a boolean",
				Detail:   fmt.Sprintf("The expression yields %s; a condition must yield true or false.", typeName(t)),
				Subject:  loc.rangeOf(0, len([]rune(src))),
			}}
		}
	}
	return &Program{
		Source: src, Range: at, Kind: want, program: prog,
		normalized: yieldsNormalized(prog.Node()),
		equals:     fieldEqualsOf(prog.Node()),
	}, nil
}

// arithmetic are the binary operators whose result is never a boolean.
var arithmetic = map[string]bool{"+": true, "-": true, "*": true, "/": true, "%": true, "**": true, "^": true}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map:
		return "an object"
	}
	return t.String()
}

// options are the expr options every expression is compiled with.
func options() []expr.Option {
	opts := []expr.Option{
		expr.Env(map[string]any{}),
		expr.AllowUndefinedVariables(),
	}
	for _, f := range functions {
		opts = append(opts, expr.Function(f.name, f.fn, f.types...))
	}
	return opts
}

// FunctionNames lists every function an expression may call: expr's
// builtins and flowrun's own, sorted.
func FunctionNames() []string {
	names := make([]string, 0, len(builtin.Builtins)+len(functions))
	for _, b := range builtin.Builtins {
		names = append(names, b.Name)
	}
	for _, f := range functions {
		names = append(names, f.name)
	}
	sort.Strings(names)
	return slices.Compact(names)
}

func isFunction(name string) bool {
	if _, ok := builtin.Index[name]; ok {
		return true
	}
	for _, f := range functions {
		if f.name == name {
			return true
		}
	}
	return false
}

// patcher replaces `var.NAME` by the variable's value and rejects calls of
// unknown functions and references to unknown variables.
type patcher struct {
	vars  map[string]any
	loc   *locator
	diags diag.Diagnostics
	// seen avoids reporting a node twice: expr may run a patcher more than
	// once over the same tree.
	seen map[file.Location]bool
	// bare lists the `var` identifiers seen, consumed those used as var.NAME.
	bare     []file.Location
	consumed map[file.Location]bool
	// fields maps the record reads the patcher made of identifiers named
	// like a function back to the name.
	fields map[*ast.MemberNode]string
}

func (p *patcher) report(l file.Location, d *diag.Diagnostic) {
	if p.seen == nil {
		p.seen = map[file.Location]bool{}
	}
	if p.seen[l] {
		return
	}
	p.seen[l] = true
	p.diags = append(p.diags, d)
}

// Visit implements ast.Visitor.
func (p *patcher) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.CallNode:
		p.visitCall(n)
	case *ast.MemberNode:
		id, ok := n.Node.(*ast.IdentifierNode)
		if !ok || id.Value != "var" {
			return
		}
		p.visitVar(node, n, id)
	case *ast.IdentifierNode:
		if n.Value == "var" {
			// Children are visited first: the member access that uses
			// this identifier, if any, is visited next and consumes it.
			p.bare = append(p.bare, n.Location())
			return
		}
		if isFunction(n.Value) {
			// A field named like a function (count, sum, env...): read it
			// from the record. Calls of builtins are BuiltinNodes; the
			// callee of a call of our own functions is restored by
			// visitCall, which comes after its callee.
			l := n.Location()
			env, prop := &ast.IdentifierNode{Value: "$env"}, &ast.StringNode{Value: n.Value}
			env.SetLocation(l)
			prop.SetLocation(l)
			field := &ast.MemberNode{Node: env, Property: prop}
			ast.Patch(node, field)
			if p.fields == nil {
				p.fields = map[*ast.MemberNode]string{}
			}
			p.fields[field] = n.Value
		}
	}
}

// finish reports every `var` that is not followed by .NAME.
func (p *patcher) finish() {
	for _, l := range p.bare {
		if p.consumed[l] {
			continue
		}
		p.report(l, &diag.Diagnostic{
			Severity: diag.Error,
			Summary:  "Incomplete variable reference",
			Detail:   "Write var.NAME to use the variable NAME.",
			Subject:  p.loc.rangeOf(l.From, l.To),
		})
	}
}

func (p *patcher) visitCall(n *ast.CallNode) {
	if m, ok := n.Callee.(*ast.MemberNode); ok {
		if name, ok := p.fields[m]; ok {
			ast.Patch(&n.Callee, &ast.IdentifierNode{Value: name})
		}
	}
	var name string
	var l file.Location
	switch c := n.Callee.(type) {
	case *ast.IdentifierNode:
		name, l = c.Value, c.Location()
		if isFunction(name) {
			return
		}
	case *ast.MemberNode:
		s, ok := c.Property.(*ast.StringNode)
		if !ok {
			return
		}
		if t := c.Node.Type(); t != nil && t.Kind() != reflect.Interface {
			// A method of a typed value, such as now().Unix(): the type
			// checker knows whether it exists.
			return
		}
		name = s.Value
		l = c.Location()
		d := &diag.Diagnostic{
			Severity: diag.Error,
			Summary:  "Unknown function",
			Detail:   fmt.Sprintf("Values have no methods: %q cannot be called on a field.", name),
			Subject:  p.loc.rangeOf(l.From, l.To),
		}
		if isFunction(name) {
			d.Hint = fmt.Sprintf("Write %s(value) instead.", name)
		}
		p.report(l, d)
		return
	default:
		return
	}
	d := &diag.Diagnostic{
		Severity: diag.Error,
		Summary:  "Unknown function",
		Detail:   fmt.Sprintf("There is no function named %q.", name),
		Subject:  p.loc.rangeOf(l.From, l.To),
	}
	if s := suggest.Suggest(name, FunctionNames()); s != "" {
		d.Hint = fmt.Sprintf("Did you mean %q?", s)
	}
	p.report(l, d)
}

func (p *patcher) visitVar(node *ast.Node, n *ast.MemberNode, id *ast.IdentifierNode) {
	if p.consumed == nil {
		p.consumed = map[file.Location]bool{}
	}
	p.consumed[id.Location()] = true
	from, to := id.Location().From, n.Location().To
	prop, ok := n.Property.(*ast.StringNode)
	if !ok {
		p.report(n.Location(), &diag.Diagnostic{
			Severity: diag.Error,
			Summary:  "Invalid variable reference",
			Detail:   "A variable is named by a constant: write var.NAME.",
			Subject:  p.loc.rangeOf(from, to),
		})
		ast.Patch(node, &ast.NilNode{})
		return
	}
	v, ok := p.vars[prop.Value]
	if !ok {
		d := &diag.Diagnostic{
			Severity: diag.Error,
			Summary:  "Unknown variable",
			Detail:   fmt.Sprintf("No variable %q is declared. Declare it with a var %q block.", prop.Value, prop.Value),
			Subject:  p.loc.rangeOf(from, to),
		}
		names := make([]string, 0, len(p.vars))
		for k := range p.vars {
			names = append(names, k)
		}
		sort.Strings(names)
		if s := suggest.Suggest(prop.Value, names); s != "" {
			d.Hint = fmt.Sprintf("Did you mean var.%s?", s)
		}
		p.report(n.Location(), d)
		ast.Patch(node, &ast.NilNode{})
		return
	}
	ast.Patch(node, constantNode(v))
	(*node).SetLocation(file.Location{From: from, To: to})
}

// constantNode returns the AST node of a variable's value.
func constantNode(v any) ast.Node {
	switch x := v.(type) {
	case nil:
		return &ast.NilNode{}
	case bool:
		return &ast.BoolNode{Value: x}
	case int64:
		return &ast.IntegerNode{Value: int(x)}
	case int:
		return &ast.IntegerNode{Value: x}
	case float64:
		return &ast.FloatNode{Value: x}
	case string:
		return &ast.StringNode{Value: x}
	}
	return &ast.ConstantNode{Value: v}
}

// locator maps expr's locations, which count runes from the start of the
// expression, onto positions in the .flow file.
type locator struct {
	src string
	at  diag.Range
}

// pos returns the file position of the rune at offset runeOff of the source.
func (l *locator) pos(runeOff int) diag.Pos {
	p := l.at.Start
	col := p.Column
	n := 0
	for i, r := range l.src {
		if n == runeOff {
			return diag.Pos{Line: p.Line, Column: col, Byte: l.at.Start.Byte + i}
		}
		n++
		if r == '\n' {
			p.Line++
			col = 1
		} else {
			col += len(string(r))
		}
	}
	return diag.Pos{Line: p.Line, Column: col, Byte: l.at.Start.Byte + len(l.src)}
}

// rangeOf returns the file range of the runes [from, to) of the source; an
// empty range is widened to one rune.
func (l *locator) rangeOf(from, to int) diag.Range {
	if to <= from {
		to = from + 1
	}
	total := len([]rune(l.src))
	from = min(max(from, 0), total)
	to = min(to, total)
	return diag.Range{Filename: l.at.Filename, Start: l.pos(from), End: l.pos(to)}
}

// diagnostic converts an expr error into a diagnostic at its position.
func (l *locator) diagnostic(err error, summary string) *diag.Diagnostic {
	d := &diag.Diagnostic{Severity: diag.Error, Summary: summary, Subject: l.at}
	var fe *file.Error
	if errors.As(err, &fe) {
		d.Detail = sentence(fe.Message)
		d.Subject = l.rangeOf(fe.From, fe.To)
		return d
	}
	d.Detail = sentence(err.Error())
	return d
}

// sentence capitalises msg and ends it with a period.
func sentence(msg string) string {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return msg
	}
	msg = strings.ToUpper(msg[:1]) + msg[1:]
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}
