package format_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowrun/flowrun/lang"
	"github.com/flowrun/flowrun/lang/format"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestFormatGolden formats every testdata/*.flow file, compares the result
// with testdata/*.golden, and checks that formatting the result again
// changes nothing.
func TestFormatGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.flow")
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
			got := formatSource(t, path, src)
			goldenPath := strings.TrimSuffix(path, ".flow") + ".golden"
			if *update {
				if err := os.WriteFile(goldenPath, got, 0o644); err != nil {
					t.Fatal(err)
				}
			} else if want, err := os.ReadFile(goldenPath); err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			} else if !bytes.Equal(got, want) {
				t.Errorf("format differs from %s (run with -update to accept):\n--- got\n%s\n--- want\n%s", goldenPath, got, want)
			}
			if again := formatSource(t, path, got); !bytes.Equal(again, got) {
				t.Errorf("formatting is not idempotent:\n--- once\n%s\n--- twice\n%s", got, again)
			}
		})
	}
}

func TestFormatEmpty(t *testing.T) {
	for _, src := range []string{"", "\n\n", "  \t\n"} {
		if got := formatSource(t, "empty.flow", []byte(src)); len(got) != 0 {
			t.Errorf("Format(%q) = %q, want nothing", src, got)
		}
	}
}

func formatSource(t *testing.T, name string, src []byte) []byte {
	t.Helper()
	f, ds := lang.Parse(name, src)
	if ds.HasErrors() {
		t.Fatalf("parsing %s: %v", name, ds)
	}
	return format.Format(f)
}
