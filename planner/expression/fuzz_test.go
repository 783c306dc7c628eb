package expression

import "testing"

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
