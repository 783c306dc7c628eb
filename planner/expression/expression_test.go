package expression

import (
	"fmt"
	"strings"
	"testing"

	"github.com/flowrun/flowrun/lang/diag"
)

// at is where the test expressions are written: line 5, column 11, byte 100.
var at = diag.Range{Filename: "x.flow", Start: diag.Pos{Line: 5, Column: 11, Byte: 100}}

var testVars = map[string]any{"rate": int64(100), "name": "api", "ratio": 0.5, "on": true}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		want    Kind
		summary string
		detail  string // a substring of the detail
		hint    string
		pos     string // line:column:byte of the subject's start
		end     string // line:column of the subject's end, when checked
	}{
		{name: "syntax", src: "level ==", summary: "Invalid expression syntax", detail: "Unexpected token EOF", pos: "5:18:107"},
		{name: "single equals", src: `level = "ERROR"`, summary: "Invalid expression syntax", hint: "Expressions compare with == and build objects with {key: value}; a single = is not an operator.", pos: "5:17:106"},
		{name: "unclosed paren", src: "len(msg", summary: "Invalid expression syntax", pos: "5:17:106"},
		{name: "string minus int", src: `"a" - 1`, summary: "Invalid expression", detail: "mismatched types string and int", pos: "5:15:104"},
		{name: "not a bool", src: "1 + 1", want: Bool, summary: "Condition is not a boolean", detail: "yields an integer", pos: "5:11:100", end: "5:16"},
		{name: "arithmetic on a field is not a bool", src: "size + 1", want: Bool, summary: "Condition is not a boolean", detail: "result of +", pos: "5:11:100", end: "5:19"},
		{name: "string not a bool", src: `upper(msg)`, want: Bool, summary: "Condition is not a boolean", detail: "a string", pos: "5:11:100"},
		{name: "unknown function with hint", src: "uppr(msg)", summary: "Unknown function", detail: `no function named "uppr"`, hint: `Did you mean "upper"?`, pos: "5:11:100", end: "5:15"},
		{name: "unknown function, our own", src: `enw("HOST") ?? "x"`, summary: "Unknown function", hint: `Did you mean "env"?`, pos: "5:11:100"},
		{name: "unknown function without hint", src: "frobnicate(x)", summary: "Unknown function", pos: "5:11:100"},
		{name: "unknown function after unicode", src: `"é" + lowr(x)`, summary: "Unknown function", hint: `Did you mean "lower"?`, pos: "5:18:107"},
		{name: "method call", src: "msg.upper()", summary: "Unknown function", hint: "Write upper(value) instead.", pos: "5:15:104"},
		{name: "unknown var", src: "x > var.rat", summary: "Unknown variable", hint: "Did you mean var.rate?", pos: "5:15:104", end: "5:22"},
		{name: "bare var", src: "var", summary: "Incomplete variable reference", pos: "5:11:100"},
		{name: "dynamic var", src: "var[x]", summary: "Invalid variable reference", pos: "5:11:100"},
		{name: "var of wrong type", src: `var.name - 1`, summary: "Invalid expression", detail: "mismatched types string and int", pos: "5:20:109"},
		{name: "wrong argument type", src: "upper(1)", summary: "Invalid expression", detail: "Cannot use int as argument", pos: "5:17:106"},
		{name: "env needs a string", src: "env(1)", summary: "Invalid expression", pos: "5:15:104"},
		{name: "multi-line, second line", src: "1 +\n  (2 *\n \"é\" - 3)", summary: "Invalid expression", detail: "mismatched types int and string", pos: "6:6:109"},
		{name: "multi-line, third line after unicode", src: "a &&\n  b &&\n  \"é\" + uper(c)", summary: "Unknown function", hint: `Did you mean "upper"?`, pos: "7:10:121"},
		{name: "empty", src: "  ", summary: "Empty expression", pos: "5:11:100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ds := Compile(tt.src, at, testVars, tt.want)
			if p != nil {
				t.Fatalf("Compile(%q) = program, want an error", tt.src)
			}
			if len(ds) != 1 {
				t.Fatalf("Compile(%q): %d diagnostics, want 1:\n%v", tt.src, len(ds), ds)
			}
			d := ds[0]
			if d.Severity != diag.Error || d.Summary != tt.summary {
				t.Errorf("summary = %s %q, want error %q", d.Severity, d.Summary, tt.summary)
			}
			if !strings.Contains(d.Detail, tt.detail) {
				t.Errorf("detail = %q, want it to contain %q", d.Detail, tt.detail)
			}
			if d.Hint != tt.hint {
				t.Errorf("hint = %q, want %q", d.Hint, tt.hint)
			}
			s := d.Subject
			if got := fmt.Sprintf("%d:%d:%d", s.Start.Line, s.Start.Column, s.Start.Byte); got != tt.pos {
				t.Errorf("subject starts at %s, want %s", got, tt.pos)
			}
			if tt.end != "" {
				if got := fmt.Sprintf("%d:%d", s.End.Line, s.End.Column); got != tt.end {
					t.Errorf("subject ends at %s, want %s", got, tt.end)
				}
			}
			if s.Filename != "x.flow" {
				t.Errorf("filename = %q", s.Filename)
			}
		})
	}
}

