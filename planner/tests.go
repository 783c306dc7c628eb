package planner

import (
	"sort"

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
	t := &Test{Name: name, Inputs: map[string][]map[string]any{}, Expect: map[string][]map[string]any{}, Range: header(b)}
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
	}
}

// records decodes the records attribute of an input or expect block.
func (p *planner) records(b *ast.Block) ([]map[string]any, bool) {
	for _, nb := range b.Body.Blocks() {
		p.errorf(nb.TypeRange(), "Unexpected block", "An %s block sets records = [...] only.", b.Type)
	}
	for _, a := range b.Body.Attributes() {
		if a.Name != "records" {
			d := p.errorf(a.NameRange(), "Unknown attribute", "An %s block sets records only, not %q.", b.Type, a.Name)
			d.Hint = suggest.Hint(a.Name, []string{"records"})
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
