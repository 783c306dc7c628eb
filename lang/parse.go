package lang

import (
	"fmt"
	"sort"
	"strings"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"

	"github.com/flowrun/flowrun/lang/ast"
	"github.com/flowrun/flowrun/lang/diag"
)

// topItem is the unit the file parser parses: one attribute, block or
// comment of the file's body. Parsing item by item lets Parse resume after
// a syntax error.
type topItem struct {
	Item ast.Item `parser:"@@"`
}

var fileParser = participle.MustBuild[topItem](
	participle.Lexer(fileLexer{}),
	participle.Union[ast.Item](&ast.Attribute{}, &ast.Block{}, &ast.Comment{}),
	participle.Elide("Whitespace", "Inline"),
	participle.UseLookahead(1),
)

// Parse parses the source of one .flow file. It always returns a file with
// whatever could be parsed, and reports every independent problem: lexical
// errors anywhere, and one syntax error per top-level block (after a syntax
// error, parsing resumes at the next line that starts a block at column 1).
func Parse(filename string, src []byte) (*ast.File, diag.Diagnostics) {
	toks, diags, runaway := scanFile(filename, src)
	p := &fileParse{src: src, toks: toks, runaway: runaway, lines: newLineIndex(lexer.Position{Filename: filename, Line: 1, Column: 1}, src)}
	p.diags = diags
	body := &ast.Body{Pos: toks[0].Pos, EndPos: toks[len(toks)-1].Pos}
	body.Items = p.items()
	f := &ast.File{Filename: filename, Src: src, Body: body}
	p.finish(f)
	sortDiagnostics(p.diags)
	return f, p.diags
}

// fileParse is the state of one Parse call.
type fileParse struct {
	src   []byte
	toks  []lexer.Token
	lines *lineIndex
	diags diag.Diagnostics
	// runaway is set when the lexer reported something left open up to the
	// end of the file.
	runaway bool
}

// items parses the top-level items of the file one at a time. Each item is
// parsed from a segment of the token stream that ends at the first newline
// at brace depth 0, so the work stays linear in the size of the file.
func (p *fileParse) items() []ast.Item {
	var items []ast.Item
	i := 0
	for {
		for p.toks[i].Type == tokWhitespace || p.toks[i].Type == tokNewline || p.toks[i].Type == tokInline {
			i++
		}
		if p.toks[i].EOF() {
			return items
		}
		end, closed := p.segmentEnd(i)
		if !closed {
			// A brace is open up to the end of the file. When a column-1
			// block header follows, the item most likely ends before it.
			if r := p.nextBlockStart(i, p.toks[i].Pos.Line); r >= 0 {
				end = r
			}
		}
		pl, err := lexer.Upgrade(&sliceLexer{toks: p.toks[i:end], eof: lexer.EOFToken(p.toks[end].Pos)}, tokWhitespace, tokInline)
		if err != nil {
			// sliceLexer never fails.
			p.diags = append(p.diags, diag.Errorf(p.tokRange(p.toks[i]), "Internal error", "%v", err))
			return items
		}
		top, err := fileParser.ParseFromLexer(pl, participle.AllowTrailing(true))
		if err == nil {
			items = append(items, top.Item)
			i += int(pl.RawCursor())
			continue
		}
		next, ok := p.recover(i, end, err)
		if !ok {
			return items
		}
		i = next
	}
}

// segmentEnd returns the end (exclusive) of the segment of tokens that
// holds the item starting at start: up to and including the first newline
// at brace depth 0, or a '}' that closes more than was opened, or else up
// to EOF. It also reports whether the braces opened from start are closed
// by then.
func (p *fileParse) segmentEnd(start int) (int, bool) {
	depth := 0
	for k := start; k < len(p.toks)-1; k++ {
		t := p.toks[k]
		switch {
		case t.Type == tokPunct && t.Value == "{":
			depth++
		case t.Type == tokPunct && t.Value == "}":
			depth--
			if depth < 0 {
				return k + 1, true
			}
		case t.Type == tokNewline && depth == 0:
			return k + 1, true
		}
	}
	return len(p.toks) - 1, depth == 0
}

// recover reports the syntax error err met while parsing the item in
// tokens [start, end), and returns the token where parsing resumes: the
// next line that starts a block at column 1.
func (p *fileParse) recover(start, end int, err error) (int, bool) {
	tok := p.errorToken(err)
	if tok.EOF() {
		// The segment ended with a brace still open.
		if end < len(p.toks)-1 {
			p.diags = append(p.diags, p.missingBraces(start, end)...)
			return end, true
		}
		if !p.runaway {
			p.diags = append(p.diags, p.missingBraces(start, end)...)
		}
		return end, false
	}
	p.diags = append(p.diags, syntaxDiagnostic(err, p.lines, p.explainFile(tok)))
	next := p.nextBlockStart(start, tok.Pos.Line)
	return next, next >= 0
}

// tokenAt returns the index of the first non-whitespace token that starts
// at or after offset off.
func (p *fileParse) tokenAt(off int) int {
	i := sort.Search(len(p.toks), func(k int) bool { return p.toks[k].Pos.Offset >= off })
	for i < len(p.toks)-1 && isSpace(p.toks[i]) {
		i++
	}
	if i >= len(p.toks) {
		i = len(p.toks) - 1
	}
	return i
}

