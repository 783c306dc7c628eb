package lang

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"unicode/utf8"

	"github.com/alecthomas/participle/v2/lexer"

	"github.com/flowrun/flowrun/lang/diag"
)

// Token types of the file lexer.
const (
	tokWhitespace lexer.TokenType = iota + 1 // spaces and tabs; elided
	tokNewline                               // "\n" or ";"
	tokIdent                                 // block type, attribute name, bare label
	tokString                                // quoted label
	tokValue                                 // raw text of an attribute value
	tokComment                               // #, // or /* */ comment
	tokPunct                                 // { } =
	tokInvalid                               // a character the syntax has no use for
	tokInline                                // /* */ inside a block header or before a value; elided
)

var fileSymbols = map[string]lexer.TokenType{
	"EOF":        lexer.EOF,
	"Whitespace": tokWhitespace,
	"Newline":    tokNewline,
	"Ident":      tokIdent,
	"String":     tokString,
	"Value":      tokValue,
	"Comment":    tokComment,
	"Punct":      tokPunct,
	"Invalid":    tokInvalid,
	"Inline":     tokInline,
}

// fileLexer is the participle lexer definition of the file structure. It is
// context-sensitive: after `=` it captures the attribute's raw value.
type fileLexer struct{}

// Symbols implements lexer.Definition.
func (fileLexer) Symbols() map[string]lexer.TokenType { return fileSymbols }

// Lex implements lexer.Definition. Lexical problems are not errors here:
// they are reported as diagnostics by scanFile.
func (fileLexer) Lex(filename string, r io.Reader) (lexer.Lexer, error) {
	src, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", filename, err)
	}
	toks, _, _ := scanFile(filename, src)
	return &sliceLexer{toks: toks}, nil
}

// sliceLexer hands out tokens that were scanned beforehand, then eof. When
// eof is not set the slice must end with its own EOF token.
type sliceLexer struct {
	toks []lexer.Token
	eof  lexer.Token
	i    int
}

// Next implements lexer.Lexer.
func (l *sliceLexer) Next() (lexer.Token, error) {
	if l.i < len(l.toks) {
		t := l.toks[l.i]
		l.i++
		return t, nil
	}
	if l.eof.Type == 0 {
		return l.toks[len(l.toks)-1], nil
	}
	return l.eof, nil
}

// lineIndex maps byte offsets of a source to positions.
type lineIndex struct {
	filename string
	// starts holds the offset at which each line starts.
	starts []int
	// base is the position of offset 0: a sub-source (a value) starts
	// inside a file.
	base lexer.Position
}

func newLineIndex(base lexer.Position, src []byte) *lineIndex {
	li := &lineIndex{filename: base.Filename, starts: []int{0}, base: base}
	for i, c := range src {
		if c == '\n' {
			li.starts = append(li.starts, i+1)
		}
	}
	return li
}

// at returns the position of byte offset off.
func (li *lineIndex) at(off int) lexer.Position {
	line := sort.Search(len(li.starts), func(k int) bool { return li.starts[k] > off }) - 1
	p := lexer.Position{Filename: li.filename, Offset: li.base.Offset + off, Line: li.base.Line + line}
	if line == 0 {
		p.Column = li.base.Column + off
	} else {
		p.Column = off - li.starts[line] + 1
	}
	return p
}

// rangeAt returns the range of src[start:end].
func (li *lineIndex) rangeAt(start, end int) diag.Range {
	return diag.Range{Filename: li.filename, Start: posOf(li.at(start)), End: posOf(li.at(end))}
}

func posOf(p lexer.Position) diag.Pos {
	return diag.Pos{Line: p.Line, Column: p.Column, Byte: p.Offset}
}

// fileScanner turns the source of a file into tokens.
type fileScanner struct {
	cur   *lineIndex
	src   []byte
	i     int
	toks  []lexer.Token
	diags diag.Diagnostics
	// runaway is set when something left open (a comment, heredoc, raw
	// string or bracket) ran to the end of the file: braces still open at
	// the end are then a consequence, not a separate error.
	runaway bool
}

// scanFile scans src into tokens ending with EOF. It never fails: every
// lexical problem becomes a diagnostic and scanning goes on.
func scanFile(filename string, src []byte) ([]lexer.Token, diag.Diagnostics, bool) {
	s := &fileScanner{
		cur:  newLineIndex(lexer.Position{Filename: filename, Line: 1, Column: 1}, src),
		toks: make([]lexer.Token, 0, len(src)/4+1),
		src:  src,
	}
	s.run()
	return s.toks, s.diags, s.runaway
}

