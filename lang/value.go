package lang

import (
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"

	"github.com/flowrun/flowrun/lang/ast"
	"github.com/flowrun/flowrun/lang/diag"
)

// Token types of the literal lexer.
const (
	litWhitespace lexer.TokenType = iota + 1 // spaces, tabs; elided
	litComment                               // // and /* */; elided
	litNewline                               // a run of newlines (and the blanks and comments between them)
	litIdent
	litString
	litHeredoc
	litNumber
	litPunct   // [ ] { } , = : .
	litInvalid // anything else: the value is not a literal
)

var literalSymbols = map[string]lexer.TokenType{
	"EOF":        lexer.EOF,
	"Whitespace": litWhitespace,
	"Comment":    litComment,
	"Newline":    litNewline,
	"Ident":      litIdent,
	"String":     litString,
	"Heredoc":    litHeredoc,
	"Number":     litNumber,
	"Punct":      litPunct,
	"Invalid":    litInvalid,
}

// literalLexer is the participle lexer definition of literal values.
type literalLexer struct{}

// Symbols implements lexer.Definition.
func (literalLexer) Symbols() map[string]lexer.TokenType { return literalSymbols }

// Lex implements lexer.Definition.
func (literalLexer) Lex(filename string, r io.Reader) (lexer.Lexer, error) {
	src, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", filename, err)
	}
	toks := scanLiteral(newLineIndex(lexer.Position{Filename: filename, Line: 1, Column: 1}, src), src)
	return &sliceLexer{toks: toks}, nil
}

// literalRoot is a whole value that must be exactly one literal.
type literalRoot struct {
	Value ast.Literal `parser:"Newline? @@ Newline?"`
}

var literalParser = participle.MustBuild[literalRoot](
	participle.Lexer(literalLexer{}),
	participle.Union[ast.Literal](&ast.String{}, &ast.Number{}, &ast.Bool{}, &ast.Null{}, &ast.List{}, &ast.Object{}, &ast.Ref{}),
	participle.Elide("Whitespace", "Comment"),
	participle.UseLookahead(3),
)

// scanLiteral scans the text of a value. Positions come from lines, so
// they are in the coordinates of the file the value was read from.
func scanLiteral(lines *lineIndex, src []byte) []lexer.Token {
	var toks []lexer.Token
	emit := func(typ lexer.TokenType, start, end int) {
		toks = append(toks, lexer.Token{Type: typ, Value: string(src[start:end]), Pos: lines.at(start)})
	}
	i := 0
	for i < len(src) {
		start := i
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			i = skipSpace(src, i)
			emit(litWhitespace, start, i)
		case c == '/' && i+1 < len(src) && (src[i+1] == '/' || src[i+1] == '*'):
			i = literalComment(src, i)
			emit(litComment, start, i)
		case c == '\n':
			// One token for a run of lines, so the grammar needs no
			// repetition of newlines.
			for i < len(src) {
				j := skipSpace(src, i)
				switch {
				case j < len(src) && src[j] == '\n':
					i = j + 1
					continue
				case j+1 < len(src) && src[j] == '/' && (src[j+1] == '/' || src[j+1] == '*'):
					i = literalComment(src, j)
					continue
				}
				break
			}
			i = trimRightSpace(src, start, i)
			emit(litNewline, start, i)
		case c == '"':
			i = literalString(src, i)
			emit(litString, start, i)
		case c == '<' && i+1 < len(src) && src[i+1] == '<':
			if id, body, ok := heredocHeader(src, i); ok {
				if end, ok := heredocEnd(src, body, id); ok {
					i = end
					emit(litHeredoc, start, i)
					continue
				}
			}
			i += 2
			emit(litInvalid, start, i)
		case c == '-' || '0' <= c && c <= '9':
			if end := numberEnd(src, i); end > i {
				i = end
				emit(litNumber, start, i)
				continue
			}
			i++
			emit(litInvalid, start, i)
		case isIdentStart(c):
			i = identEnd(src, i)
			emit(litIdent, start, i)
		case strings.IndexByte("[]{},=:.", c) >= 0:
			i++
			emit(litPunct, start, i)
		default:
			_, size := utf8.DecodeRune(src[i:])
			i += size
			emit(litInvalid, start, i)
		}
	}
	toks = append(toks, lexer.EOFToken(lines.at(len(src))))
	return toks
}

