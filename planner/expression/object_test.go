package expression

import (
	"fmt"
	"testing"
)

// TestObject: an object literal with constant keys is compiled field by
// field, and building it that way yields what running it whole yields.
func TestObject(t *testing.T) {
	rec := map[string]any{"id": int64(9), "msg": "disk full", "tags": []any{"a"}}
	tests := []struct {
		src    string
		object bool
	}{
		{`{id: id, level: id % 3 == 0 ? "ERROR" : "INFO", msg: "x"}`, true},
		{`{a: nil, b: true, c: 1.5, d: "s", e: 7, f: missing}`, true},
		{`{rate: var.rate, name: var.name, shout: upper(msg)}`, true},
		{`{list: [1, id], nested: {x: id}, tags: tags}`, true},
		{`{}`, true},
		{`[1, id]`, false},
		{`{a: 1, a: 2}`, false},
		{`id > 3 ? {a: 1} : {b: 2}`, false},
		{`upper(msg)`, false},
	}
	var r Runner
	for _, tt := range tests {
		p, ds := Compile(tt.src, at, testVars, Any)
		if len(ds) > 0 {
			t.Fatalf("Compile(%q): %v", tt.src, ds)
		}
		obj, ok := p.Object()
		if ok != tt.object {
			t.Errorf("Object(%q) ok = %v, want %v", tt.src, ok, tt.object)
			continue
		}
		if !ok {
			continue
		}
		whole, err := r.Run(p, rec)
		if err != nil {
			t.Fatalf("Run(%q): %v", tt.src, err)
		}
		byField, err := r.Object(obj, rec)
		if err != nil {
			t.Fatalf("Object(%q): %v", tt.src, err)
		}
		if fmt.Sprintf("%#v", byField) != fmt.Sprintf("%#v", whole) {
			t.Errorf("%s field by field = %#v, whole = %#v", tt.src, byField, whole)
		}
	}
}

// TestObjectRuntimeError: a field that fails reports the error as Run does.
func TestObjectRuntimeError(t *testing.T) {
	p, ds := Compile(`{a: 1, b: int(msg)}`, at, testVars, Any)
	if len(ds) > 0 {
		t.Fatal(ds)
	}
	obj, ok := p.Object()
	if !ok {
		t.Fatal("not compiled field by field")
	}
	var r Runner
	_, werr := r.Run(p, map[string]any{"msg": "x"})
	_, ferr := r.Object(obj, map[string]any{"msg": "x"})
	if werr == nil || ferr == nil {
		t.Fatalf("errors: whole %v, by field %v; want both", werr, ferr)
	}
	if werr.Error() != ferr.Error() {
		t.Errorf("by field: %v\nwhole:    %v", ferr, werr)
	}
}
