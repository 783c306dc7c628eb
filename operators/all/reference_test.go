package all_test

import (
	"bytes"
	"flag"
	"os"
	"testing"

	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/planner/expression"
)

var update = flag.Bool("update", false, "rewrite docs/operators.md from the schemas")

// TestReferenceIsCurrent keeps docs/operators.md equal to the reference
// generated from the registered schemas.
func TestReferenceIsCurrent(t *testing.T) {
	var got bytes.Buffer
	if err := all.Registry().WriteReference(&got); err != nil {
		t.Fatal(err)
	}
	const path = "../../docs/operators.md"
	if *update {
		if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./operators/all -update)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("docs/operators.md is out of date with the schemas; run go test ./operators/all -update")
	}
}

// TestLanguageReferenceNamesEveryFunction keeps docs/language.md listing
// every function an expression may call.
func TestLanguageReferenceNamesEveryFunction(t *testing.T) {
	doc, err := os.ReadFile("../../docs/language.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range expression.FunctionNames() {
		if !bytes.Contains(doc, []byte("`"+name+"`")) && !bytes.Contains(doc, []byte("`"+name+"(")) {
			t.Errorf("docs/language.md does not name the function %s", name)
		}
	}
}
