package lang_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowrun/flowrun/lang"
)

// TestParseGolden parses every testdata/parse/*.flow file and compares the
// tree (with the literal of every value) and the diagnostics with
// testdata/parse/*.golden.
func TestParseGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/parse/*.flow")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".flow")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, ds := lang.Parse(filepath.ToSlash(path), src)
			checkRanges(t, f)
			golden(t, strings.TrimSuffix(path, ".flow")+".golden", dump(f, ds))
		})
	}
}

// TestParseDiagnostics states, for each file with errors, which problems
// are reported and where, so that the golden files cannot silently lose one.
func TestParseDiagnostics(t *testing.T) {
	type want struct {
		line    int
		summary string
	}
	tests := []struct {
		file string
		want []want
		// blocks lists the top-level blocks still in the tree.
		blocks []string
	}{
		{"example", nil, []string{"var", "pipeline", "test"}},
		{"values", nil, nil},
		{"missing_brace", []want{{2, "Missing closing brace"}}, []string{"pipeline"}},
		{"missing_brace_eof", []want{{1, "Missing closing brace"}}, nil},
		{"missing_bracket", []want{
			{3, "Missing closing bracket"},
			{6, "Missing closing bracket"},
			{11, "Missing closing bracket"},
			{12, "Unexpected closing bracket"},
		}, []string{"pipeline", "pipeline"}},
		{"unterminated", []want{{2, "Unterminated string"}, {7, "Unterminated heredoc"}}, []string{"pipeline"}},
		{"heredoc_errors", []want{{1, "Invalid heredoc"}, {2, "Invalid heredoc"}}, []string{"block"}},
		{"toplevel_errors", []want{{1, "Missing opening brace"}, {7, "Missing closing bracket"}}, []string{"pipeline", "pipeline"}},
		{"unterminated_comment", []want{{4, "Unterminated comment"}}, []string{"pipeline"}},
		{"statements", []want{
			{2, "Missing opening brace"},
			{6, "Expected '=' after attribute name"},
			{10, "Invalid character"},
			{14, "Missing attribute name"},
			{18, "Unexpected string"},
			{22, "Missing opening brace"},
			{30, "Missing value"},
			{31, "Duplicate attribute"},
			{34, "Invalid escape sequence"},
			{35, "Invalid character"},
		}, []string{"pipeline", "label"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata/parse", tt.file+".flow"))
			if err != nil {
				t.Fatal(err)
			}
			f, ds := lang.Parse(tt.file+".flow", src)
			if f == nil || f.Body == nil {
				t.Fatal("Parse returned no tree")
			}
			var got []want
			for _, d := range ds {
				got = append(got, want{d.Subject.Start.Line, d.Summary})
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d diagnostics %v, want %d %v", len(got), got, len(tt.want), tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("diagnostic %d = %v, want %v", i, got[i], tt.want[i])
				}
			}
			if tt.blocks != nil {
				var types []string
				for _, b := range f.Body.Blocks() {
					types = append(types, b.Type)
				}
				if strings.Join(types, " ") != strings.Join(tt.blocks, " ") {
					t.Errorf("top-level blocks %v, want %v", types, tt.blocks)
				}
			}
		})
	}
}
