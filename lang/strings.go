package lang

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/flowrun/flowrun/lang/diag"
)

// unquote decodes a quoted string as written, raw, whose opening quote is
// at offset off of the file. It understands the escapes \n \t \r \" \\ and
// \uXXXX, and reports others. A missing closing quote (already reported by
// the lexer) is tolerated.
func unquote(raw string, lines *lineIndex, off int) (string, diag.Diagnostics) {
	body := raw[1:]
	if strings.HasSuffix(body, `"`) && !escapedQuoteEnd(body) {
		body = body[:len(body)-1]
	}
	if !strings.Contains(body, `\`) {
		return body, nil
	}
	var b strings.Builder
	var diags diag.Diagnostics
	rel := off - lines.base.Offset + 1
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(body) {
			b.WriteByte(c)
			break
		}
		switch e := body[i+1]; e {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case '"', '\\':
			b.WriteByte(e)
		case 'u':
			if i+6 <= len(body) {
				if v, err := strconv.ParseUint(body[i+2:i+6], 16, 32); err == nil && utf8.ValidRune(rune(v)) {
					b.WriteRune(rune(v))
					i += 4
					break
				}
			}
			end := min(i+6, len(body))
			d := diag.Errorf(lines.rangeAt(rel+i, rel+end), "Invalid escape sequence",
				"\\u must be followed by four hexadecimal digits naming a Unicode character.")
			diags = append(diags, d)
			b.WriteString(body[i:end])
			i = end - 2
		default:
			_, size := utf8.DecodeRuneInString(body[i+1:])
			d := diag.Errorf(lines.rangeAt(rel+i, rel+i+1+size), "Invalid escape sequence",
				"The escape \\%s is not supported; use \\n, \\t, \\r, \\\", \\\\ or \\uXXXX.", body[i+1:i+1+size])
			d.Hint = `Write \\ for a backslash.`
			diags = append(diags, d)
			b.WriteString(body[i : i+1+size])
			i += size - 1
		}
		i++
	}
	return b.String(), diags
}

// escapedQuoteEnd reports whether the final quote of s is escaped, i.e.
// preceded by an odd number of backslashes.
func escapedQuoteEnd(s string) bool {
	n := 0
	for i := len(s) - 2; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// decodeHeredoc returns the text of a heredoc written as raw (`<<ID` or
// `<<-ID`, a newline, lines, and a line holding ID). The text keeps the
// newline of its last line. `<<-` strips the indentation common to the
// non-blank lines.
func decodeHeredoc(raw string) string {
	nl := strings.IndexByte(raw, '\n')
	if nl < 0 {
		return ""
	}
	strip := strings.HasPrefix(raw, "<<-")
	body := raw[nl+1:]
	// Drop the closing marker line.
	if k := strings.LastIndexByte(body, '\n'); k >= 0 {
		body = body[:k+1]
	} else {
		body = ""
	}
	if !strip || body == "" {
		return body
	}
	lines := strings.SplitAfter(body, "\n")
	indent := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, " \t"))
		if indent < 0 || n < indent {
			indent = n
		}
	}
	var b strings.Builder
	for _, l := range lines {
		if len(l) >= indent && strings.TrimSpace(l[:max(indent, 0)]) == "" {
			b.WriteString(l[max(indent, 0):])
		} else {
			b.WriteString(strings.TrimLeft(l, " \t"))
		}
	}
	return b.String()
}
