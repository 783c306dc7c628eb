package all_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowrun/flowrun/operators/all"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestReference compares the generated reference of every kind with
// testdata/reference.md; -update rewrites it.
func TestReference(t *testing.T) {
	var buf bytes.Buffer
	if err := all.WriteReference(&buf); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "reference.md")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(want, buf.Bytes()) {
		t.Errorf("the reference differs from %s; run go test ./operators/all -update and review the diff", golden)
	}
}
