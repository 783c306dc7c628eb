package diag_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowrun/flowrun/lang/diag"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const src = "pipeline \"p\" {\n\tfilter \"f\" {\n\t\twhere = uper(msg) // \"é\"\n\t\tnote  = \"héllo\" + wrld\n\t\tfrom  = [a,\n\t\t  b\n\t}\n}\n"

func pos(line, col, byt int) diag.Pos { return diag.Pos{Line: line, Column: col, Byte: byt} }

// at returns the position of byte offset off in src.
func at(off int) diag.Pos {
	p := diag.Pos{Line: 1, Column: 1, Byte: off}
	for _, c := range []byte(src[:off]) {
		if c == '\n' {
			p.Line++
			p.Column = 1
		} else {
			p.Column++
		}
	}
	return p
}

// span returns the range of the n-th occurrence (from 0) of text in src,
// extended by extra bytes.
func span(text string, extra int) diag.Range {
	off := strings.Index(src, text)
	return diag.Range{Filename: "p.flow", Start: at(off), End: at(off + len(text) + extra)}
}

// sample covers a plain range, a range after a multi-byte character, a
// range spanning lines, an empty range, a warning and a file whose source
// is not known.
func sample() diag.Diagnostics {
	return diag.Diagnostics{
		{Severity: diag.Error, Summary: "Unknown function", Detail: "The function \"uper\" is not defined.",
			Hint: "Did you mean \"upper\"?", Subject: span("uper", 0)},
		{Severity: diag.Error, Summary: "Unknown variable", Detail: "No field or variable is called \"wrld\".",
			Subject: span("wrld", 0)},
		{Severity: diag.Error, Summary: "Missing closing bracket", Detail: "The [ opened here is never closed.",
			Subject: span("[a,", 8)},
		{Severity: diag.Warning, Summary: "Empty block", Detail: "The block has no attributes.",
			Subject: span("\n}\n", -3)},
		{Severity: diag.Error, Summary: "Cannot read file", Detail: "Permission denied, with a comma: and a colon.",
			Subject: diag.Range{Filename: "other,dir/x.flow", Start: pos(1, 1, 0), End: pos(1, 1, 0)}},
		{Severity: diag.Error, Summary: "No pipeline", Detail: "The files given hold no pipeline.\nGive at least one."},
	}
}

func TestRenderers(t *testing.T) {
	sources := map[string][]byte{"p.flow": []byte(src)}
	tests := []struct {
		golden string
		write  func(*bytes.Buffer) error
	}{
		{"render.txt", func(b *bytes.Buffer) error { return diag.WriteText(b, sample(), sources) }},
		{"render.json", func(b *bytes.Buffer) error { return diag.WriteJSON(b, []string{"p.flow", "ok.flow"}, sample()) }},
		{"render.github", func(b *bytes.Buffer) error { return diag.WriteGitHub(b, sample()) }},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.write(&b); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", tt.golden), b.Bytes())
		})
	}
}

func TestReportsCounts(t *testing.T) {
	reports := diag.Reports([]string{"ok.flow", "p.flow"}, sample())
	if len(reports) != 4 {
		t.Fatalf("got %d reports, want 4 (two named files, one more from a diagnostic and one for no file)", len(reports))
	}
	want := []struct {
		file          string
		valid         bool
		errors, warns int
	}{{"ok.flow", true, 0, 0}, {"p.flow", false, 3, 1}, {"other,dir/x.flow", false, 1, 0}, {"", false, 1, 0}}
	for i, w := range want {
		r := reports[i]
		if r.Filename != w.file || r.Valid != w.valid || r.ErrorCount != w.errors || r.WarningCount != w.warns {
			t.Errorf("report %d = %s valid=%v errors=%d warnings=%d, want %s valid=%v errors=%d warnings=%d",
				i, r.Filename, r.Valid, r.ErrorCount, r.WarningCount, w.file, w.valid, w.errors, w.warns)
		}
	}
}

// golden compares got with the golden file, or rewrites it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
