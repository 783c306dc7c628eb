package planner_test

import (
	"strings"
	"testing"

	"github.com/flowrun/flowrun/lang"
	"github.com/flowrun/flowrun/lang/ast"
	"github.com/flowrun/flowrun/planner"
)

// planOf plans .flow files given as name → source.
func planOf(t *testing.T, files map[string]string) *planner.Plan {
	t.Helper()
	var parsed []*ast.File
	for _, name := range []string{"dir/a.flow", "dir/b.flow", "other/a.flow"} {
		src, ok := files[name]
		if !ok {
			continue
		}
		f, ds := lang.Parse(name, []byte(src))
		if ds.HasErrors() {
			t.Fatalf("parse %s: %v", name, ds)
		}
		parsed = append(parsed, f)
	}
	p, ds := planner.Build(parsed, registry(), nil)
	if ds.HasErrors() {
		t.Fatalf("plan: %v", ds)
	}
	return p
}

const diffBase = `
var "tag" { default = "x" }
pipeline "p" {
  source "in" {
    kind = "generate"
    count = 3
  }
  map "m" {
    from = in
    set { v = "A" }
  }
  sink "out" {
    from = m
    kind = "discard"
  }
}
`

const diffOther = `
pipeline "q" {
  source "in" {
    kind = "generate"
  }
  sink "out" {
    from = in
    kind = "discard"
  }
}
`

func TestDiff(t *testing.T) {
	tests := []struct {
		name string
		old  map[string]string
		new  map[string]string
		want string
	}{
		{
			name: "same text",
			old:  map[string]string{"dir/a.flow": diffBase},
			new:  map[string]string{"dir/a.flow": diffBase},
			want: "  p\n",
		},
		{
			name: "comments, layout and file do not count",
			old:  map[string]string{"dir/a.flow": diffBase},
			new: map[string]string{"dir/b.flow": "# moved\n" + `
var "tag" { default = "x" }
pipeline "p" {
  source "in" { kind = "generate"; count = 3 }
  map "m" {
    from = in
    set {
      v = "A"   // same
    }
  }
  sink "out" {
    from = m
    kind = "discard"
  }
}`},
			want: "  p\n",
		},
		{
			name: "an expression changes",
			old:  map[string]string{"dir/a.flow": diffBase},
			new:  map[string]string{"dir/a.flow": replace(diffBase, `v = "A"`, `v = "B"`)},
			want: "~ p (~m)\n",
		},
		{
			name: "an option changes",
			old:  map[string]string{"dir/a.flow": diffBase},
			new:  map[string]string{"dir/a.flow": replace(diffBase, "count = 3", "count = 4")},
			want: "~ p (~in)\n",
		},
		{
			name: "a stage is inserted",
			old:  map[string]string{"dir/a.flow": diffBase},
			new: map[string]string{"dir/a.flow": replace(diffBase, `  sink "out" {
    from = m`, `  filter "f" {
    from = m
    where = v != ""
  }
  sink "out" {
    from = f`)},
			want: "~ p (~m +f ~out)\n",
		},
		{
			name: "edge capacity changes the edges",
			old:  map[string]string{"dir/a.flow": diffBase},
			new:  map[string]string{"dir/a.flow": replace(diffBase, `pipeline "p" {`, "pipeline \"p\" {\n  edge_capacity = 8")},
			want: "~ p (~in ~m ~out)\n",
		},
		{
			name: "another directory",
			old:  map[string]string{"dir/a.flow": diffBase},
			new:  map[string]string{"other/a.flow": diffBase},
			want: "~ p (directory dir -> other)\n",
		},
		{
			name: "a variable an expression reads",
			old:  map[string]string{"dir/a.flow": replace(diffBase, `v = "A"`, `v = var.tag`)},
			new:  map[string]string{"dir/a.flow": replace(replace(diffBase, `v = "A"`, `v = var.tag`), `default = "x"`, `default = "y"`)},
			want: "~ p (~m)\n",
		},
		{
			name: "a variable nothing reads",
			old:  map[string]string{"dir/a.flow": diffBase},
			new:  map[string]string{"dir/a.flow": replace(diffBase, `default = "x"`, `default = "y"`)},
			want: "  p\n",
		},
		{
			name: "pipelines added and removed",
			old:  map[string]string{"dir/a.flow": diffBase},
			new:  map[string]string{"dir/b.flow": diffOther},
			want: "+ q\n- p\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := planner.Diff(planOf(t, tt.old), planOf(t, tt.new)).String()
			if got != tt.want {
				t.Errorf("Diff:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestDiffFromNothing(t *testing.T) {
	ch := planner.Diff(nil, planOf(t, map[string]string{"dir/a.flow": diffBase}))
	if len(ch.Pipelines) != 1 || ch.Pipelines[0].Change != planner.Added || ch.Pipelines[0].New == nil {
		t.Fatalf("Diff(nil, plan) = %+v, want p added", ch)
	}
}

// replace replaces the one occurrence of old in s.
func replace(s, old, new string) string {
	if strings.Count(s, old) != 1 {
		panic("replace: want one " + old)
	}
	return strings.Replace(s, old, new, 1)
}