func TestCompileOK(t *testing.T) {
	tests := []struct {
		src  string
		want Kind
	}{
		{`level == "ERROR" && len(msg) > 0`, Bool},
		{`id % 3 == 0`, Bool},
		{`flag`, Bool},
		{`all(tags, # != "debug")`, Bool},
		{`env("HOST") ?? "local"`, Any},
		{`upper(trim(msg))`, Any},
		{`{service: service, level: lower(level)}`, Any},
		{`level in ["WARN", "ERROR"]`, Bool},
		{"count > var.rate\n  // a comment\n  && var.on", Bool},
		{`split(path, "/")`, Any},
		{`now()`, Any},
		{`now().Unix()`, Any},
		{`count + sum + env`, Any},
		{`env(env)`, Any},
	}
	for _, tt := range tests {
		p, ds := Compile(tt.src, at, testVars, tt.want)
		if len(ds) > 0 || p == nil {
			t.Errorf("Compile(%q): %v", tt.src, ds)
			continue
		}
		if p.Source != tt.src || p.Range != at || p.Kind != tt.want {
			t.Errorf("Compile(%q) = %+v", tt.src, p)
		}
	}
}

func TestRun(t *testing.T) {
	t.Setenv("FLOWRUN_TEST_HOST", "box")
	rec := map[string]any{"id": int64(9), "level": "ERROR", "msg": "disk full", "tags": []any{"a", "b"}, "n": int64(300), "count": int64(5), "keys": []any{1, 2}}
	tests := []struct {
		src  string
		want any
	}{
		{`id % 3 == 0`, true},
		{`id + 1`, int64(10)},
		{`n * 2`, int64(600)},
		{`id / 2`, 4.5},
		{`upper(msg)`, "DISK FULL"},
		{`var.rate * 2`, int64(200)},
		{`var.ratio`, 0.5},
		{`var.name + "-" + level`, "api-ERROR"},
		{`missing`, nil},
		{`missing ?? "dflt"`, "dflt"},
		{`env("FLOWRUN_TEST_HOST") ?? "local"`, "box"},
		{`env("FLOWRUN_TEST_UNSET_XYZ") ?? "local"`, "local"},
		{`len(tags)`, int64(2)},
		{`[1, id]`, []any{int64(1), int64(9)}},
		{`{a: 1, b: {c: 2}}`, map[string]any{"a": int64(1), "b": map[string]any{"c": int64(2)}}},
		{`split("a/b", "/")`, []string{"a", "b"}},
		{`count * 2`, int64(10)},
		{`env ?? "none"`, "none"},
		{`len(keys)`, int64(2)},
		{`{id: id, level: id % 3 == 0 ? "ERROR" : "INFO", msg: "x"}`, map[string]any{"id": int64(9), "level": "ERROR", "msg": "x"}},
		{`{rest: id % 5}`, map[string]any{"rest": int64(4)}},
		{`id > 3 ? 1 : "small"`, int64(1)},
		{`[1.5, msg, tags]`, []any{1.5, "disk full", []any{"a", "b"}}},
	}
	var r Runner
	for _, tt := range tests {
		p, ds := Compile(tt.src, at, testVars, Any)
		if len(ds) > 0 {
			t.Fatalf("Compile(%q): %v", tt.src, ds)
		}
		got, err := r.Run(p, rec)
		if err != nil {
			t.Errorf("Run(%q): %v", tt.src, err)
			continue
		}
		if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", tt.want) {
			t.Errorf("Run(%q) = %#v, want %#v", tt.src, got, tt.want)
		}
	}
}