func (s *fileScanner) emit(typ lexer.TokenType, start, end int) {
	s.toks = append(s.toks, lexer.Token{Type: typ, Value: string(s.src[start:end]), Pos: s.cur.at(start)})
}

func (s *fileScanner) errorf(start, end int, summary, hint, detailFormat string, args ...any) {
	d := diag.Errorf(s.cur.rangeAt(start, end), summary, detailFormat, args...)
	d.Hint = hint
	s.diags = append(s.diags, d)
}

func (s *fileScanner) run() {
	src := s.src
	if bytes.HasPrefix(src, []byte("\xEF\xBB\xBF")) {
		// A UTF-8 byte order mark is blank space.
		s.i = 3
		s.emit(tokWhitespace, 0, 3)
	}
	for s.i < len(src) {
		start := s.i
		c := src[s.i]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			s.i = skipSpace(src, s.i)
			s.emit(tokWhitespace, start, s.i)
		case c == '\n' || c == ';':
			s.i++
			s.emit(tokNewline, start, s.i)
		case c == '#' || c == '/' && s.peek(1) == '/':
			s.i = lineEnd(src, s.i)
			s.emitComment(start, s.i)
		case c == '/' && s.peek(1) == '*':
			s.i = s.blockComment(s.i)
			if s.inHeader(start) {
				s.emit(tokInline, start, s.i)
			} else {
				s.emitComment(start, s.i)
			}
		case c == '{' || c == '}':
			s.i++
			s.emit(tokPunct, start, s.i)
		case c == '=':
			s.i++
			s.emit(tokPunct, start, s.i)
			s.value()
		case c == '"':
			s.i = s.quoted(s.i)
			s.emit(tokString, start, s.i)
		case isIdentStart(c):
			s.i = identEnd(src, s.i)
			s.emit(tokIdent, start, s.i)
		default:
			_, size := utf8.DecodeRune(src[s.i:])
			s.i += size
			s.emit(tokInvalid, start, s.i)
		}
	}
	s.toks = append(s.toks, lexer.EOFToken(s.cur.at(len(src))))
}

func (s *fileScanner) peek(n int) byte {
	if s.i+n < len(s.src) {
		return s.src[s.i+n]
	}
	return 0
}

// inHeader reports whether a /* */ comment at start sits inside a block
// header or between an attribute's name and its '=': after a name or label
// on the same line and before more of the statement.
func (s *fileScanner) inHeader(start int) bool {
	k := len(s.toks) - 1
	for k >= 0 && s.toks[k].Type == tokWhitespace {
		k--
	}
	if k < 0 || s.toks[k].Type != tokIdent && s.toks[k].Type != tokString && s.toks[k].Type != tokInline {
		return false
	}
	if bytes.IndexByte(s.src[s.toks[k].Pos.Offset:start], '\n') >= 0 {
		return false
	}
	j := skipSpace(s.src, s.i)
	return j < len(s.src) && (s.src[j] == '"' || s.src[j] == '{' || s.src[j] == '=' || isIdentStart(s.src[j]) ||
		s.src[j] == '/' && j+1 < len(s.src) && s.src[j+1] == '*')
}

// emitComment emits a comment token without its trailing whitespace, then
// that whitespace.
func (s *fileScanner) emitComment(start, end int) {
	text := trimRightSpace(s.src, start, end)
	s.emit(tokComment, start, text)
	if text < end {
		s.emit(tokWhitespace, text, end)
	}
}

// blockComment scans a /* */ comment starting at i and returns its end.
func (s *fileScanner) blockComment(i int) int {
	if j := bytes.Index(s.src[i+2:], []byte("*/")); j >= 0 {
		return i + 2 + j + 2
	}
	s.runaway = true
	s.errorf(i, i+2, "Unterminated comment", "Close it with */.",
		"This /* comment is never closed; it runs to the end of the file.")
	return len(s.src)
}

// quoted scans a string that starts with the quote at i and ends on the same
// line, returning its end. An unterminated string ends before the newline.
func (s *fileScanner) quoted(i int) int {
	q := s.src[i]
	j := i + 1
	for j < len(s.src) {
		switch s.src[j] {
		case '\\':
			j += 2
			continue
		case '\n':
			s.unterminatedString(i, j)
			return trimRightSpace(s.src, i, j)
		case q:
			return j + 1
		}
		j++
	}
	if j > len(s.src) {
		j = len(s.src)
	}
	s.unterminatedString(i, j)
	return j
}

