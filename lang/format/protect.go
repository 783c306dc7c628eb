package format

import "strings"

// valueLine says how to print one line of a raw value.
type valueLine struct {
	// verbatim lines are content, not layout: the body and closing marker
	// of a heredoc, the lines a raw string or a block comment continues
	// onto. They are written byte for byte.
	verbatim bool
	// level is the line's indentation, in levels below the attribute.
	level int
}

// valueLayout works out, for each line of a raw value, whether it is
// verbatim and how deep to indent it. A line is indented one level deeper
// than the line that opened the brackets still open at its start; a line
// that starts by closing brackets goes back to the level of the line that
// opened the last of them.
func valueLayout(raw string) []valueLine {
	if !strings.Contains(raw, "\n") {
		return nil
	}
	lines := make([]valueLine, strings.Count(raw, "\n")+1)
	line := 0
	// open holds, for each open bracket, the level of the lines inside it.
	var open []int
	atLineStart := false // only spaces seen since the start of the line
	startLine := func(l int) {
		line = l
		lines[line].level = 0
		if len(open) > 0 {
			lines[line].level = open[len(open)-1]
		}
		atLineStart = true
	}
	verbatim := func(from, to int) {
		for l := from; l <= to && l < len(lines); l++ {
			lines[l].verbatim = true
		}
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != ')' && c != ']' && c != '}' {
			atLineStart = false
		}
		switch c {
		case '\n':
			startLine(line + 1)
		case '(', '[', '{':
			level := lines[line].level + 1
			open = append(open, level)
		case ')', ']', '}':
			if len(open) == 0 {
				break
			}
			closed := open[len(open)-1]
			open = open[:len(open)-1]
			if atLineStart {
				lines[line].level = closed - 1
			}
		case '"', '\'':
			for i++; i < len(raw) && raw[i] != c && raw[i] != '\n'; i++ {
				if raw[i] == '\\' {
					i++
				}
			}
			if i < len(raw) && raw[i] == '\n' {
				startLine(line + 1)
			}
		case '`':
			end := closing(raw, i+1, "`")
			n := strings.Count(raw[i:end], "\n")
			verbatim(line+1, line+n)
			line += n
			i = end - 1
		case '/':
			if i+1 < len(raw) && raw[i+1] == '/' {
				for i+1 < len(raw) && raw[i+1] != '\n' {
					i++
				}
			} else if i+1 < len(raw) && raw[i+1] == '*' {
				end := closing(raw, i+2, "*/")
				n := strings.Count(raw[i:end], "\n")
				verbatim(line+1, line+n)
				line += n
				i = end - 1
			}
		case '<':
			id, ok := heredocStart(raw, i)
			if !ok {
				continue
			}
			nl := strings.IndexByte(raw[i:], '\n')
			end := heredocClose(raw, i+nl+1, id)
			n := strings.Count(raw[i:end], "\n")
			verbatim(line+1, line+n)
			line += n
			i = end - 1
		}
	}
	return lines
}

// closing returns the offset just after the first end at or after i, or
// len(raw).
func closing(raw string, i int, end string) int {
	if i > len(raw) {
		return len(raw)
	}
	if j := strings.Index(raw[i:], end); j >= 0 {
		return i + j + len(end)
	}
	return len(raw)
}

// heredocStart reports whether raw holds `<<ID` or `<<-ID` at i followed by
// the end of the line, and returns ID.
func heredocStart(raw string, i int) (string, bool) {
	if !strings.HasPrefix(raw[i:], "<<") {
		return "", false
	}
	j := i + 2
	if j < len(raw) && raw[j] == '-' {
		j++
	}
	k := j
	for k < len(raw) && (raw[k] == '_' || 'a' <= raw[k] && raw[k] <= 'z' || 'A' <= raw[k] && raw[k] <= 'Z' || k > j && '0' <= raw[k] && raw[k] <= '9') {
		k++
	}
	if k == j {
		return "", false
	}
	rest := raw[k:]
	nl := strings.IndexByte(rest, '\n')
	if nl < 0 {
		return "", false
	}
	if strings.TrimSpace(rest[:nl]) != "" {
		return "", false
	}
	return raw[j:k], true
}

// heredocClose returns the end of the line, from body on, that holds only
// id; or len(raw).
func heredocClose(raw string, body int, id string) int {
	for ls := body; ls < len(raw); {
		le := strings.IndexByte(raw[ls:], '\n')
		if le < 0 {
			le = len(raw)
		} else {
			le += ls
		}
		if strings.TrimSpace(raw[ls:le]) == id {
			return le
		}
		ls = le + 1
	}
	return len(raw)
}
