package planner_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/flowrun/flowrun/lang"
	"github.com/flowrun/flowrun/lang/ast"
	"github.com/flowrun/flowrun/lang/diag"
	"github.com/flowrun/flowrun/planner"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// expectation is one `# ERROR "rx"` comment of a check file.
type expectation struct {
	line     int // 0 for a diagnostic about --var flags
	severity diag.Severity
	rx       *regexp.Regexp
	raw      string
	matched  bool
}

// markerRx finds `ERROR "rx"` or `WARNING "rx"` after a # or // comment
// marker; `ERROR(--var) "rx"` expects a diagnostic about a --var flag.
var (
	commentRx = regexp.MustCompile(`(#|//)\s*(ERROR|WARNING)`)
	markerRx  = regexp.MustCompile(`(ERROR|WARNING)(\(--var\))?\s+"((?:[^"\\]|\\.)*)"`)
	varsRx    = regexp.MustCompile(`^#\s*vars:\s*(.*)$`)
)

// expectations reads the expected diagnostics of a check file, and the --var
// flags given in a `# vars: k=v ...` line. A marker on a line with other text
// is about that line; a marker alone on its line is about the next line.
func expectations(t *testing.T, src []byte) ([]*expectation, map[string]string) {
	t.Helper()
	var out []*expectation
	vars := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if m := varsRx.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			for _, kv := range strings.Fields(m[1]) {
				k, v, _ := strings.Cut(kv, "=")
				vars[k] = v
			}
			continue
		}
		loc := commentRx.FindStringIndex(line)
		if loc == nil {
			continue
		}
		target := n
		if strings.TrimSpace(line[:loc[0]]) == "" {
			target = n + 1
		}
		for _, m := range markerRx.FindAllStringSubmatch(line[loc[0]:], -1) {
			sev := diag.Error
			if m[1] == "WARNING" {
				sev = diag.Warning
			}
			l := target
			if m[2] != "" {
				l = 0
			}
			pattern := strings.ReplaceAll(m[3], `\"`, `"`)
			rx, err := regexp.Compile(pattern)
			if err != nil {
				t.Fatalf("line %d: bad regexp %q: %v", n, pattern, err)
			}
			out = append(out, &expectation{line: l, severity: sev, rx: rx, raw: m[3]})
		}
	}
	return out, vars
}

// message is what an expectation's regexp is matched against.
func message(d *diag.Diagnostic) string {
	return strings.TrimSpace(d.Summary + ": " + d.Detail + " " + d.Hint)
}

// planFile parses and plans one file, returning every diagnostic.
func planFile(t *testing.T, path string, vars map[string]string) (*planner.Plan, diag.Diagnostics, []byte) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.ToSlash(path)
	f, ds := lang.Parse(name, src)
	p, pds := planner.Build([]*ast.File{f}, registry(), vars)
	return p, append(ds, pds...), src
}

// TestCheck plans every file of testdata/check and compares the diagnostics
// with the ERROR comments written in the file, then with the golden text and
// JSON renderings.
func TestCheck(t *testing.T) {
	paths, err := filepath.Glob("testdata/check/*.flow")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no check files: %v", err)
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".flow"), func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want, vars := expectations(t, src)
			if len(want) == 0 {
				t.Fatalf("%s expects no error: a check file must expect at least one", path)
			}
			_, ds, _ := planFile(t, path, vars)
			for _, d := range ds {
				line := d.Subject.Start.Line
				if d.Subject.Filename == "--var" {
					line = 0
				}
				found := false
				for _, e := range want {
					if !e.matched && e.line == line && e.severity == d.Severity && e.rx.MatchString(message(d)) {
						e.matched, found = true, true
						break
					}
				}
				if !found {
					t.Errorf("%s:%d: unexpected %s: %s", path, line, d.Severity, message(d))
				}
			}
			for _, e := range want {
				if !e.matched {
					t.Errorf("%s:%d: missing %s matching %q", path, e.line, e.severity, e.raw)
				}
			}

			var text bytes.Buffer
			if err := diag.WriteText(&text, ds, map[string][]byte{filepath.ToSlash(path): src}); err != nil {
				t.Fatal(err)
			}
			golden(t, strings.TrimSuffix(path, ".flow")+".golden.txt", text.Bytes())

			js, err := json.MarshalIndent(diag.Reports([]string{filepath.ToSlash(path)}, ds), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, strings.TrimSuffix(path, ".flow")+".golden.json", append(js, '\n'))
		})
	}
}

// TestPlan prints the plan of every file of testdata/plan, which must be
// valid, and compares it with its golden file.
func TestPlan(t *testing.T) {
	paths, err := filepath.Glob("testdata/plan/*.flow")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no plan files: %v", err)
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".flow"), func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			_, vars := expectations(t, src)
			p, ds, _ := planFile(t, path, vars)
			if ds.HasErrors() {
				t.Fatalf("%s is not valid:\n%v", path, ds)
			}
			var out bytes.Buffer
			if err := planner.Print(&out, p); err != nil {
				t.Fatal(err)
			}
			golden(t, strings.TrimSuffix(path, ".flow")+".golden.txt", out.Bytes())
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// golden compares got with the golden file path, or rewrites it with -update.
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
		t.Fatalf("%v (run go test ./planner -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test ./planner -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