// TestYieldsNormalized: Run skips the normalizing walk only for programs
// that cannot yield an int or float32 anywhere in their result.
func TestYieldsNormalized(t *testing.T) {
	tests := []struct {
		src  string
		want bool
	}{
		{`{id: seq, level: seq % 5 == 0 ? "ERROR" : "INFO", msg: "hello world"}`, true},
		{`upper(msg)`, true},
		{`msg`, true},
		{`user.id`, true},
		{`[msg, 1.5, nil, true]`, true},
		{`var.name`, true},
		{`var.rate`, false}, // patched to an integer literal, which expr runs as int
		{`{n: 1}`, false},
		{`seq % 5`, false},
		{`len(msg)`, false},
		{`[1, 2]`, false},
		{`seq > 1 ? seq : 0`, false},
	}
	for _, tt := range tests {
		p, ds := Compile(tt.src, at, testVars, Any)
		if len(ds) > 0 {
			t.Fatalf("Compile(%q): %v", tt.src, ds)
		}
		if p.normalized != tt.want {
			t.Errorf("Compile(%q).normalized = %v, want %v", tt.src, p.normalized, tt.want)
		}
	}
}

func TestRunDoesNotModifyConstants(t *testing.T) {
	p, ds := Compile(`[1, 2]`, at, nil, Any)
	if len(ds) > 0 {
		t.Fatal(ds)
	}
	var r Runner
	for range 2 {
		got, err := r.Run(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprintf("%#v", got) != `[]interface {}{1, 2}` {
			t.Fatalf("Run = %#v", got)
		}
	}
}

func TestBool(t *testing.T) {
	tests := []struct {
		src     string
		rec     map[string]any
		want    bool
		wantErr string
	}{
		{`level == "ERROR"`, map[string]any{"level": "ERROR"}, true, ""},
		{`level == "ERROR"`, map[string]any{"level": "INFO"}, false, ""},
		{`flag`, map[string]any{}, false, ""},
		{`flag`, map[string]any{"flag": true}, true, ""},
		{`flag`, map[string]any{"flag": "yes"}, false, "x.flow:5:11: condition yielded string, not a bool"},
		{`len(msg) > 0`, map[string]any{}, false, "x.flow:5:11: invalid argument for len"},
		{"a &&\n  b.c.d", map[string]any{"a": true}, false, "x.flow:6:5: cannot fetch"},
	}
	var r Runner
	for _, tt := range tests {
		p, ds := Compile(tt.src, at, nil, Bool)
		if len(ds) > 0 {
			t.Fatalf("Compile(%q): %v", tt.src, ds)
		}
		got, err := r.Bool(p, tt.rec)
		if tt.wantErr != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("Bool(%q, %v) error = %v, want prefix %q", tt.src, tt.rec, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Bool(%q, %v) = %v, %v; want %v", tt.src, tt.rec, got, err, tt.want)
		}
	}
}

func TestFunctionNames(t *testing.T) {
	names := FunctionNames()
	for _, want := range []string{"env", "upper", "lower", "trim", "len", "split", "now"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("FunctionNames() lacks %q", want)
		}
	}
}

