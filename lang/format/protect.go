package format

import "strings"

// protectedLines marks the lines of a raw value whose bytes are content,
// not layout: the body and closing marker of a heredoc, and the lines a
// backquoted raw string continues onto. Index i is line i of raw.
func protectedLines(raw string) []bool {
	if !strings.Contains(raw, "\n") {
		return nil
	}
	protected := make([]bool, strings.Count(raw, "\n")+1)
	line := 0
	mark := func(from, to int) {
		for l := from; l <= to && l < len(protected); l++ {
			protected[l] = true
		}
	}
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; c {
		case '\n':
			line++
		case '"', '\'':
			for i++; i < len(raw) && raw[i] != c && raw[i] != '\n'; i++ {
				if raw[i] == '\\' {
					i++
				}
			}
			if i < len(raw) && raw[i] == '\n' {
				line++
			}
		case '`':
			j := strings.IndexByte(raw[i+1:], '`')
			end := len(raw)
			if j >= 0 {
				end = i + 1 + j
			}
			n := strings.Count(raw[i:end], "\n")
			mark(line+1, line+n)
			line += n
			i = end
		case '/':
			if i+1 < len(raw) && raw[i+1] == '/' {
				for i+1 < len(raw) && raw[i+1] != '\n' {
					i++
				}
			} else if i+1 < len(raw) && raw[i+1] == '*' {
				j := strings.Index(raw[i+2:], "*/")
				end := len(raw)
				if j >= 0 {
					end = i + 2 + j + 1
				}
				line += strings.Count(raw[i:end], "\n")
				i = end
			}
		case '<':
			id, ok := heredocStart(raw, i)
			if !ok {
				continue
			}
			nl := strings.IndexByte(raw[i:], '\n')
			if nl < 0 {
				continue
			}
			end := heredocClose(raw, i+nl+1, id)
			n := strings.Count(raw[i:end], "\n")
			mark(line+1, line+n)
			line += n
			i = end - 1
		}
	}
	return protected
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
	if nl := strings.IndexByte(rest, '\n'); nl >= 0 {
		rest = rest[:nl]
	}
	if strings.TrimSpace(rest) != "" {
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