// literalComment returns the end of the // or /* */ comment at i.
func literalComment(src []byte, i int) int {
	if src[i+1] == '/' {
		return lineEnd(src, i)
	}
	if j := strings.Index(string(src[i+2:]), "*/"); j >= 0 {
		return i + 2 + j + 2
	}
	return len(src)
}

// literalString returns the end of the quoted string at i: after its
// closing quote, or at the end of the line when it has none.
func literalString(src []byte, i int) int {
	for j := i + 1; j < len(src); j++ {
		switch src[j] {
		case '\\':
			j++
		case '\n':
			return j
		case '"':
			return j + 1
		}
	}
	return len(src)
}

// numberEnd returns the end of the number at i (-?digits[.digits][e[+-]digits]),
// or i when none starts there.
func numberEnd(src []byte, i int) int {
	j := i
	if j < len(src) && src[j] == '-' {
		j++
	}
	d := digitsEnd(src, j)
	if d == j {
		return i
	}
	j = d
	if j+1 < len(src) && src[j] == '.' && '0' <= src[j+1] && src[j+1] <= '9' {
		j = digitsEnd(src, j+1)
	}
	if j < len(src) && (src[j] == 'e' || src[j] == 'E') {
		k := j + 1
		if k < len(src) && (src[k] == '+' || src[k] == '-') {
			k++
		}
		if e := digitsEnd(src, k); e > k {
			j = e
		}
	}
	if j < len(src) && isIdentChar(src[j]) {
		// "1s", "10ms": not a number.
		return i
	}
	return j
}

func digitsEnd(src []byte, i int) int {
	for i < len(src) && '0' <= src[i] && src[i] <= '9' {
		i++
	}
	return i
}

