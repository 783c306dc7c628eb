package lang_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/flowrun/flowrun/lang"
	"github.com/flowrun/flowrun/lang/ast"
	"github.com/flowrun/flowrun/lang/diag"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with the golden file at path, or rewrites it with
// -update.
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

// dump renders a parsed file as an indented tree with the range of every
// node, decoding each attribute value with ParseValue, then the
// diagnostics as text.
func dump(f *ast.File, ds diag.Diagnostics) []byte {
	var b bytes.Buffer
	depth := 0
	var walk func(n ast.Node)
	line := func(format string, args ...any) {
		fmt.Fprintf(&b, "%s%s\n", strings.Repeat("  ", depth), fmt.Sprintf(format, args...))
	}
	walk = func(n ast.Node) {
		r := rng(n.Range())
		switch n := n.(type) {
		case *ast.Block:
			labels := make([]string, len(n.Labels))
			for i, l := range n.Labels {
				labels[i] = fmt.Sprintf("%q", l.Value)
				if !l.Quoted {
					labels[i] = l.Value
				}
			}
			line("block %s %s %s", n.Type, strings.Join(labels, " "), r)
			depth++
			for _, it := range n.Body.Items {
				walk(it)
			}
			depth--
		case *ast.Attribute:
			line("attr %s %s value %s %q", n.Name, r, rng(n.Value.Range()), n.Value.Raw)
			depth++
			lit, vds := lang.ParseValue(n.Value)
			if lit != nil {
				walk(lit)
			} else {
				line("not a literal: %s", vds[0].Summary)
			}
			depth--
		case *ast.Comment:
			kind := "comment"
			if n.Trailing {
				kind = "trailing comment"
			}
			line("%s %q %s", kind, n.Text, r)
		case *ast.String:
			line("string %q %s", n.Value, r)
		case *ast.Number:
			if n.IsInt {
				line("int %d %s", n.Int, r)
			} else {
				line("float %v %s", n.Float, r)
			}
		case *ast.Bool:
			line("bool %v %s", n.Value, r)
		case *ast.Null:
			line("null %s", r)
		case *ast.Ref:
			line("ref %s %s", n, r)
		case *ast.List:
			line("list %s", r)
			depth++
			for _, e := range n.Elems {
				walk(e)
			}
			depth--
		case *ast.Object:
			line("object %s", r)
			depth++
			for _, it := range n.Items {
				line("key %q %s", it.Key.Value, rng(it.Key.Range()))
				depth++
				walk(it.Value)
				depth--
			}
			depth--
		}
	}
	for _, it := range f.Body.Items {
		walk(it)
	}
	if len(ds) > 0 {
		b.WriteString("---\n")
		if err := diag.WriteText(&b, ds, map[string][]byte{f.Filename: f.Src}); err != nil {
			fmt.Fprintf(&b, "writing diagnostics: %v\n", err)
		}
	}
	return b.Bytes()
}

func rng(r diag.Range) string {
	return fmt.Sprintf("%d:%d-%d:%d", r.Start.Line, r.Start.Column, r.End.Line, r.End.Column)
}

// checkRanges verifies that every node of the file, and of every literal
// value, has a range whose lines and columns agree with its byte offsets,
// lies inside the source, and does not end before it starts.
func checkRanges(t *testing.T, f *ast.File) {
	t.Helper()
	check := func(n ast.Node) bool {
		r := n.Range()
		if r.Filename != f.Filename {
			t.Errorf("%T %s: filename %q, want %q", n, rng(r), r.Filename, f.Filename)
		}
		for _, p := range []diag.Pos{r.Start, r.End} {
			if p.Byte < 0 || p.Byte > len(f.Src) {
				t.Errorf("%T %s: byte %d outside the source (%d bytes)", n, rng(r), p.Byte, len(f.Src))
				return false
			}
			want := posAt(f.Src, p.Byte)
			if p != want {
				t.Errorf("%T: position %+v disagrees with its byte offset (want %+v)", n, p, want)
			}
		}
		if r.End.Byte < r.Start.Byte {
			t.Errorf("%T %s: ends before it starts", n, rng(r))
		}
		return true
	}
	ast.Walk(f.Body, func(n ast.Node) bool {
		if _, isBody := n.(*ast.Body); !isBody && !check(n) {
			return false
		}
		if a, ok := n.(*ast.Attribute); ok {
			if got := string(f.Src[a.Value.Range().Start.Byte:a.Value.Range().End.Byte]); got != a.Value.Raw {
				t.Errorf("value range covers %q, raw is %q", got, a.Value.Raw)
			}
			if lit, _ := lang.ParseValue(a.Value); lit != nil {
				ast.Walk(lit, check)
			}
		}
		return true
	})
}

// posAt computes the position of byte offset off in src.
func posAt(src []byte, off int) diag.Pos {
	line := 1 + bytes.Count(src[:off], []byte("\n"))
	ls := bytes.LastIndexByte(src[:off], '\n') + 1
	return diag.Pos{Line: line, Column: off - ls + 1, Byte: off}
}
