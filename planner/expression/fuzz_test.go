package expression

import (
	"fmt"
	"testing"
)

// FuzzCompile checks that compiling any text never panics and that every
// diagnostic points inside the expression.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		`level == "ERROR" && len(msg) > 0`, `uppr(msg)`, `var.rate * 2`, `var.nope`,
		"a &&\n  b.c(d)", `{a: 1, b: [1, 2]}`, `"é" + 1`, `all(tags, # != "x")`, `env("H") ?? "l"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		p, ds := Compile(src, at, testVars, Bool)
		if p == nil && len(ds) == 0 {
			t.Fatalf("Compile(%q): no program and no diagnostic", src)
		}
		end := at.Start.Byte + len(src)
		for _, d := range ds {
			s := d.Subject
			if s == at {
				continue // about the whole value
			}
			if s.Start.Byte < at.Start.Byte || s.End.Byte > end+1 || s.End.Byte < s.Start.Byte {
				t.Fatalf("Compile(%q): subject %+v outside the expression", src, s)
			}
		}
		if p != nil {
			var r Runner
			_, _ = r.Bool(p, map[string]any{"level": "ERROR", "msg": "x", "n": int64(3)})
		}
	})
}

// FuzzShortcuts checks that the ways around the VM agree with it: an object
// literal built field by field yields what the whole literal yields, and a
// `field == "text"` condition what the VM answers.
func FuzzShortcuts(f *testing.F) {
	for _, s := range []string{
		`{id: id, level: id % 3 == 0 ? "ERROR" : "INFO", msg: "x"}`, `{a: nil, b: true, c: 1.5, d: var.name}`,
		`{list: [1, id], o: {x: msg}}`, `level == "ERROR"`, `"INFO" != level`, `msg == ""`, `{a: 1 / 0}`,
	} {
		f.Add(s)
	}
	recs := []map[string]any{
		{"id": int64(9), "level": "ERROR", "msg": "disk full"},
		{"id": 2.5, "level": int64(1), "msg": nil},
		{},
	}
	f.Fuzz(func(t *testing.T, src string) {
		p, ds := Compile(src, at, testVars, Any)
		if len(ds) > 0 {
			return
		}
		var r Runner
		if obj, ok := p.Object(); ok {
			for _, rec := range recs {
				whole, werr := r.Run(p, rec)
				byField, ferr := r.Object(obj, rec)
				if (werr == nil) != (ferr == nil) {
					t.Fatalf("%s on %v: whole error %v, by field %v", src, rec, werr, ferr)
				}
				if werr == nil && fmt.Sprintf("%#v", whole) != fmt.Sprintf("%#v", byField) {
					t.Fatalf("%s on %v: whole %#v, by field %#v", src, rec, whole, byField)
				}
			}
		}
		if eq := fieldEqualsOf(p.program.Node()); eq != nil {
			for _, rec := range recs {
				out, err := r.vm.Run(p.program, rec)
				if err == nil && out != eq.eval(rec) {
					t.Fatalf("%s on %v: shortcut %v, VM %v", src, rec, eq.eval(rec), out)
				}
			}
		}
	})
}