func (s *fileScanner) unterminatedString(start, end int) {
	s.errorf(start, start+1, "Unterminated string", "Add the closing quote.",
		"This string has no closing %c before the end of the line. Strings cannot span lines; use a heredoc (<<EOT) for text on several lines.", s.src[start])
}

// backquoted scans an expr-lang raw string, which may span lines.
func (s *fileScanner) backquoted(i int) int {
	if j := bytes.IndexByte(s.src[i+1:], '`'); j >= 0 {
		return i + 1 + j + 1
	}
	s.runaway = true
	s.errorf(i, i+1, "Unterminated string", "Add the closing `.",
		"This raw string has no closing ` before the end of the file.")
	return len(s.src)
}

// heredoc scans a heredoc whose `<<` is at i, if one starts there: `<<ID`
// or `<<-ID` at the end of a line, then lines up to one that holds only ID.
// It returns the end of the closing marker, or i when there is no heredoc.
func (s *fileScanner) heredoc(i int) int {
	id, bodyStart, ok := heredocHeader(s.src, i)
	if !ok {
		j := i + 2
		if j < len(s.src) && s.src[j] == '-' {
			j++
		}
		if j < len(s.src) && isIdentStart(s.src[j]) {
			k := identEnd(s.src, j)
			s.errorf(i, k, "Invalid heredoc", "Put the text on the lines after "+string(s.src[i:k])+".",
				"A heredoc starts with %s at the end of a line; its text follows on the next lines, up to a line holding only %s.",
				s.src[i:k], s.src[j:k])
		}
		return i
	}
	if end, ok := heredocEnd(s.src, bodyStart, id); ok {
		return end
	}
	s.runaway = true
	s.errorf(i, bodyStart, "Unterminated heredoc", fmt.Sprintf("Add a line holding only %s.", id),
		"This heredoc has no closing %s line before the end of the file.", id)
	return len(s.src)
}

// bracket is an open bracket inside a value.
type bracket struct {
	ch  byte
	off int
}

var closerOf = map[byte]byte{'(': ')', '[': ']', '{': '}'}

// value scans the raw text of an attribute value after `=`: to the end of
// the line, unless a bracket, string or heredoc is still open. At bracket
// depth 0 `;`, `}` and a comment also end it.
func (s *fileScanner) value() {
	src := s.src
	for {
		if j := skipSpace(src, s.i); j > s.i {
			s.emit(tokWhitespace, s.i, j)
			s.i = j
		}
		// A /* */ comment between '=' and the value is kept aside.
		if s.i+1 < len(src) && src[s.i] == '/' && src[s.i+1] == '*' {
			j := s.blockComment(s.i)
			if k := skipSpace(src, j); k < len(src) && src[k] != '\n' && src[k] != ';' && src[k] != '}' && src[k] != '#' && !(src[k] == '/' && k+1 < len(src) && src[k+1] == '/') {
				s.emit(tokInline, s.i, j)
				s.i = j
				continue
			}
		}
		break
	}
	start := s.i
	var stack []bracket
	i := s.i
scan:
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\n':
			if len(stack) == 0 {
				break scan
			}
			if blockStartsAt(src, i+1) {
				s.unclosed(stack)
				stack = nil
				break scan
			}
			i++
		case c == '/' && i+1 < len(src) && (src[i+1] == '/' || src[i+1] == '*'):
			if len(stack) == 0 {
				break scan
			}
			if src[i+1] == '/' {
				i = lineEnd(src, i)
			} else {
				i = s.blockComment(i)
			}
		case c == '#' || c == ';':
			if len(stack) == 0 {
				break scan
			}
			i++
		case c == '"' || c == '\'':
			i = s.quoted(i)
		case c == '`':
			i = s.backquoted(i)
		case c == '<' && i+1 < len(src) && src[i+1] == '<':
			if j := s.heredoc(i); j > i {
				i = j
			} else {
				i += 2
			}
		case c == '(' || c == '[' || c == '{':
			stack = append(stack, bracket{c, i})
			i++
		case c == ')' || c == ']' || c == '}':
			if len(stack) == 0 {
				if c == '}' {
					break scan
				}
				i++
				continue
			}
			top := stack[len(stack)-1]
			if closerOf[top.ch] == c {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			k := len(stack) - 1
			for k >= 0 && closerOf[stack[k].ch] != c {
				k--
			}
			if k < 0 {
				if c == '}' {
					// No '{' is open in the value: this brace closes the block.
					s.unclosed(stack)
					stack = nil
					break scan
				}
				s.errorf(i, i+1, "Unexpected closing bracket", "",
					"This %c does not close any open bracket; the innermost open one is the %c at line %d.",
					c, top.ch, s.cur.at(top.off).Line)
				i++
				continue
			}
			s.unclosed(stack[k+1:])
			stack = stack[:k]
			i++
		default:
			i++
		}
	}
	if len(stack) > 0 {
		s.runaway = true
		s.unclosed(stack)
	}
	end := trimRightSpace(src, start, i)
	s.emit(tokValue, start, end)
	if end == start {
		eq := start - 1
		for eq > 0 && src[eq] != '=' {
			eq--
		}
		s.errorf(eq, eq+1, "Missing value", "Write NAME = VALUE on one line.",
			"An attribute needs a value after '=' on the same line.")
	}
	if end < i {
		s.emit(tokWhitespace, end, i)
	}
	s.i = i
}

