package planner

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/flowrun/flowrun/lang/ast"
	"github.com/flowrun/flowrun/lang/diag"
	"github.com/flowrun/flowrun/lang/suggest"
)

// DefaultEdgeCapacity is the capacity, in records, of an edge when neither
// the stage nor its pipeline sets edge_capacity.
const DefaultEdgeCapacity = 1024

// topBlocks are the block types a file may contain.
var topBlocks = []string{"var", "pipeline", "test"}

// Build checks files and plans them into DAGs (a function cannot share the
// name of the Plan type). reg gives the schema of every
// stage kind; vars holds the --var overrides (name to raw text). It always
// returns a plan with whatever could be planned, and diagnostics for every
// independent problem, sorted by file and position.
func Build(files []*ast.File, reg Registry, vars map[string]string) (*Plan, diag.Diagnostics) {
	p := &planner{
		reg:       reg,
		plan:      &Plan{Vars: map[string]any{}},
		pipelines: map[string]*pipelineDecl{},
	}
	var varBlocks, pipeBlocks, testBlocks []*ast.Block
	for _, f := range files {
		if f == nil || f.Body == nil {
			continue
		}
		for _, it := range f.Body.Items {
			switch it := it.(type) {
			case *ast.Attribute:
				p.errorf(it.NameRange(), "Unexpected attribute",
					"A file holds var, pipeline and test blocks; %q belongs inside one of them.", it.Name)
			case *ast.Block:
				switch it.Type {
				case "var":
					varBlocks = append(varBlocks, it)
				case "pipeline":
					pipeBlocks = append(pipeBlocks, it)
				case "test":
					testBlocks = append(testBlocks, it)
				default:
					d := p.errorf(it.TypeRange(), "Unknown block type",
						"A file holds var, pipeline and test blocks, not %q.", it.Type)
					d.Hint = suggest.Hint(it.Type, topBlocks)
					if d.Hint == "" && isStageBlock(it.Type) {
						d.Hint = fmt.Sprintf("A %s block belongs inside a pipeline block.", it.Type)
					}
				}
			}
		}
	}
	p.planVars(varBlocks, vars)
	for _, b := range pipeBlocks {
		p.planPipeline(b)
	}
	for _, b := range testBlocks {
		p.planTest(b)
	}
	order := map[string]int{}
	for i, f := range files {
		if f != nil {
			if _, ok := order[f.Filename]; !ok {
				order[f.Filename] = i + 1
			}
		}
	}
	slices.SortStableFunc(p.diags, func(a, b *diag.Diagnostic) int {
		return cmp.Or(
			cmp.Compare(order[a.Subject.Filename], order[b.Subject.Filename]),
			cmp.Compare(a.Subject.Start.Byte, b.Subject.Start.Byte),
		)
	})
	return p.plan, p.diags
}

// planner holds the state of one call of Build.
type planner struct {
	reg       Registry
	plan      *Plan
	diags     diag.Diagnostics
	pipelines map[string]*pipelineDecl
	// varRanges holds where each variable was declared.
	varRanges map[string]diag.Range
	// brokenVars holds the variables without a value because of an error
	// already reported.
	brokenVars map[string]bool
}

func (p *planner) errorf(at diag.Range, summary, format string, args ...any) *diag.Diagnostic {
	d := diag.Errorf(at, summary, format, args...)
	p.diags = append(p.diags, d)
	return d
}

func (p *planner) warnf(at diag.Range, summary, format string, args ...any) *diag.Diagnostic {
	d := diag.Errorf(at, summary, format, args...)
	d.Severity = diag.Warning
	p.diags = append(p.diags, d)
	return d
}

// name returns the single label of a block, reporting a missing or extra
// label. what names the block in messages ("pipeline", "stage").
func (p *planner) name(b *ast.Block, what string) (string, bool) {
	switch {
	case len(b.Labels) == 0:
		p.errorf(b.TypeRange(), "Missing name",
			"A %s block needs a name: %s \"NAME\" { ... }.", b.Type, b.Type)
		return "", false
	case len(b.Labels) > 1:
		p.errorf(b.Labels[1].Range(), "Extra label",
			"A %s block has exactly one name; remove the extra labels.", b.Type)
	}
	name := b.Labels[0].Value
	if what == "stage" && !isIdent(name) {
		p.errorf(b.Labels[0].Range(), "Invalid stage name",
			"Stage names are identifiers (letters, digits and underscores, not starting with a digit) so that from can refer to them; %q is not one.", name)
		return name, false
	}
	if name == "" {
		p.errorf(b.Labels[0].Range(), "Empty name", "A %s name cannot be empty.", what)
		return "", false
	}
	return name, true
}

// header spans a block's type and labels, for diagnostics about the whole
// block.
func header(b *ast.Block) diag.Range {
	r := b.TypeRange()
	if n := len(b.Labels); n > 0 {
		r.End = b.Labels[n-1].Range().End
	}
	return r
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
		case i > 0 && r >= '0' && r <= '9':
		default:
			return false
		}
	}
	return true
}

// quoteList renders names as "a", "b" or "c".
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	switch len(q) {
	case 0:
		return "(none)"
	case 1:
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}
