package lang_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alecthomas/participle/v2/lexer"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/flowrun/flowrun/lang"
	"github.com/flowrun/flowrun/lang/ast"
	"github.com/flowrun/flowrun/lang/format"
)

// sameTree compares two parsed files ignoring positions and layout: the
// source, and the whitespace at the ends of the lines of raw values and
// comments (which Format re-indents). Values that are literals are compared
// as decoded literals.
var sameTree = cmp.Options{
	cmp.Comparer(func(a, b lexer.Position) bool { return true }),
	cmpopts.IgnoreFields(ast.File{}, "Src"),
	cmp.Comparer(func(a, b *ast.Value) bool {
		if a == nil || b == nil {
			return a == b
		}
		la, da := lang.ParseValue(a)
		lb, db := lang.ParseValue(b)
		if !da.HasErrors() && !db.HasErrors() {
			return cmp.Equal(la, lb, cmp.Comparer(func(a, b lexer.Position) bool { return true }))
		}
		return da.HasErrors() == db.HasErrors() && trimLines(a.Raw) == trimLines(b.Raw)
	}),
	cmp.Comparer(func(a, b *ast.Comment) bool {
		if a == nil || b == nil {
			return a == b
		}
		return a.Trailing == b.Trailing && trimLines(a.Text) == trimLines(b.Text)
	}),
}

// trimLines removes the whitespace at both ends of every line of s.
func trimLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.Join(lines, "\n")
}

// shape renders a tree without positions or layout, for comparing trees
// quickly: what sameTree compares, as text.
func shape(f *ast.File) string {
	var b strings.Builder
	ast.Walk(f.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.Body:
			fmt.Fprintf(&b, "body %d\n", len(n.Items))
		case *ast.Block:
			fmt.Fprintf(&b, "block %s %d\n", n.Type, len(n.Labels))
		case *ast.Label:
			fmt.Fprintf(&b, "label %q %q %v\n", n.Raw, n.Value, n.Quoted)
		case *ast.Attribute:
			fmt.Fprintf(&b, "attr %s\n", n.Name)
		case *ast.Value:
			if lit, ds := lang.ParseValue(n); !ds.HasErrors() {
				v, ok := ast.Go(lit)
				fmt.Fprintf(&b, "literal %T %#v %v\n", lit, v, ok)
				if !ok {
					fmt.Fprintf(&b, "raw %q\n", trimLines(n.Raw))
				}
			} else {
				fmt.Fprintf(&b, "raw %q\n", trimLines(n.Raw))
			}
		case *ast.Comment:
			fmt.Fprintf(&b, "comment %q %v\n", trimLines(n.Text), n.Trailing)
		}
		return true
	})
	return b.String()
}

// checkRoundTrip asserts that a file that parses cleanly formats to text
// that parses to the same tree, and that formatting that text again
// changes nothing. quick compares trees by their shape first, for fuzzing.
func checkRoundTrip(t *testing.T, name string, src []byte, quick bool) {
	t.Helper()
	f, ds := lang.Parse(name, src)
	if ds.HasErrors() {
		t.Fatalf("%s does not parse: %v", name, ds)
	}
	once := format.Format(f)
	f2, ds := lang.Parse(name, once)
	if ds.HasErrors() {
		t.Fatalf("formatted %s does not parse: %v\n%s", name, ds, once)
	}
	// With quick set, shape is the test of equality and go-cmp explains a
	// difference; otherwise go-cmp judges.
	if !quick || shape(f) != shape(f2) {
		if diff := cmp.Diff(f, f2, sameTree); diff != "" {
			t.Errorf("formatting %s changed its tree (-before +after):\n%s\nformatted:\n%s", name, diff, once)
		} else if quick {
			t.Errorf("formatting %s changed its shape:\n%s\n---\n%s", name, shape(f), shape(f2))
		}
	}
	if twice := format.Format(f2); !bytes.Equal(once, twice) {
		t.Errorf("formatting %s is not idempotent:\n--- once\n%s\n--- twice\n%s", name, once, twice)
	}
}

// TestRoundTrip checks every example pipeline and every test file of the
// lang packages that parses without errors.
func TestRoundTrip(t *testing.T) {
	pipelines, err := filepath.Glob("../pipelines/*.flow")
	if err != nil {
		t.Fatal(err)
	}
	if len(pipelines) == 0 {
		t.Fatal("no example pipelines found in ../pipelines")
	}
	for _, path := range pipelines {
		t.Run(path, func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			checkRoundTrip(t, path, src, false)
		})
	}
	var clean int
	err = filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".flow") || !strings.Contains(path, "testdata") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		// Files that exist to show syntax errors have nothing to round-trip.
		if _, ds := lang.Parse(path, src); ds.HasErrors() {
			return nil
		}
		clean++
		t.Run(path, func(t *testing.T) { checkRoundTrip(t, path, src, false) })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if clean < 10 {
		t.Errorf("only %d error-free .flow files under lang/; the test data went missing", clean)
	}
}
