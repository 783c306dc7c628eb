package format

import (
	"bytes"
	"strings"

	"github.com/flowrun/flowrun/lang/ast"
)

// indentUnit is one level of indentation.
const indentUnit = "  "

// Format prints f in the canonical layout:
//
//   - two spaces of indentation per block level;
//   - `=` aligned among consecutive single-line attributes of a body (a
//     blank line, a block, a standalone comment or a multi-line value ends
//     the run);
//   - exactly one blank line between top-level blocks, at most one blank
//     line elsewhere, none at the start or end of a block;
//   - comments kept, on their own line or trailing the line they were on;
//   - a block written on one line with a single attribute stays on one
//     line, an empty block is written {};
//   - attribute values kept as written, except that trailing whitespace is
//     trimmed and continuation lines are indented one level per line that
//     opened the brackets still open; heredoc bodies, multi-line raw strings
//     and block comments inside values are kept byte for byte;
//   - /* */ comments inside a block header or around `=` kept in place.
//
// Format expects a file that parsed without errors; it prints only what the
// tree holds. Formatting its output again gives the same bytes.
func Format(f *ast.File) []byte {
	p := &printer{src: f.Src}
	if f.Body != nil {
		p.items(f.Body.Items, 0, true)
	}
	if p.buf.Len() > 0 {
		p.buf.WriteByte('\n')
	}
	return p.buf.Bytes()
}

// printer accumulates the formatted text of one file.
type printer struct {
	src []byte // the source, for the indentation of comments
	buf bytes.Buffer
}

// items prints the items of a body, each on its own line at depth.
func (p *printer) items(items []ast.Item, depth int, top bool) {
	widths := alignment(items)
	var prev ast.Item
	prevEnd := 0
	for i, it := range items {
		if c, ok := it.(*ast.Comment); ok && c.Trailing && prev != nil {
			p.buf.WriteByte(' ')
			p.comment(c)
			prevEnd = c.EndPos.Line
			continue
		}
		if prev != nil {
			p.buf.WriteByte('\n')
			if blankBetween(prev, it, prevEnd, top) {
				p.buf.WriteByte('\n')
			}
		}
		p.indent(depth)
		switch it := it.(type) {
		case *ast.Attribute:
			p.attribute(it, widths[i], depth)
		case *ast.Block:
			p.block(it, depth)
		case *ast.Comment:
			p.comment(it)
		}
		prev = it
		prevEnd = it.Range().End.Line
	}
}

// blankBetween decides whether a blank line separates cur from prev, whose
// last line (trailing comment included) in the source is prevEnd.
func blankBetween(prev, cur ast.Item, prevEnd int, top bool) bool {
	sourceBlank := cur.Range().Start.Line-prevEnd > 1
	if !top {
		return sourceBlank
	}
	if _, ok := prev.(*ast.Block); ok {
		return true
	}
	if _, ok := cur.(*ast.Block); ok {
		// A comment right above a block belongs to it.
		if _, ok := prev.(*ast.Comment); ok && !sourceBlank {
			return false
		}
		return true
	}
	return sourceBlank
}

// alignment returns, for each attribute among items, the width its name is
// padded to so that the `=` of a run of attributes line up.
func alignment(items []ast.Item) []int {
	widths := make([]int, len(items))
	var run []int
	width, lastEnd := 0, 0
	flush := func() {
		for _, k := range run {
			widths[k] = width
		}
		run, width = run[:0], 0
	}
	for i, it := range items {
		switch it := it.(type) {
		case *ast.Attribute:
			multi := strings.Contains(it.Value.Raw, "\n")
			if len(run) > 0 && (it.Pos.Line-lastEnd > 1 || multi) {
				flush()
			}
			lastEnd = it.EndPos.Line
			if multi {
				widths[i] = len(it.Name)
				continue
			}
			run = append(run, i)
			width = max(width, len(it.Name))
		case *ast.Comment:
			if it.Trailing {
				lastEnd = it.EndPos.Line
				continue
			}
			flush()
		default:
			flush()
		}
	}
	flush()
	return widths
}

func (p *printer) indent(depth int) {
	for range depth {
		p.buf.WriteString(indentUnit)
	}
}

func (p *printer) attribute(a *ast.Attribute, width, depth int) {
	p.buf.WriteString(a.Name)
	for range width - len(a.Name) {
		p.buf.WriteByte(' ')
	}
	// Comments between the name and the value stay where they were.
	gap := inlineComments(p.src, a.Pos.Offset+len(a.Name), a.Value.Pos.Offset)
	for _, c := range gap.before {
		p.buf.WriteString(" " + c)
	}
	p.buf.WriteString(" =")
	for _, c := range gap.after {
		p.buf.WriteString(" " + c)
	}
	p.buf.WriteByte(' ')
	p.value(a.Value.Raw, depth)
}