var durationLike = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h)([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))*$`)

// ParseValue decodes an attribute's raw value as a literal: a string,
// heredoc, number, bool, null, list, object or reference. When the text is
// not a literal (an expression, say) it returns an error diagnostic, and a
// nil literal. Ranges of the returned nodes are in the coordinates of the
// .flow file.
func ParseValue(v *ast.Value) (ast.Literal, diag.Diagnostics) {
	src := []byte(v.Raw)
	lines := newLineIndex(v.Pos, src)
	if len(src) == 0 {
		return nil, diag.Diagnostics{diag.Errorf(v.Range(), "Missing value", "An attribute needs a value after '='.")}
	}
	toks := scanLiteral(lines, src)
	pl, err := lexer.Upgrade(&sliceLexer{toks: toks}, litWhitespace, litComment)
	if err == nil {
		var root *literalRoot
		root, err = literalParser.ParseFromLexer(pl)
		if err == nil {
			diags := decodeLiteral(root.Value, lines)
			if diags.HasErrors() {
				return nil, diags
			}
			return root.Value, diags
		}
	}
	return nil, diag.Diagnostics{syntaxDiagnostic(err, lines, explainLiteral(v, toks))}
}

// explainLiteral explains why the text of v, scanned into toks, is not a
// literal.
func explainLiteral(v *ast.Value, toks []lexer.Token) func(participle.Error) explanation {
	return func(perr participle.Error) explanation {
		found := "this text"
		var ute *participle.UnexpectedTokenError
		if errors.As(perr, &ute) {
			found = describeLiteralToken(ute.Unexpected)
			if e, ok := explainSeparator(toks, ute.Unexpected); ok {
				return e
			}
		}
		e := explanation{
			summary: "Invalid value",
			detail: "Expected a literal value: a string, number, true, false, null, a list, an object or a reference; found " +
				found + ". Expressions are not allowed here.",
		}
		raw := strings.TrimSpace(v.Raw)
		switch {
		case durationLike.MatchString(raw):
			e.hint = fmt.Sprintf("Durations are strings: write %q.", raw)
		case strings.HasPrefix(raw, "'"):
			e.hint = "Strings are written in double quotes."
		case strings.Contains(raw, "#"):
			e.hint = "Inside brackets only // and /* */ start comments."
		}
		return e
	}
}

// explainSeparator recognises a missing or doubled separator between the
// elements of a list or the items of an object, met at token bad.
func explainSeparator(toks []lexer.Token, bad lexer.Token) (explanation, bool) {
	var stack []string
	prev := -1 // index of the last significant token before bad
	for k, t := range toks {
		if t.Pos.Offset >= bad.Pos.Offset {
			break
		}
		switch {
		case t.Type == litPunct && (t.Value == "[" || t.Value == "{"):
			stack = append(stack, t.Value)
		case t.Type == litPunct && (t.Value == "]" || t.Value == "}") && len(stack) > 0:
			stack = stack[:len(stack)-1]
		}
		if t.Type != litWhitespace && t.Type != litComment && t.Type != litNewline {
			prev = k
		}
	}
	if len(stack) == 0 || prev < 0 {
		return explanation{}, false
	}
	p := toks[prev]
	endsValue := p.Type == litString || p.Type == litHeredoc || p.Type == litNumber || p.Type == litIdent ||
		p.Type == litPunct && (p.Value == "]" || p.Value == "}")
	startsValue := bad.Type == litString || bad.Type == litHeredoc || bad.Type == litNumber || bad.Type == litIdent ||
		bad.Type == litPunct && (bad.Value == "[" || bad.Value == "{")
	inList := stack[len(stack)-1] == "["
	switch {
	case inList && endsValue && startsValue:
		return explanation{summary: "Missing comma", detail: "The elements of a list are separated by commas.",
			hint: "Add a ',' before " + describeLiteralToken(bad) + "."}, true
	case !inList && endsValue && startsValue:
		return explanation{summary: "Missing separator", detail: "The items of an object are separated by commas or newlines.",
			hint: "Add a ',' before " + describeLiteralToken(bad) + "."}, true
	case bad.Type == litPunct && bad.Value == "," && p.Type == litPunct && (p.Value == "," || p.Value == "[" || p.Value == "{"):
		return explanation{summary: "Extra comma", detail: "A comma must follow an element; this one has nothing before it.",
			hint: "Remove it."}, true
	}
	return explanation{}, false
}

// describeLiteralToken renders a literal token for a message.
func describeLiteralToken(t lexer.Token) string {
	switch {
	case t.EOF():
		return "the end of the value"
	case t.Type == litNewline:
		return "the end of the line"
	}
	return fmt.Sprintf("%q", t.Value)
}

// decodeLiteral fills the decoded fields of a parsed literal tree (string
// values, numbers, object keys) and reports what cannot be decoded.
func decodeLiteral(lit ast.Literal, lines *lineIndex) diag.Diagnostics {
	var diags diag.Diagnostics
	ast.Walk(lit, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.String:
			if strings.HasPrefix(n.Raw, "<<") {
				n.Value = decodeHeredoc(n.Raw)
				break
			}
			val, ds := unquote(n.Raw, lines, n.Pos.Offset)
			n.Value = val
			diags = append(diags, ds...)
			if !strings.HasSuffix(n.Raw, `"`) || len(n.Raw) == 1 || escapedQuoteEnd(n.Raw[1:]) {
				diags = append(diags, diag.Errorf(n.Range(), "Unterminated string",
					"This string has no closing \" before the end of the line."))
			}
		case *ast.Number:
			diags = append(diags, decodeNumber(n)...)
		case *ast.Label:
			if strings.HasPrefix(n.Raw, `"`) {
				n.Quoted = true
				val, ds := unquote(n.Raw, lines, n.Pos.Offset)
				n.Value = val
				diags = append(diags, ds...)
			} else {
				n.Value = n.Raw
			}
		}
		return true
	})
	return diags
}

func decodeNumber(n *ast.Number) diag.Diagnostics {
	if !strings.ContainsAny(n.Raw, ".eE") {
		i, err := strconv.ParseInt(n.Raw, 10, 64)
		if err == nil {
			n.IsInt, n.Int, n.Float = true, i, float64(i)
			return nil
		}
		return diag.Diagnostics{diag.Errorf(n.Range(), "Number out of range",
			"The integer %s does not fit in 64 bits (%d to %d).", n.Raw, int64(math.MinInt64), int64(math.MaxInt64))}
	}
	f, err := strconv.ParseFloat(n.Raw, 64)
	if err != nil {
		return diag.Diagnostics{diag.Errorf(n.Range(), "Number out of range",
			"The number %s cannot be represented as a 64-bit float.", n.Raw)}
	}
	n.Float = f
	return nil
}