// unclosed reports every bracket in stack as never closed.
func (s *fileScanner) unclosed(stack []bracket) {
	for k := len(stack) - 1; k >= 0; k-- {
		b := stack[k]
		s.errorf(b.off, b.off+1, "Missing closing bracket", fmt.Sprintf("Add the missing %c.", closerOf[b.ch]),
			"The %c opened here is never closed.", b.ch)
	}
}

// blockStartsAt reports whether the line starting at i begins, at column 1,
// with a block header: IDENT (IDENT | "STRING")* {. Inside an unclosed value
// such a line means the value's bracket was never closed.
func blockStartsAt(src []byte, i int) bool {
	if i >= len(src) || !isIdentStart(src[i]) {
		return false
	}
	i = identEnd(src, i)
	for {
		i = skipSpace(src, i)
		if i >= len(src) {
			return false
		}
		switch c := src[i]; {
		case c == '{':
			return true
		case c == '"':
			j := i + 1
			for j < len(src) && src[j] != '"' && src[j] != '\n' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(src) || src[j] != '"' {
				return false
			}
			i = j + 1
		case isIdentStart(c):
			i = identEnd(src, i)
		default:
			return false
		}
	}
}

// heredocHeader parses `<<ID` or `<<-ID` at i followed by the end of the
// line. It returns the marker and the offset where the heredoc's body starts.
func heredocHeader(src []byte, i int) (id string, bodyStart int, ok bool) {
	j := i + 2
	if j < len(src) && src[j] == '-' {
		j++
	}
	if j >= len(src) || !isIdentStart(src[j]) {
		return "", 0, false
	}
	k := identEnd(src, j)
	id = string(src[j:k])
	k = skipSpace(src, k)
	if k < len(src) && src[k] != '\n' {
		return "", 0, false
	}
	if k < len(src) {
		k++
	}
	return id, k, true
}

// heredocEnd finds the line, from bodyStart on, that holds only id (with
// optional surrounding whitespace) and returns the offset after id.
func heredocEnd(src []byte, bodyStart int, id string) (int, bool) {
	for ls := bodyStart; ls < len(src); {
		le := lineEnd(src, ls)
		line := src[ls:le]
		t := bytes.TrimSpace(line)
		if string(t) == id {
			return ls + bytes.Index(line, t) + len(t), true
		}
		ls = le + 1
	}
	return 0, false
}

func isIdentStart(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isIdentChar(c byte) bool {
	return isIdentStart(c) || '0' <= c && c <= '9'
}

func identEnd(src []byte, i int) int {
	for i < len(src) && isIdentChar(src[i]) {
		i++
	}
	return i
}

func skipSpace(src []byte, i int) int {
	for i < len(src) && (src[i] == ' ' || src[i] == '\t' || src[i] == '\r') {
		i++
	}
	return i
}

// lineEnd returns the offset of the newline ending the line that holds i,
// or len(src).
func lineEnd(src []byte, i int) int {
	if j := bytes.IndexByte(src[i:], '\n'); j >= 0 {
		return i + j
	}
	return len(src)
}

// trimRightSpace returns the end of src[start:end] without trailing spaces,
// tabs and carriage returns.
func trimRightSpace(src []byte, start, end int) int {
	for end > start && (src[end-1] == ' ' || src[end-1] == '\t' || src[end-1] == '\r') {
		end--
	}
	return end
}