// value writes a raw value. Its first line continues the attribute's line;
// each following line is indented by bracket depth (see valueLayout),
// except verbatim lines, written byte for byte.
func (p *printer) value(raw string, depth int) {
	layout := valueLayout(raw)
	for i, line := range strings.Split(raw, "\n") {
		if i == 0 {
			p.buf.WriteString(strings.TrimRight(line, " \t\r"))
			continue
		}
		p.buf.WriteByte('\n')
		if layout[i].verbatim {
			p.buf.WriteString(line)
			continue
		}
		line = strings.Trim(line, " \t\r")
		if line == "" {
			continue
		}
		p.indent(depth + layout[i].level)
		p.buf.WriteString(line)
	}
}

func (p *printer) block(b *ast.Block, depth int) {
	p.buf.WriteString(b.Type)
	end := b.Pos.Offset + len(b.Type)
	for _, l := range b.Labels {
		for _, c := range inlineComments(p.src, end, l.Pos.Offset).before {
			p.buf.WriteString(" " + c)
		}
		p.buf.WriteByte(' ')
		p.buf.WriteString(l.Raw)
		end = l.EndPos.Offset
	}
	for _, c := range inlineComments(p.src, end, openBrace(p.src, end)).before {
		p.buf.WriteString(" " + c)
	}
	var items []ast.Item
	if b.Body != nil {
		items = b.Body.Items
	}
	if len(items) == 0 {
		p.buf.WriteString(" {}")
		return
	}
	if a, ok := items[0].(*ast.Attribute); ok && len(items) == 1 && b.Pos.Line == b.EndPos.Line && !strings.Contains(a.Value.Raw, "\n") {
		p.buf.WriteString(" { ")
		p.attribute(a, len(a.Name), depth)
		p.buf.WriteString(" }")
		return
	}
	p.buf.WriteString(" {")
	if c, ok := items[0].(*ast.Comment); ok && c.Trailing {
		// It trails the header's line, which is at depth.
		p.buf.WriteByte(' ')
		p.comment(c)
		items = items[1:]
	}
	if len(items) > 0 {
		p.buf.WriteByte('\n')
		p.items(items, depth+1, false)
	}
	p.buf.WriteByte('\n')
	p.indent(depth)
	p.buf.WriteByte('}')
}

// comment writes a comment. The lines of a block comment after the first
// keep their indentation relative to the line the comment starts on, which
// moves from its indentation in the source to its indentation in the
// output.
func (p *printer) comment(c *ast.Comment) {
	lines := strings.Split(c.Text, "\n")
	shift := p.outputIndent() - p.lineIndent(c.Pos.Offset)
	p.buf.WriteString(strings.TrimRight(lines[0], " \t\r"))
	for _, line := range lines[1:] {
		p.buf.WriteByte('\n')
		rest := strings.TrimLeft(line, " \t")
		rest = strings.TrimRight(rest, " \t\r")
		if rest == "" {
			continue
		}
		for range max(0, width(line[:len(line)-len(strings.TrimLeft(line, " \t"))])+shift) {
			p.buf.WriteByte(' ')
		}
		p.buf.WriteString(rest)
	}
}

// outputIndent returns the width of the indentation of the output line
// being written.
func (p *printer) outputIndent() int {
	out := p.buf.Bytes()
	line := out[bytes.LastIndexByte(out, '\n')+1:]
	return len(line) - len(bytes.TrimLeft(line, " "))
}

// lineIndent returns the width of the indentation of the source line that
// holds offset off.
func (p *printer) lineIndent(off int) int {
	ls := off
	for ls > 0 && p.src[ls-1] != '\n' {
		ls--
	}
	le := ls
	for le < len(p.src) && (p.src[le] == ' ' || p.src[le] == '\t') {
		le++
	}
	return width(string(p.src[ls:le]))
}

// width measures leading whitespace, counting a tab as one indentation
// level.
func width(ws string) int {
	n := 0
	for _, c := range ws {
		if c == '\t' {
			n += len(indentUnit)
		} else {
			n++
		}
	}
	return n
}

// gapComments holds the /* */ comments found between two parts of a
// statement, before and after its '=' if it has one.
type gapComments struct {
	before, after []string
}

// inlineComments collects the /* */ comments in src[from:to], which holds
// only blanks, comments and possibly an '='.
func inlineComments(src []byte, from, to int) gapComments {
	var g gapComments
	seenEquals := false
	for i := from; i < to; i++ {
		switch {
		case src[i] == '=':
			seenEquals = true
		case src[i] == '/' && i+1 < to && src[i+1] == '*':
			end := bytes.Index(src[i+2:to], []byte("*/"))
			if end < 0 {
				return g
			}
			c := string(src[i : i+2+end+2])
			if seenEquals {
				g.after = append(g.after, c)
			} else {
				g.before = append(g.before, c)
			}
			i += 2 + end + 1
		}
	}
	return g
}

// openBrace returns the offset of the '{' that opens a block whose header
// ends at from, skipping blanks and /* */ comments.
func openBrace(src []byte, from int) int {
	for i := from; i < len(src); i++ {
		switch {
		case src[i] == '{':
			return i
		case src[i] == '/' && i+1 < len(src) && src[i+1] == '*':
			end := bytes.Index(src[i+2:], []byte("*/"))
			if end < 0 {
				return len(src)
			}
			i += 2 + end + 1
		}
	}
	return len(src)
}