func TestPredicateRunDoesNotAllocate(t *testing.T) {
	p, ds := Compile(`level == "ERROR" && len(msg) > 0 && id % 3 == 0`, at, testVars, Bool)
	if len(ds) > 0 {
		t.Fatal(ds)
	}
	rec := map[string]any{"level": "ERROR", "msg": "disk full", "id": int64(9)}
	var r Runner
	allocs := testing.AllocsPerRun(1000, func() {
		ok, err := r.Bool(p, rec)
		if err != nil || !ok {
			t.Fatalf("Bool = %v, %v", ok, err)
		}
	})
	if allocs != 0 {
		t.Errorf("a predicate run allocates %v times, want 0", allocs)
	}
}

func BenchmarkPredicate(b *testing.B) {
	p, ds := Compile(`level == "ERROR" && len(msg) > 0 && id % 3 == 0`, at, testVars, Bool)
	if len(ds) > 0 {
		b.Fatal(ds)
	}
	rec := map[string]any{"level": "ERROR", "msg": "disk full", "id": int64(9)}
	var r Runner
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Bool(p, rec); err != nil {
			b.Fatal(err)
		}
	}
}

// TestProgramSharedAcrossGoroutines runs one program from several
// goroutines, each with its own Runner, as stages do; run it with -race.
func TestProgramSharedAcrossGoroutines(t *testing.T) {
	p, ds := Compile(`{n: id * 2, tags: [1, 2], name: upper(name)}`, at, testVars, Any)
	if len(ds) > 0 {
		t.Fatal(ds)
	}
	errs := make(chan error, 4)
	for g := range 4 {
		go func() {
			var r Runner
			for i := range 200 {
				out, err := r.Run(p, map[string]any{"id": int64(i), "name": "x"})
				if err != nil {
					errs <- err
					return
				}
				m := out.(map[string]any)
				if m["n"] != int64(2*i) || m["name"] != "X" {
					errs <- fmt.Errorf("goroutine %d: run %d = %v", g, i, m)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestFieldEqualsShortcut: conditions `field == "text"` skip the VM and
// agree with it on every kind of field value.
func TestFieldEqualsShortcut(t *testing.T) {
	recs := []map[string]any{
		{"level": "ERROR"}, {"level": "INFO"}, {"level": ""}, {}, {"level": nil},
		{"level": int64(5)}, {"level": 5.0}, {"level": true}, {"level": []any{"ERROR"}},
	}
	for _, src := range []string{`level == "ERROR"`, `"ERROR" == level`, `level != "ERROR"`, `level == ""`, `"" != level`} {
		p, ds := Compile(src, at, nil, Bool)
		if len(ds) > 0 {
			t.Fatalf("Compile(%q): %v", src, ds)
		}
		if p.equals == nil {
			t.Fatalf("%s: no shortcut", src)
		}
		var r Runner
		for _, rec := range recs {
			got, err := r.Bool(p, rec)
			if err != nil {
				t.Fatalf("Bool(%q, %v): %v", src, rec, err)
			}
			out, err := r.vm.Run(p.program, rec)
			if err != nil {
				t.Fatalf("VM(%q, %v): %v", src, rec, err)
			}
			if got != out {
				t.Errorf("%s on %v: shortcut %v, VM %v", src, rec, got, out)
			}
		}
	}
	for _, src := range []string{`level == upper("error")`, `level == 5`, `a == b`, `level > "A"`} {
		p, ds := Compile(src, at, nil, Bool)
		if len(ds) > 0 {
			t.Fatalf("Compile(%q): %v", src, ds)
		}
		if p.equals != nil {
			t.Errorf("%s: a shortcut for a condition of another form", src)
		}
	}
}
