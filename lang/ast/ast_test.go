package ast_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/lang"
	"github.com/flowrun/flowrun/lang/ast"
)

const src = `# top
var "rate" { default = 100 }
pipeline "p" {
  edge_capacity = 1024
  source logs {
    kind = "file"
  }
  sink "out" "extra" {
    from = logs
  }
}
`

func parse(t *testing.T) *ast.File {
	t.Helper()
	f, ds := lang.Parse("a.flow", []byte(src))
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	return f
}

func TestBodyHelpers(t *testing.T) {
	f := parse(t)
	if got := len(f.Body.Items); got != 3 {
		t.Fatalf("top level has %d items, want 3 (comment, var, pipeline)", got)
	}
	p := f.Body.BlocksOfType("pipeline")
	if len(p) != 1 || p[0].Label(0) != "p" {
		t.Fatalf("BlocksOfType(pipeline) = %v", p)
	}
	body := p[0].Body
	if a := body.Attribute("edge_capacity"); a == nil || a.Value.Raw != "1024" {
		t.Errorf("Attribute(edge_capacity) = %v", a)
	}
	if a := body.Attribute("missing"); a != nil {
		t.Errorf("Attribute(missing) = %v, want nil", a)
	}
	var types []string
	for _, b := range body.Blocks() {
		types = append(types, b.Type+":"+b.Label(0)+":"+b.Label(1))
	}
	if got, want := strings.Join(types, " "), "source:logs: sink:out:extra"; got != want {
		t.Errorf("Blocks() = %s, want %s", got, want)
	}
	if got := len(body.Attributes()); got != 1 {
		t.Errorf("Attributes() has %d, want 1", got)
	}
	src := body.Blocks()[0]
	if src.Labels[0].Quoted || !body.Blocks()[1].Labels[0].Quoted {
		t.Error("a bare label is not quoted, a string label is")
	}
	if got := src.Label(5); got != "" {
		t.Errorf("Label(5) = %q, want empty", got)
	}
	var nilBody *ast.Body
	if nilBody.Attribute("x") != nil || nilBody.Blocks() != nil || nilBody.Attributes() != nil {
		t.Error("helpers on a nil body return nothing")
	}
}

func TestRanges(t *testing.T) {
	f := parse(t)
	p := f.Body.Blocks()[1]
	checks := map[string]string{
		"pipeline block": slice(p.Range().Start.Byte, p.Range().End.Byte),
		"type":           slice(p.TypeRange().Start.Byte, p.TypeRange().End.Byte),
		"attribute":      slice(p.Body.Attributes()[0].Range().Start.Byte, p.Body.Attributes()[0].Range().End.Byte),
		"name":           slice(p.Body.Attributes()[0].NameRange().Start.Byte, p.Body.Attributes()[0].NameRange().End.Byte),
		"label":          slice(p.Labels[0].Range().Start.Byte, p.Labels[0].Range().End.Byte),
	}
	want := map[string]string{
		"pipeline block": src[strings.Index(src, "pipeline") : strings.LastIndex(src, "}")+1],
		"type":           "pipeline",
		"attribute":      "edge_capacity = 1024",
		"name":           "edge_capacity",
		"label":          `"p"`,
	}
	if diff := cmp.Diff(want, checks); diff != "" {
		t.Errorf("ranges cover the wrong text (-want +got):\n%s", diff)
	}
	if r := f.Range(); r.Start.Byte != 0 || r.End.Byte != len(src) || r.End.Line != strings.Count(src, "\n")+1 {
		t.Errorf("file range %+v does not span the source", r)
	}
}

func slice(from, to int) string { return src[from:to] }

func TestWalkOrder(t *testing.T) {
	f := parse(t)
	var seen []string
	ast.Walk(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.Block:
			seen = append(seen, "block "+n.Type)
			return n.Type != "var" // do not descend into var
		case *ast.Attribute:
			seen = append(seen, "attr "+n.Name)
		case *ast.Comment:
			seen = append(seen, "comment")
		}
		return true
	})
	want := []string{"comment", "block var", "block pipeline", "attr edge_capacity", "block source", "attr kind", "block sink", "attr from"}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("Walk order (-want +got):\n%s", diff)
	}
}

func TestGo(t *testing.T) {
	f, ds := lang.Parse("v.flow", []byte("a = [1, 2.5, \"s\", true, null, { k = [] }]\nb = [x]\n"))
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	lit, ds := lang.ParseValue(f.Body.Attribute("a").Value)
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	got, ok := ast.Go(lit)
	want := []any{int64(1), 2.5, "s", true, nil, map[string]any{"k": []any{}}}
	if !ok {
		t.Fatal("Go refused a plain literal")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Go (-want +got):\n%s", diff)
	}
	ref, _ := lang.ParseValue(f.Body.Attribute("b").Value)
	if _, ok := ast.Go(ref); ok {
		t.Error("Go accepted a list holding a reference")
	}
	obj := lit.(*ast.List).Elems[5].(*ast.Object)
	if obj.Get("k") == nil || obj.Get("missing") != nil {
		t.Error("Object.Get finds keys that exist and only those")
	}
}
