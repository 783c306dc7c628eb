package lang

import (
	"errors"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"

	"github.com/flowrun/flowrun/lang/diag"
)

// explanation is what a syntax error means, in the user's terms.
type explanation struct {
	summary, detail, hint string
	// subject overrides the range of the offending token when set.
	subject *diag.Range
}

// syntaxDiagnostic converts a participle error into a diagnostic. It is the
// only place that reads participle errors: explain turns the offending token
// into words, lines places it in the file.
func syntaxDiagnostic(err error, lines *lineIndex, explain func(perr participle.Error) explanation) *diag.Diagnostic {
	var perr participle.Error
	if !errors.As(err, &perr) {
		perr = &participle.ParseError{Msg: err.Error(), Pos: lines.base}
	}
	e := explain(perr)
	var subject diag.Range
	switch {
	case e.subject != nil:
		subject = *e.subject
	default:
		start := perr.Position().Offset - lines.base.Offset
		end := start
		var ute *participle.UnexpectedTokenError
		if errors.As(err, &ute) && !ute.Unexpected.EOF() {
			end += len(ute.Unexpected.Value)
		}
		subject = lines.rangeAt(start, end)
	}
	if e.summary == "" {
		e.summary = "Syntax error"
		e.detail = capitalize(perr.Message()) + "."
	}
	return &diag.Diagnostic{Severity: diag.Error, Summary: e.summary, Detail: e.detail, Hint: e.hint, Subject: subject}
}

// errorToken finds the token a participle error points at, so that Parse
// can decide how to resume.
func (p *fileParse) errorToken(err error) lexer.Token {
	var ute *participle.UnexpectedTokenError
	if errors.As(err, &ute) {
		return ute.Unexpected
	}
	var perr participle.Error
	if errors.As(err, &perr) {
		return p.toks[p.tokenAt(perr.Position().Offset)]
	}
	return p.toks[len(p.toks)-1]
}

// capitalize upper-cases the first letter of an ASCII sentence.
func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// explainFile explains a syntax error in the file structure that participle
// met at tok. participle reports the start of a statement when no
// alternative fits it, so the statement is scanned again to find the token
// that is actually wrong.
func (p *fileParse) explainFile(tok lexer.Token) func(participle.Error) explanation {
	return func(participle.Error) explanation {
		k := p.tokenAt(tok.Pos.Offset)
		if tok.EOF() {
			k = len(p.toks) - 1
		}
		// The statement so far: tokens before k, back to the previous
		// newline or brace.
		first := k
		for j := k - 1; j >= 0; j-- {
			t := p.toks[j]
			if isSpace(t) {
				continue
			}
			if t.Type == tokNewline || t.Type == tokComment || t.Type == tokPunct && t.Value != "=" {
				break
			}
			first = j
		}
		if first == k && p.toks[k].Type == tokIdent {
			// Walk forward over TYPE LABEL* to the token that does not fit.
			k = p.skipWhitespace(k + 1)
			for p.toks[k].Type == tokIdent || p.toks[k].Type == tokString {
				k = p.skipWhitespace(k + 1)
			}
		}
		stmt := p.significant(first, k)
		bad := p.toks[k]
		what := describe(bad)
		e := explanation{}
		switch {
		case bad.Type == tokInvalid:
			e = explanation{summary: "Invalid character", detail: "The character " + what + " cannot be used here."}
			if len(stmt) == 1 && (bad.Value == ":" || bad.Value == "-") {
				e.hint = "Write an attribute as NAME = VALUE; names are made of letters, digits and underscores."
			}
		case len(stmt) == 0 && bad.Type == tokPunct && bad.Value == "}":
			e = explanation{summary: "Unexpected closing brace", detail: "There is no open block for this '}' to close.",
				hint: "Remove it, or check the braces of the block before it."}
		case len(stmt) == 0 && bad.Type == tokPunct && bad.Value == "=":
			e = explanation{summary: "Missing attribute name", detail: "An attribute is written NAME = VALUE; this '=' has no name before it."}
		case len(stmt) == 0 && bad.Type == tokPunct && bad.Value == "{":
			e = explanation{summary: "Missing block type", detail: "A block starts with its type and labels, as in source \"logs\" { ... }."}
		case len(stmt) == 0 && bad.Type == tokString:
			e = explanation{summary: "Unexpected string", detail: "An attribute name or a block type is a bare identifier, not a quoted string.",
				hint: "Remove the quotes."}
		case len(stmt) == 1 && stmt[0].Type == tokIdent:
			r := p.tokRange(stmt[0])
			return explanation{summary: "Expected '=' after attribute name", subject: &r,
				detail: "\"" + stmt[0].Value + "\" is followed by " + what + ". Write an attribute as NAME = VALUE, or a block as TYPE \"LABEL\" { ... }."}
		case len(stmt) > 1 && stmt[0].Type == tokIdent:
			r := p.tokRange(stmt[0])
			r.End = p.tokRange(stmt[len(stmt)-1]).End
			e = explanation{summary: "Missing opening brace", subject: &r,
				detail: "The block header " + p.headerText(first, k) + " is followed by " + what + ". A block's type and labels must be followed by '{' on the same line."}
			switch next := p.toks[p.skipBlank(k)]; {
			case next.Type == tokPunct && next.Value == "{":
				e.hint = "Move the '{' up to the end of the header's line."
			case len(stmt) == 2 && stmt[1].Type == tokString && (bad.Type == tokNewline || bad.EOF() || bad.Type == tokComment):
				e.hint = "Did you mean " + stmt[0].Value + " = " + stmt[1].Value + "?"
			}
			return e
		default:
			return explanation{}
		}
		r := p.tokRange(bad)
		e.subject = &r
		return e
	}
}

// isSpace reports whether t is whitespace to the grammar: blanks, or a
// comment inside a statement.
func isSpace(t lexer.Token) bool {
	return t.Type == tokWhitespace || t.Type == tokInline
}

// skipWhitespace returns the index of the first token from k on that is not
// whitespace.
func (p *fileParse) skipWhitespace(k int) int {
	for k < len(p.toks)-1 && isSpace(p.toks[k]) {
		k++
	}
	return k
}

// skipBlank returns the index of the first token from k on that is not
// whitespace, a newline or a comment.
func (p *fileParse) skipBlank(k int) int {
	for k < len(p.toks)-1 && (isSpace(p.toks[k]) || p.toks[k].Type == tokNewline || p.toks[k].Type == tokComment) {
		k++
	}
	return k
}

// significant returns the tokens in [from, to) that are not whitespace.
func (p *fileParse) significant(from, to int) []lexer.Token {
	var out []lexer.Token
	for j := from; j < to; j++ {
		if !isSpace(p.toks[j]) {
			out = append(out, p.toks[j])
		}
	}
	return out
}
