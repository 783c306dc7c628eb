package planner

import (
	"slices"
	"sort"
	"strings"

	"github.com/flowrun/flowrun/lang/ast"
	"github.com/flowrun/flowrun/lang/suggest"
)

// testAttributes are the attributes and blocks a test block may hold.
var (
	testAttributes = []string{"pipeline"}
	testBlocks     = []string{"input", "expect"}
)

// planTest checks a test block: the pipeline exists, inputs name its sources,
// expectations name its sinks, and records are lists of objects.
func (p *planner) planTest(b *ast.Block) {
	name, ok := p.name(b, "test")
	if !ok {
		return
	}
	for _, t := range p.plan.Tests {
		if t.Name == name {
			p.errorf(b.Labels[0].Range(), "Duplicate test",
				"Test %q is already declared at %s; test names are unique.", name, t.Range)
			return
		}
	}
	t := &Test{Name: name, Inputs: map[string][]map[string]any{}, Expect: map[string][]map[string]any{}, Ignore: map[string][]string{}, Range: header(b)}
	p.plan.Tests = append(p.plan.Tests, t)

	var pd *pipelineDecl
	for _, a := range b.Body.Attributes() {
		if a.Name != "pipeline" {
			d := p.errorf(a.NameRange(), "Unknown attribute",
				"A test block sets pipeline and holds input and expect blocks, not %q.", a.Name)
			d.Hint = suggest.Hint(a.Name, testAttributes)
			continue
		}
		v, ok := p.decode(&OptionSpec{Name: "pipeline", Type: StageRef}, a)
		if !ok {
			continue
		}
		r := v.(ref)
		t.Pipeline = r.name
		pd = p.pipelines[r.name]
		if pd == nil {
			names := make([]string, 0, len(p.pipelines))
			for n := range p.pipelines {
				names = append(names, n)
			}
			sort.Strings(names)
			d := p.errorf(r.at.Range(), "Unknown pipeline", "No pipeline is named %q.", r.name)
			d.Hint = suggest.Hint(r.name, names)
		}
	}
	if b.Body.Attribute("pipeline") == nil {
		p.errorf(header(b), "Missing pipeline", "A test names the pipeline it runs: add pipeline = NAME.")
	}

	for _, nb := range b.Body.Blocks() {
		var into map[string][]map[string]any
		var want string
		switch nb.Type {
		case "input":
			into, want = t.Inputs, "source"
		case "expect":
			into, want = t.Expect, "sink"
		default:
			d := p.errorf(nb.TypeRange(), "Unknown block type",
				"A test block holds input and expect blocks, not %q.", nb.Type)
			d.Hint = suggest.Hint(nb.Type, testBlocks)
			continue
		}
		stage, ok := p.name(nb, want)
		if !ok {
			continue
		}
		if _, dup := into[stage]; dup {
			p.errorf(nb.Labels[0].Range(), "Duplicate "+nb.Type,
				"This test already has an %s block for %q.", nb.Type, stage)
			continue
		}
		if pd != nil {
			s := pd.byName[stage]
			switch {
			case s == nil:
				var names []string
				for _, c := range pd.stages {
					if c.block.Type == want {
						names = append(names, c.name)
					}
				}
				d := p.errorf(nb.Labels[0].Range(), "Unknown "+want,
					"Pipeline %q has no %s named %q.", pd.name, want, stage)
				d.Hint = suggest.Hint(stage, names)
			case s.block.Type != want:
				p.errorf(nb.Labels[0].Range(), "Not a "+want,
					"%q is a %s stage; an %s block names a %s.", stage, s.block.Type, nb.Type, want)
			}
		}
		records, ok := p.records(nb)
		if ok {
			into[stage] = records
		}
		if nb.Type == "expect" {
			if fields := p.ignoredFields(nb); len(fields) > 0 {
				t.Ignore[stage] = fields
			}
		}
	}
}

// ignoredFields decodes the ignore_fields attribute of an expect block.
func (p *planner) ignoredFields(b *ast.Block) []string {
	a := b.Body.Attribute("ignore_fields")
	if a == nil {
		return nil
	}
	lit, ok := p.literal(a.Value, "a list of field names")
	if !ok {
		return nil
	}
	v, ok := p.value(lit)
	if !ok {
		return nil
	}
	list, isList := v.([]any)
	var fields []string
	for _, e := range list {
		if name, isString := e.(string); isString {
			fields = append(fields, name)
			continue
		}
		isList = false
	}
	if !isList {
		p.errorf(lit.Range(), "Invalid ignore_fields", `ignore_fields is a list of field names: ignore_fields = ["error"].`)
		return nil
	}
	return fields
}

// records decodes the records attribute of an input or expect block.
func (p *planner) records(b *ast.Block) ([]map[string]any, bool) {
	for _, nb := range b.Body.Blocks() {
		p.errorf(nb.TypeRange(), "Unexpected block", "An %s block sets records = [...] only.", b.Type)
	}
	allowed := []string{"records"}
	if b.Type == "expect" {
		allowed = append(allowed, "ignore_fields")
	}
	for _, a := range b.Body.Attributes() {
		if !slices.Contains(allowed, a.Name) {
			d := p.errorf(a.NameRange(), "Unknown attribute", "An %s block sets %s, not %q.", b.Type, strings.Join(allowed, " and "), a.Name)
			d.Hint = suggest.Hint(a.Name, allowed)
		}
	}
	a := b.Body.Attribute("records")
	if a == nil {
		p.errorf(header(b), "Missing records", "An %s block lists its records: records = [{ field = value }, ...].", b.Type)
		return nil, false
	}
	lit, ok := p.literal(a.Value, "a list of objects")
	if !ok {
		return nil, false
	}
	list, isList := lit.(*ast.List)
	if !isList {
		p.errorf(lit.Range(), "Invalid records", "records is a list of objects: records = [{ field = value }, ...].")
		return nil, false
	}
	out := make([]map[string]any, 0, len(list.Elems))
	ok = true
	for i, e := range list.Elems {
		if _, isObj := e.(*ast.Object); !isObj {
			p.errorf(e.Range(), "Invalid record", "Record %d is not an object: write { field = value }.", i+1)
			ok = false
			continue
		}
		v, vok := p.value(e)
		if !vok {
			ok = false
			continue
		}
		out = append(out, v.(map[string]any))
	}
	return out, ok
}
