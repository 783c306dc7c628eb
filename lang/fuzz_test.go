package lang_test

import (
	"testing"

	"github.com/flowrun/flowrun/lang"
	"github.com/flowrun/flowrun/lang/diag"
)

// FuzzParse checks that Parse never panics, always returns a tree, and
// that every range it reports (in the tree, in the literals of its values,
// in its diagnostics) is consistent and inside the source.
func FuzzParse(f *testing.F) {
	f.Add([]byte("pipeline \"p\" {\n  source \"s\" { kind = \"file\" }\n}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		file, ds := lang.Parse("fuzz.flow", src)
		if file == nil || file.Body == nil {
			t.Fatal("Parse returned no tree")
		}
		checkRanges(t, file)
		for _, d := range ds {
			checkDiagnostic(t, src, d)
		}
	})
}

// FuzzFormat checks that Format never panics and that, for input that
// parses without errors, it round-trips and is idempotent.
func FuzzFormat(f *testing.F) {
	f.Add([]byte("a = [\n1,\n  2]\nb {\n\tc = 1 # x\n}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		if _, ds := lang.Parse("fuzz.flow", src); ds.HasErrors() {
			return
		}
		checkRoundTrip(t, "fuzz.flow", src, true)
	})
}

func checkDiagnostic(t *testing.T, src []byte, d *diag.Diagnostic) {
	t.Helper()
	r := d.Subject
	if d.Summary == "" || d.Severity != diag.Error {
		t.Errorf("diagnostic without summary or severity: %+v", d)
	}
	for _, p := range []diag.Pos{r.Start, r.End} {
		if p.Byte < 0 || p.Byte > len(src) {
			t.Errorf("%s: byte %d outside the source (%d bytes)", d.Summary, p.Byte, len(src))
			return
		}
		if want := posAt(src, p.Byte); p != want {
			t.Errorf("%s: position %+v disagrees with its byte offset (want %+v)", d.Summary, p, want)
		}
	}
	if r.End.Byte < r.Start.Byte {
		t.Errorf("%s: range ends before it starts", d.Summary)
	}
}
