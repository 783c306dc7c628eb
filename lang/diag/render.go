package diag

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// WriteText writes each diagnostic for a person to read:
//
//	file:line:col: error: Summary
//	  Detail sentences.
//	    12 |     where = uper(msg)
//	       |             ^^^^
//	  Hint: Did you mean "upper"?
//
// sources maps a filename to its content; the source line and caret are
// left out when the file's content is not there or the range is outside it.
func WriteText(w io.Writer, ds Diagnostics, sources map[string][]byte) error {
	var b strings.Builder
	for _, d := range ds {
		if hasPosition(d.Subject) {
			fmt.Fprintf(&b, "%s: ", d.Subject)
		}
		fmt.Fprintf(&b, "%s: %s\n", d.Severity, d.Summary)
		if d.Detail != "" {
			fmt.Fprintf(&b, "  %s\n", indentLines(d.Detail))
		}
		writeSnippet(&b, d.Subject, sources[d.Subject.Filename])
		if d.Hint != "" {
			fmt.Fprintf(&b, "  Hint: %s\n", indentLines(d.Hint))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// indentLines indents the lines of s after the first by two spaces.
func indentLines(s string) string {
	return strings.ReplaceAll(s, "\n", "\n  ")
}

// hasPosition reports whether r points somewhere: a diagnostic about the
// command line or the whole run has no range.
func hasPosition(r Range) bool {
	return r.Filename != "" || r.Start.Line > 0
}

// writeSnippet writes the source line where r starts and a caret line under
// the part of r on that line.
func writeSnippet(b *strings.Builder, r Range, src []byte) {
	if src == nil || r.Start.Byte < 0 || r.Start.Byte > len(src) || r.Start.Line < 1 {
		return
	}
	ls := bytes.LastIndexByte(src[:r.Start.Byte], '\n') + 1
	le := len(src)
	if k := bytes.IndexByte(src[r.Start.Byte:], '\n'); k >= 0 {
		le = r.Start.Byte + k
	}
	line := bytes.TrimRight(src[ls:le], "\r")
	num := fmt.Sprint(r.Start.Line)
	gutter := strings.Repeat(" ", len(num))
	fmt.Fprintf(b, "  %s | %s\n", num, line)
	// The caret line keeps the tabs of the source line so the carets line
	// up, and counts characters, not bytes.
	start := min(r.Start.Byte-ls, len(line))
	end := min(max(r.End.Byte-ls, start), len(line))
	var caret strings.Builder
	for _, c := range string(line[:start]) {
		if c == '\t' {
			caret.WriteByte('\t')
		} else {
			caret.WriteByte(' ')
		}
	}
	caret.WriteString(strings.Repeat("^", max(1, utf8.RuneCount(line[start:end]))))
	fmt.Fprintf(b, "  %s | %s\n", gutter, caret.String())
}

// FileReport is the JSON form of the diagnostics of one file, in the shape
// of `terraform validate -json`.
type FileReport struct {
	Filename     string       `json:"filename"`
	Valid        bool         `json:"valid"`
	ErrorCount   int          `json:"error_count"`
	WarningCount int          `json:"warning_count"`
	Diagnostics  []JSONReport `json:"diagnostics"`
}

// JSONReport is the JSON form of one diagnostic.
type JSONReport struct {
	Severity string `json:"severity"`
	Summary  string `json:"summary"`
	Detail   string `json:"detail,omitempty"`
	Hint     string `json:"hint,omitempty"`
	Range    Range  `json:"range"`
}

// Reports groups ds by file: one report for each of files, in that order,
// then one for any other file a diagnostic names, in order of appearance.
func Reports(files []string, ds Diagnostics) []FileReport {
	index := make(map[string]int)
	var out []FileReport
	add := func(name string) int {
		if i, ok := index[name]; ok {
			return i
		}
		index[name] = len(out)
		out = append(out, FileReport{Filename: name, Valid: true, Diagnostics: []JSONReport{}})
		return len(out) - 1
	}
	for _, f := range files {
		add(f)
	}
	for _, d := range ds {
		r := &out[add(d.Subject.Filename)]
		r.Diagnostics = append(r.Diagnostics, JSONReport{
			Severity: d.Severity.String(), Summary: d.Summary, Detail: d.Detail, Hint: d.Hint, Range: d.Subject,
		})
		if d.Severity == Warning {
			r.WarningCount++
		} else {
			r.ErrorCount++
			r.Valid = false
		}
	}
	return out
}

// WriteJSON writes one JSON object per file (see Reports), one per line.
func WriteJSON(w io.Writer, files []string, ds Diagnostics) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for _, r := range Reports(files, ds) {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("encoding diagnostics of %s: %w", r.Filename, err)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// WriteGitHub writes each diagnostic as a GitHub Actions workflow command,
// which GitHub shows as an annotation on the file:
//
//	::error file=F,line=L,col=C,endLine=L2,endColumn=C2::Summary: detail
func WriteGitHub(w io.Writer, ds Diagnostics) error {
	var b strings.Builder
	for _, d := range ds {
		r := d.Subject
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + d.Detail
		}
		if d.Hint != "" {
			msg += " " + d.Hint
		}
		if !hasPosition(r) {
			fmt.Fprintf(&b, "::%s::%s\n", d.Severity, githubData(msg))
			continue
		}
		fmt.Fprintf(&b, "::%s file=%s,line=%d,col=%d,endLine=%d,endColumn=%d::%s\n",
			d.Severity, githubProperty(r.Filename), r.Start.Line, r.Start.Column, r.End.Line, r.End.Column, githubData(msg))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

var (
	githubDataEscaper     = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")
	githubPropertyEscaper = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C")
)

func githubData(s string) string     { return githubDataEscaper.Replace(s) }
func githubProperty(s string) string { return githubPropertyEscaper.Replace(s) }
