package ast

import (
	"github.com/alecthomas/participle/v2/lexer"

	"github.com/flowrun/flowrun/lang/diag"
)

// Literal is a decoded value: *String, *Number, *Bool, *Null, *List,
// *Object or *Ref.
type Literal interface {
	Node
	literal()
}

// String is a quoted string or a heredoc.
type String struct {
	Pos    lexer.Position
	EndPos lexer.Position
	// Raw is the string as written, quotes or heredoc markers included.
	Raw string `parser:"@(String | Heredoc)"`
	// Value is the decoded text.
	Value string
}

// Number is an integer or a floating-point number.
type Number struct {
	Pos    lexer.Position
	EndPos lexer.Position
	// Raw is the number as written.
	Raw string `parser:"@Number"`
	// IsInt is true when the number was written as an integer; Int holds it.
	// Otherwise Float holds it. Float is set for integers too.
	IsInt bool
	Int   int64
	Float float64
}

// Bool is true or false.
type Bool struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Value  bool `parser:"@'true' | 'false'"`
}

// Null is null.
type Null struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Raw    string `parser:"@'null'"`
}

// List is `[v, v, ...]`.
type List struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Elems  []Literal `parser:"'[' Newline? ( @@ Newline? ( ',' Newline? @@ Newline? )* ( ',' Newline? )? )? ']'"`
}

// Object is `{ key = v, key2 = v }`; keys are identifiers or strings,
// followed by `=` or `:`, items separated by commas or newlines.
type Object struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Items  []*ObjectItem `parser:"'{' Newline? ( @@ ( ( ',' Newline? | Newline ) @@ )* ( ',' Newline? | Newline )? )? '}'"`
}

// Get returns the value of the last item whose key is key, or nil.
func (o *Object) Get(key string) Literal {
	var v Literal
	for _, it := range o.Items {
		if it.Key.Value == key {
			v = it.Value
		}
	}
	return v
}

// ObjectItem is one `key = value` of an object.
type ObjectItem struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Key    *Label  `parser:"@@ ( '=' | ':' )"`
	Value  Literal `parser:"@@"`
}

// Range spans the item from its key to the end of its value.
func (i *ObjectItem) Range() diag.Range { return rangeOf(i.Pos, i.EndPos) }

// Ref is a reference: `name` or `name.name...` (for example `logs` or
// `var.rate`).
type Ref struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Parts  []string `parser:"@Ident ( '.' @Ident )*"`
}

// String returns the reference as written: its parts joined with dots.
func (r *Ref) String() string {
	s := ""
	for i, p := range r.Parts {
		if i > 0 {
			s += "."
		}
		s += p
	}
	return s
}

func (*String) literal() {}
func (*Number) literal() {}
func (*Bool) literal()   {}
func (*Null) literal()   {}
func (*List) literal()   {}
func (*Object) literal() {}
func (*Ref) literal()    {}

// Range spans the string as written.
func (s *String) Range() diag.Range { return rangeOf(s.Pos, s.EndPos) }

// Range spans the number as written.
func (n *Number) Range() diag.Range { return rangeOf(n.Pos, n.EndPos) }

// Range spans the keyword.
func (b *Bool) Range() diag.Range { return rangeOf(b.Pos, b.EndPos) }

// Range spans the keyword.
func (n *Null) Range() diag.Range { return rangeOf(n.Pos, n.EndPos) }

// Range spans the list, brackets included.
func (l *List) Range() diag.Range { return rangeOf(l.Pos, l.EndPos) }

// Range spans the object, braces included.
func (o *Object) Range() diag.Range { return rangeOf(o.Pos, o.EndPos) }

// Range spans the reference.
func (r *Ref) Range() diag.Range { return rangeOf(r.Pos, r.EndPos) }

// Go converts a literal into a plain Go value: string, int64, float64,
// bool, nil, []any or map[string]any. References have no Go value: ok is
// false when lit is or contains a *Ref.
func Go(lit Literal) (v any, ok bool) {
	switch l := lit.(type) {
	case *String:
		return l.Value, true
	case *Number:
		if l.IsInt {
			return l.Int, true
		}
		return l.Float, true
	case *Bool:
		return l.Value, true
	case *Null:
		return nil, true
	case *List:
		out := make([]any, len(l.Elems))
		for i, e := range l.Elems {
			ev, ok := Go(e)
			if !ok {
				return nil, false
			}
			out[i] = ev
		}
		return out, true
	case *Object:
		out := make(map[string]any, len(l.Items))
		for _, it := range l.Items {
			iv, ok := Go(it.Value)
			if !ok {
				return nil, false
			}
			out[it.Key.Value] = iv
		}
		return out, true
	}
	return nil, false
}
