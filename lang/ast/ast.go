package ast

import (
	"github.com/alecthomas/participle/v2/lexer"

	"github.com/flowrun/flowrun/lang/diag"
)

// Node is any syntax tree node.
type Node interface {
	// Range is the node's span in the .flow file.
	Range() diag.Range
}

// Item is a member of a Body: *Attribute, *Block or *Comment.
type Item interface {
	Node
	item()
}

// File is one parsed .flow file.
type File struct {
	Filename string
	// Src is the file's source text, as parsed.
	Src  []byte
	Body *Body
}

// Range spans the whole file.
func (f *File) Range() diag.Range {
	end := diag.Pos{Line: 1, Column: 1}
	for i := 0; i < len(f.Src); i++ {
		if f.Src[i] == '\n' {
			end.Line++
			end.Column = 1
		} else {
			end.Column++
		}
	}
	end.Byte = len(f.Src)
	return diag.Range{Filename: f.Filename, Start: diag.Pos{Line: 1, Column: 1}, End: end}
}

// Body is a list of attributes, blocks and comments: a whole file, or what
// is between a block's braces.
type Body struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Items  []Item `parser:"( @@ | Newline )*"`
}

// Range spans the body's items.
func (b *Body) Range() diag.Range { return rangeOf(b.Pos, b.EndPos) }

// Attributes returns the body's attributes in source order.
func (b *Body) Attributes() []*Attribute {
	if b == nil {
		return nil
	}
	var out []*Attribute
	for _, it := range b.Items {
		if a, ok := it.(*Attribute); ok {
			out = append(out, a)
		}
	}
	return out
}

// Attribute returns the first attribute called name, or nil.
func (b *Body) Attribute(name string) *Attribute {
	if b == nil {
		return nil
	}
	for _, it := range b.Items {
		if a, ok := it.(*Attribute); ok && a.Name == name {
			return a
		}
	}
	return nil
}

// Blocks returns the body's blocks in source order.
func (b *Body) Blocks() []*Block {
	if b == nil {
		return nil
	}
	var out []*Block
	for _, it := range b.Items {
		if bl, ok := it.(*Block); ok {
			out = append(out, bl)
		}
	}
	return out
}

// BlocksOfType returns the body's blocks whose type is typ, in source order.
func (b *Body) BlocksOfType(typ string) []*Block {
	var out []*Block
	for _, bl := range b.Blocks() {
		if bl.Type == typ {
			out = append(out, bl)
		}
	}
	return out
}

// Block is `TYPE LABEL* { BODY }`.
type Block struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Type   string   `parser:"@Ident"`
	Labels []*Label `parser:"@@* '{'"`
	Body   *Body    `parser:"@@ '}'"`
}

func (*Block) item() {}

// Range spans the block from its type to its closing brace.
func (b *Block) Range() diag.Range { return rangeOf(b.Pos, b.EndPos) }

// TypeRange spans the block's type name.
func (b *Block) TypeRange() diag.Range {
	end := b.Pos
	end.Offset += len(b.Type)
	end.Column += len(b.Type)
	return rangeOf(b.Pos, end)
}

// Label returns the decoded value of the i-th label, or "" when the block
// has fewer labels.
func (b *Block) Label(i int) string {
	if i < 0 || i >= len(b.Labels) {
		return ""
	}
	return b.Labels[i].Value
}

// Label is a block label: a quoted string or a bare identifier. It is also
// the key of an object item.
type Label struct {
	Pos    lexer.Position
	EndPos lexer.Position
	// Raw is the label as written, quotes and escapes included.
	Raw string `parser:"@(String | Ident)"`
	// Value is the label's text, unquoted and unescaped.
	Value string
	// Quoted is true when the label was written as a string.
	Quoted bool
}

// Range spans the label as written.
func (l *Label) Range() diag.Range { return rangeOf(l.Pos, l.EndPos) }

// Attribute is `NAME = VALUE`.
type Attribute struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Name   string `parser:"@Ident '='"`
	Value  *Value `parser:"@@"`
}

func (*Attribute) item() {}

// Range spans the attribute from its name to the end of its value.
func (a *Attribute) Range() diag.Range { return rangeOf(a.Pos, a.EndPos) }

// NameRange spans the attribute's name.
func (a *Attribute) NameRange() diag.Range {
	end := a.Pos
	end.Offset += len(a.Name)
	end.Column += len(a.Name)
	return rangeOf(a.Pos, end)
}

// Value is the raw source text of an attribute's value: a literal or an
// expression, decided by whoever reads it (see lang.ParseValue).
type Value struct {
	Pos    lexer.Position
	EndPos lexer.Position
	// Raw is the value exactly as written, without the whitespace around it.
	// It may span several lines (open brackets, heredocs).
	Raw string `parser:"@Value"`
}

// Range spans the value's text.
func (v *Value) Range() diag.Range { return rangeOf(v.Pos, v.EndPos) }

// Comment is a `#`, `//` or `/* */` comment.
type Comment struct {
	Pos    lexer.Position
	EndPos lexer.Position
	// Text is the comment as written, markers included.
	Text string `parser:"@Comment"`
	// Trailing is true when the comment follows other source text on the
	// line it starts on (an attribute, a block's braces), false when it
	// stands on its own line (blanks and ';' before it do not count).
	Trailing bool
}

func (*Comment) item() {}

// Range spans the comment, markers included.
func (c *Comment) Range() diag.Range { return rangeOf(c.Pos, c.EndPos) }

// rangeOf converts a pair of participle positions into a diag.Range.
func rangeOf(start, end lexer.Position) diag.Range {
	return diag.Range{Filename: start.Filename, Start: PosOf(start), End: PosOf(end)}
}

// PosOf converts a participle position into a diag.Pos. Positions produced
// by package lang count columns in bytes.
func PosOf(p lexer.Position) diag.Pos {
	return diag.Pos{Line: p.Line, Column: p.Column, Byte: p.Offset}
}