// nextBlockStart returns the index of the first token after from that is
// on a line after line and starts, at column 1, a block header; or -1.
func (p *fileParse) nextBlockStart(from, line int) int {
	for k := from + 1; k < len(p.toks)-1; k++ {
		t := p.toks[k]
		if t.Type == tokIdent && t.Pos.Column == 1 && t.Pos.Line > line && blockStartsAt(p.src, t.Pos.Offset) {
			return k
		}
	}
	return -1
}

// openBrace is a `{` of a block header while looking for missing braces.
type openBrace struct {
	tok    int // index of the '{'
	header int // index of the block type
	indent int // column of the first token on the header's line
}

// missingBraces explains an item, spanning tokens [start, end), whose braces
// do not balance. Braces are paired by indentation where a '}' starts its
// line, so the block reported is the one that lacks its '}', not the
// outermost one.
func (p *fileParse) missingBraces(start, end int) diag.Diagnostics {
	var stack []openBrace
	var unclosed []openBrace
	lineFirst := start
	for k := start; k < end; k++ {
		t := p.toks[k]
		if k == start || p.toks[k-1].Type == tokNewline && p.toks[k-1].Value == "\n" {
			lineFirst = k
		}
		if lineFirst == k && isSpace(t) {
			lineFirst = k + 1
		}
		if t.Type != tokPunct {
			continue
		}
		switch t.Value {
		case "{":
			h := k - 1
			for h > start && p.toks[h].Type != tokNewline && !(p.toks[h].Type == tokPunct) {
				h--
			}
			if p.toks[h].Type == tokNewline || p.toks[h].Type == tokPunct {
				h++
			}
			for isSpace(p.toks[h]) && h < k {
				h++
			}
			stack = append(stack, openBrace{tok: k, header: h, indent: p.toks[lineFirst].Pos.Column})
		case "}":
			if len(stack) == 0 {
				continue
			}
			if lineFirst == k {
				j := len(stack) - 1
				for j >= 0 && stack[j].indent != t.Pos.Column {
					j--
				}
				if j >= 0 {
					unclosed = append(unclosed, stack[j+1:]...)
					stack = stack[:j]
					continue
				}
			}
			stack = stack[:len(stack)-1]
		}
	}
	unclosed = append(unclosed, stack...)
	var ds diag.Diagnostics
	for _, o := range unclosed {
		header := p.headerText(o.header, o.tok)
		r := p.tokRange(p.toks[o.tok])
		r.Start = posOf(p.toks[o.header].Pos)
		d := diag.Errorf(r, "Missing closing brace",
			"The block %s opened here has no closing '}'.", header)
		d.Hint = "Add the missing '}' where the block ends."
		ds = append(ds, d)
	}
	if len(ds) == 0 {
		d := diag.Errorf(p.tokRange(p.toks[end]), "Unexpected end of file",
			"The file ends before this item is complete.")
		ds = append(ds, d)
	}
	return ds
}

// headerText renders the block header made of tokens [from, to) for a
// message: its type and labels.
func (p *fileParse) headerText(from, to int) string {
	var parts []string
	for k := from; k < to; k++ {
		if t := p.toks[k]; t.Type == tokIdent || t.Type == tokString {
			parts = append(parts, t.Value)
		}
	}
	return strings.Join(parts, " ")
}

// tokRange is the range a token covers.
func (p *fileParse) tokRange(t lexer.Token) diag.Range {
	return p.lines.rangeAt(t.Pos.Offset, t.Pos.Offset+len(t.Value))
}

// finish decodes labels, marks trailing comments and reports attributes
// set twice in one body.
func (p *fileParse) finish(f *ast.File) {
	ast.Walk(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.Label:
			p.decodeLabel(n)
		case *ast.Comment:
			ls := n.Pos.Offset
			for ls > 0 && p.src[ls-1] != '\n' {
				ls--
			}
			prefix := strings.TrimPrefix(string(p.src[ls:n.Pos.Offset]), "\xEF\xBB\xBF")
			n.Trailing = strings.Trim(prefix, " \t\r;") != ""
		case *ast.Body:
			p.checkDuplicates(n)
		}
		return true
	})
}

func (p *fileParse) decodeLabel(l *ast.Label) {
	if !strings.HasPrefix(l.Raw, `"`) {
		l.Value = l.Raw
		return
	}
	l.Quoted = true
	v, ds := unquote(l.Raw, p.lines, l.Pos.Offset)
	l.Value = v
	p.diags = append(p.diags, ds...)
}

func (p *fileParse) checkDuplicates(b *ast.Body) {
	seen := make(map[string]*ast.Attribute)
	for _, a := range b.Attributes() {
		if first, ok := seen[a.Name]; ok {
			d := diag.Errorf(a.NameRange(), "Duplicate attribute",
				"The attribute %q was already set at line %d. Each attribute may be set once per block.", a.Name, first.Pos.Line)
			d.Hint = "Remove one of them."
			p.diags = append(p.diags, d)
			continue
		}
		seen[a.Name] = a
	}
}

// sortDiagnostics orders diagnostics by where they start in their file.
func sortDiagnostics(ds diag.Diagnostics) {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i].Subject, ds[j].Subject
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		return a.Start.Byte < b.Start.Byte
	})
}

// describe renders a token for a message.
func describe(t lexer.Token) string {
	switch {
	case t.EOF():
		return "the end of the file"
	case t.Type == tokNewline && t.Value == "\n":
		return "the end of the line"
	}
	return fmt.Sprintf("%q", t.Value)
}
