package lang_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/lang"
	"github.com/flowrun/flowrun/lang/ast"
)

// parseOne parses `v = raw` after a few lines of padding, so that positions
// inside the value are not those of a file holding the value alone.
func parseOne(t *testing.T, raw string) (*ast.File, *ast.Attribute) {
	t.Helper()
	src := "# padding\nblock {\n  v = " + raw + "\n}\n"
	f, ds := lang.Parse("v.flow", []byte(src))
	if ds.HasErrors() {
		t.Fatalf("Parse(%q): %v", src, ds)
	}
	a := f.Body.Blocks()[0].Body.Attribute("v")
	if a == nil {
		t.Fatalf("Parse(%q): no attribute v", src)
	}
	return f, a
}

func TestParseValue(t *testing.T) {
	tests := []struct {
		raw  string
		want any
	}{
		{`"plain"`, "plain"},
		{`"esc \n\t\r\"\\ \u00e9\u20ac"`, "esc \n\t\r\"\\ é€"},
		{`""`, ""},
		{"<<EOT\nline one\n  line two\nEOT", "line one\n  line two\n"},
		{"<<-EOT\n    a\n      b\n\n    c\n    EOT", "a\n  b\n\nc\n"},
		{"<<EOT\nEOT", ""},
		{`0`, int64(0)},
		{`-9223372036854775808`, int64(-9223372036854775808)},
		{`9223372036854775807`, int64(9223372036854775807)},
		{`1.5`, 1.5},
		{`-2e3`, -2000.0},
		{`1E-2`, 0.01},
		{`true`, true},
		{`false`, false},
		{`null`, nil},
		{`[]`, []any{}},
		{`[1, "a", true, null, [2]]`, []any{int64(1), "a", true, nil, []any{int64(2)}}},
		{"[\n  1,\n  2,\n]", []any{int64(1), int64(2)}},
		{"[ // first\n  1, /* one */\n\n  2 // last\n]", []any{int64(1), int64(2)}},
		{`{}`, map[string]any{}},
		{`{ a = 1, b: "x", "c d" = [] }`, map[string]any{"a": int64(1), "b": "x", "c d": []any{}}},
		{"{\n  a = 1\n  b = 2,\n\n  c = { d = null }\n}", map[string]any{"a": int64(1), "b": int64(2), "c": map[string]any{"d": nil}}},
		{`{ true = 1, null: 2 }`, map[string]any{"true": int64(1), "null": int64(2)}},
		{`[{ level = "ERROR", msg = "disk full" }, { level = "INFO", msg = "ok" }]`, []any{
			map[string]any{"level": "ERROR", "msg": "disk full"}, map[string]any{"level": "INFO", "msg": "ok"}}},
	}
	for _, tt := range tests {
		_, a := parseOne(t, tt.raw)
		lit, ds := lang.ParseValue(a.Value)
		if ds.HasErrors() {
			t.Errorf("ParseValue(%q): %v", tt.raw, ds)
			continue
		}
		got, ok := ast.Go(lit)
		if !ok {
			t.Errorf("ParseValue(%q) = %T, not a plain value", tt.raw, lit)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseValue(%q) mismatch (-want +got):\n%s", tt.raw, diff)
		}
	}
}

func TestParseValueKinds(t *testing.T) {
	tests := []struct {
		raw  string
		want string // the literal's type and, for references, its parts
	}{
		{`logs`, "ref logs"},
		{`var.rate`, "ref var.rate"},
		{`a.b.c`, "ref a.b.c"},
		{`[a, b]`, "list"},
		{`7`, "int"},
		{`7.0`, "float"},
	}
	for _, tt := range tests {
		_, a := parseOne(t, tt.raw)
		lit, ds := lang.ParseValue(a.Value)
		if ds.HasErrors() {
			t.Errorf("ParseValue(%q): %v", tt.raw, ds)
			continue
		}
		var got string
		switch l := lit.(type) {
		case *ast.Ref:
			got = "ref " + strings.Join(l.Parts, ".")
		case *ast.List:
			got = "list"
		case *ast.Number:
			got = map[bool]string{true: "int", false: "float"}[l.IsInt]
		default:
			got = "other"
		}
		if got != tt.want {
			t.Errorf("ParseValue(%q) is %s, want %s", tt.raw, got, tt.want)
		}
	}
}

func TestParseValueErrors(t *testing.T) {
	tests := []struct {
		raw     string
		summary string
		// at is the text the diagnostic's range starts with.
		at   string
		hint string
	}{
		{`len(msg) > 0`, "Invalid value", "(", ""},
		{`level == "ERROR"`, "Invalid value", "==", ""},
		{`1s`, "Invalid value", "1s", `Durations are strings: write "1s".`},
		{`250ms`, "Invalid value", "250ms", `Durations are strings: write "250ms".`},
		{`'single'`, "Invalid value", "'", "Strings are written in double quotes."},
		{`[1 2]`, "Missing comma", "2]", `Add a ',' before "2".`},
		{"[\n  { a = 1 }\n  { b = 2 },\n]", "Missing comma", "{ b = 2 }", `Add a ',' before "{".`},
		{`[1,, 2]`, "Extra comma", ", 2]", "Remove it."},
		{`[, 2]`, "Extra comma", ", 2]", "Remove it."},
		{`{ a = 1 b = 2 }`, "Missing separator", "b = 2", `Add a ',' before "b".`},
		{`{ a }`, "Invalid value", "a }", ""},
		{`[all(x, # > 1)]`, "Invalid value", "(", "Inside brackets only // and /* */ start comments."},
		{`"bad \q"`, "Invalid escape sequence", `\q`, `Write \\ for a backslash.`},
		{`"bad \u12"`, "Invalid escape sequence", `\u12`, ""},
		{`99999999999999999999`, "Number out of range", "99999999999999999999", ""},
		{`1e999`, "Number out of range", "1e999", ""},
		{`true.x`, "Invalid value", ".x", ""},
	}
	for _, tt := range tests {
		f, a := parseOne(t, tt.raw)
		lit, ds := lang.ParseValue(a.Value)
		if lit != nil || len(ds) != 1 {
			t.Errorf("ParseValue(%q) = %v, %v; want one diagnostic", tt.raw, lit, ds)
			continue
		}
		d := ds[0]
		if d.Summary != tt.summary {
			t.Errorf("ParseValue(%q): summary %q, want %q", tt.raw, d.Summary, tt.summary)
		}
		if got := string(f.Src[d.Subject.Start.Byte:]); !strings.HasPrefix(got, tt.at) {
			t.Errorf("ParseValue(%q): diagnostic at %q, want at %q", tt.raw, got, tt.at)
		}
		if want := posAt(f.Src, d.Subject.Start.Byte); d.Subject.Start != want || d.Subject.Start.Line < 3 {
			t.Errorf("ParseValue(%q): position %+v, want %+v on line 3 or after", tt.raw, d.Subject.Start, want)
		}
		if d.Hint != tt.hint {
			t.Errorf("ParseValue(%q): hint %q, want %q", tt.raw, d.Hint, tt.hint)
		}
	}
}
