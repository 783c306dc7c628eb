package planner

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/flowrun/flowrun/runtime/onerror"
	"github.com/flowrun/flowrun/runtime/overflow"

	"github.com/flowrun/flowrun/lang/ast"
	"github.com/flowrun/flowrun/lang/diag"
	"github.com/flowrun/flowrun/lang/suggest"
	"github.com/flowrun/flowrun/planner/expression"
)

// stageBlocks are the block types of stages, in the order docs list them.
var stageBlocks = []string{
	"source", "sink", "filter", "map", "buffered", "throttle", "fanout",
	"merge", "batch", "take", "skip", "reduce", "window", "dedupe",
}

func isStageBlock(t string) bool {
	for _, b := range stageBlocks {
		if b == t {
			return true
		}
	}
	return false
}

// pipelineAttributes are the attributes a pipeline block may set.
var pipelineAttributes = []string{"edge_capacity", "edge_bytes", "description"}

// commonOptions are the options every stage takes, handled by the planner
// rather than by the kinds' schemas. from (and kind for sources and sinks)
// are handled apart.
var commonOptions = []OptionSpec{
	{Name: "on_error", Type: Enum, Enum: onerror.ModeNames()},
	{Name: "dead_letter", Type: StageRef},
	{Name: "retry_attempts", Type: Int},
	{Name: "retry_backoff", Type: Duration},
	{Name: "retry_max_backoff", Type: Duration},
	{Name: "edge_capacity", Type: Int},
	{Name: "edge_bytes", Type: Int},
	{Name: "when_full", Type: Enum, Enum: overflow.LossyNames()},
}

func commonOption(name string) *OptionSpec {
	for i := range commonOptions {
		if commonOptions[i].Name == name {
			return &commonOptions[i]
		}
	}
	return nil
}

// pipelineDecl is a pipeline being planned.
type pipelineDecl struct {
	name      string
	block     *ast.Block
	pipe      *Pipeline
	stages    []*stageDecl
	byName    map[string]*stageDecl
	edgeCap   int
	edgeBytes int64
	// suggested holds the stage names offered as hints for unresolved
	// references: such a stage may look unread only because of the typo.
	suggested map[string]bool
}

// stageDecl is a stage being planned.
type stageDecl struct {
	block  *ast.Block
	name   string
	index  int
	schema *Schema
	st     *Stage
	// from lists the references of the from attribute; inputs the stages
	// they resolve to, readers the stages that read this one.
	fromAttr *ast.Attribute
	from     []ref
	inputs   []*stageDecl
	readers  []*stageDecl
	// deadLetter is the dead_letter reference; dlSources the stages whose
	// dead letters this sink receives.
	deadLetter *ref
	dlSources  []*stageDecl
	whenFull   overflow.Mode
	whenFullAt diag.Range
	edgeCap    int
	edgeBytes  int64
	// attrs maps an option name to its attribute, for diagnostics.
	attrs map[string]*ast.Attribute
	// refOpts are the StageRef options of the kind, resolved with the
	// pipeline's stages.
	refOpts map[string]ref
	// entry is where this stage's inputs arrive: the stage or its merge.
	entry *Stage
	// out is where readers of this stage take records from: the stage or
	// its fanout.
	out *Stage
}

func (s *stageDecl) isSource() bool { return s.block.Type == "source" }
func (s *stageDecl) isSink() bool   { return s.block.Type == "sink" }

func (p *planner) planPipeline(b *ast.Block) {
	name, ok := p.name(b, "pipeline")
	if !ok {
		return
	}
	if first, dup := p.pipelines[name]; dup {
		p.errorf(b.Labels[0].Range(), "Duplicate pipeline",
			"Pipeline %q is already declared at %s; pipeline names are unique across files.", name, header(first.block))
		return
	}
	pd := &pipelineDecl{
		name:      name,
		block:     b,
		byName:    map[string]*stageDecl{},
		edgeCap:   DefaultEdgeCapacity,
		suggested: map[string]bool{},
	}
	p.pipelines[name] = pd
	pd.pipe = &Pipeline{Name: name, Range: b.Range()}
	p.plan.Pipelines = append(p.plan.Pipelines, pd.pipe)

	for _, a := range b.Body.Attributes() {
		switch a.Name {
		case "edge_capacity":
			if n, ok := p.positive(a); ok {
				pd.edgeCap = int(n)
			}
		case "edge_bytes":
			if n, ok := p.positive(a); ok {
				pd.edgeBytes = n
			}
		case "description":
			p.decode(&OptionSpec{Name: a.Name, Type: String}, a)
		default:
			d := p.errorf(a.NameRange(), "Unknown attribute",
				"A pipeline block sets only edge_capacity, edge_bytes and description, not %q.", a.Name)
			d.Hint = suggest.Hint(a.Name, pipelineAttributes)
			if d.Hint == "" && commonOption(a.Name) != nil {
				d.Hint = fmt.Sprintf("%s is an option of a stage: set it inside the stage block.", a.Name)
			}
		}
	}
	pd.pipe.EdgeCapacity = pd.edgeCap
	pd.pipe.EdgeBytes = pd.edgeBytes

	for _, sb := range b.Body.Blocks() {
		p.planStage(pd, sb)
	}
	if len(pd.stages) == 0 && len(b.Body.Blocks()) == 0 {
		p.errorf(header(b), "Empty pipeline", "Pipeline %q has no stages: add a source and a sink.", name)
		return
	}
	p.resolve(pd)
	cyclic := p.checkCycles(pd)
	p.checkShape(pd)
	if !cyclic {
		p.buildDAG(pd)
	}
}

// positive decodes a positive integer attribute.
func (p *planner) positive(a *ast.Attribute) (int64, bool) {
	v, ok := p.decode(&OptionSpec{Name: a.Name, Type: Int}, a)
	if !ok {
		return 0, false
	}
	n := v.(int64)
	if n < 1 {
		p.errorf(a.Value.Range(), "Invalid option value", "%s must be at least 1, not %d.", a.Name, n)
		return 0, false
	}
	return n, true
}

func (p *planner) planStage(pd *pipelineDecl, b *ast.Block) {
	if !isStageBlock(b.Type) {
		d := p.errorf(b.TypeRange(), "Unknown stage type",
			"A pipeline holds stages (%s), not %q blocks.", strings.Join(stageBlocks, ", "), b.Type)
		d.Hint = suggest.Hint(b.Type, stageBlocks)
		switch b.Type {
		case "var", "test", "pipeline":
			d.Hint = fmt.Sprintf("A %s block goes at the top level of a file, outside pipelines.", b.Type)
		}
		return
	}
	name, named := p.name(b, "stage")
	s := &stageDecl{
		block:   b,
		name:    name,
		attrs:   map[string]*ast.Attribute{},
		refOpts: map[string]ref{},
	}
	s.st = &Stage{Name: name, Block: b.Type, Kind: b.Type, Options: Options{}, Range: b.Range()}
	if named {
		if first, dup := pd.byName[name]; dup {
			p.errorf(b.Labels[0].Range(), "Duplicate stage",
				"Stage %q is already declared at %s; stage names are unique in a pipeline.", name, header(first.block))
			named = false
		}
	}

	// The kind decides the schema.
	kindAttr := b.Body.Attribute("kind")
	if b.Type == "source" || b.Type == "sink" {
		if kindAttr == nil {
			p.errorf(header(b), "Missing kind",
				"A %s needs a kind: one of %s.", b.Type, quoteList(p.reg.Kinds(b.Type)))
		} else if v, ok := p.decode(&OptionSpec{Name: "kind", Type: String}, kindAttr); ok {
			s.st.Kind = v.(string)
			if sc, ok := p.reg.Lookup(b.Type, s.st.Kind); ok {
				s.schema = sc
			} else {
				kinds := p.reg.Kinds(b.Type)
				d := p.errorf(kindAttr.Value.Range(), "Unknown "+b.Type+" kind",
					"There is no %s kind %q; the kinds are %s.", b.Type, s.st.Kind, quoteList(kinds))
				d.Hint = suggest.Hint(s.st.Kind, kinds)
			}
		}
	} else {
		if kindAttr != nil {
			p.errorf(kindAttr.NameRange(), "Unexpected kind",
				"Only sources and sinks have a kind; a %s stage is of kind %s.", b.Type, b.Type)
		}
		if sc, ok := p.reg.Lookup(b.Type, b.Type); ok {
			s.schema = sc
		} else {
			p.errorf(b.TypeRange(), "Unsupported stage type", "No operator is registered for %s stages.", b.Type)
		}
	}

	decoded := true
	// misspelt holds the options an unknown option was taken for: their
	// absence is not reported again.
	misspelt := map[string]bool{}
	for _, a := range b.Body.Attributes() {
		s.attrs[a.Name] = a
		switch a.Name {
		case "kind":
			continue
		case "from":
			s.fromAttr = a
			s.from = p.fromRefs(pd, a)
			continue
		}
		if spec := commonOption(a.Name); spec != nil {
			v, ok := p.decode(spec, a)
			if ok {
				p.setCommon(s, a, v)
			} else {
				decoded = false
			}
			continue
		}
		if s.schema == nil {
			continue
		}
		spec := s.schema.Option(a.Name)
		if spec == nil {
			if guess := p.unknownOption(s, a.NameRange(), a.Name); guess != "" {
				misspelt[guess] = true
			}
			decoded = false
			continue
		}
		v, ok := p.decode(spec, a)
		if !ok {
			decoded = false
			continue
		}
		if r, isRef := v.(ref); isRef {
			s.refOpts[a.Name] = r
			continue
		}
		s.st.Options[a.Name] = v
	}
	for _, nb := range b.Body.Blocks() {
		if !p.fieldsBlock(s, nb) {
			decoded = false
		}
	}
	if s.schema != nil {
		for _, spec := range s.schema.Options {
			if _, set := s.attrs[spec.Name]; set {
				continue
			}
			if _, set := s.st.Options[spec.Name]; set {
				continue
			}
			if spec.Required && misspelt[spec.Name] {
				decoded = false
				continue
			}
			if spec.Required {
				d := p.errorf(header(b), "Missing required option",
					"%s %q needs the option %s (%s).", b.Type, name, spec.Name, expects(&spec))
				if spec.Doc != "" {
					d.Detail += " " + spec.Doc
				}
				decoded = false
				continue
			}
			if spec.Default != nil {
				s.st.Options[spec.Name] = spec.Default
			}
		}
		if decoded && s.schema.Check != nil {
			p.runCheck(s, s.schema.Check(s.st.Options))
		}
	}
	p.checkPolicy(s)

	if named {
		s.index = len(pd.stages)
		pd.stages = append(pd.stages, s)
		pd.byName[name] = s
	}
}

// unknownOption reports an option the stage's kind does not take, and
// returns the option it was probably meant to be, or "".
func (p *planner) unknownOption(s *stageDecl, at diag.Range, name string) string {
	var names []string
	for _, o := range s.schema.Options {
		names = append(names, o.Name)
	}
	all := append([]string{"from"}, names...)
	for _, o := range commonOptions {
		all = append(all, o.Name)
	}
	if s.isSource() || s.isSink() {
		all = append(all, "kind")
	}
	what := s.block.Type
	if s.isSource() || s.isSink() {
		what = fmt.Sprintf("%s %s", s.st.Kind, s.block.Type)
	}
	detail := fmt.Sprintf("A %s has no option %q.", what, name)
	if len(names) > 0 {
		detail += fmt.Sprintf(" Its own options are %s.", strings.Join(names, ", "))
	}
	d := p.errorf(at, "Unknown option", "%s", detail)
	guess := suggest.Suggest(name, all)
	if guess != "" {
		d.Hint = fmt.Sprintf("Did you mean %q?", guess)
	}
	return guess
}

// fieldsBlock decodes a nested block of a stage: a Fields option such as
// map's set. It reports false when the block is wrong.
func (p *planner) fieldsBlock(s *stageDecl, b *ast.Block) bool {
	if s.schema == nil {
		return false
	}
	spec := s.schema.Option(b.Type)
	if spec == nil || spec.Type != Fields {
		if spec != nil || commonOption(b.Type) != nil || b.Type == "from" {
			p.errorf(b.TypeRange(), "Unexpected block", "%s is an option, not a block: write %s = value.", b.Type, b.Type)
			return false
		}
		if isStageBlock(b.Type) {
			p.errorf(b.TypeRange(), "Unexpected block",
				"Stages do not nest: declare %s %s next to %s %q, inside the pipeline, and read from it with from.", b.Type, strings.Join(labels(b), " "), s.block.Type, s.name)
			return false
		}
		var fields []string
		for _, o := range s.schema.Options {
			if o.Type == Fields {
				fields = append(fields, o.Name)
			}
		}
		d := p.errorf(b.TypeRange(), "Unknown block", "A %s stage has no %q block.", s.block.Type, b.Type)
		d.Hint = suggest.Hint(b.Type, fields)
		return false
	}
	if _, dup := s.st.Options[b.Type]; dup {
		p.errorf(b.TypeRange(), "Duplicate block", "%s is already set; write one %s block.", b.Type, b.Type)
		return false
	}
	if len(b.Labels) > 0 {
		p.errorf(b.Labels[0].Range(), "Unexpected label", "A %s block has no label: write %s { ... }.", b.Type, b.Type)
	}
	ok := true
	for _, nb := range b.Body.Blocks() {
		p.errorf(nb.TypeRange(), "Unexpected block",
			"A %s block holds field = expression attributes only; for a nested object write %s = {key: value}.", b.Type, nb.Type)
		ok = false
	}
	var fields []Field
	seen := map[string]bool{}
	for _, a := range b.Body.Attributes() {
		prog, pok := p.decode(&OptionSpec{Name: a.Name, Type: Expr}, a)
		if !pok {
			ok = false
			continue
		}
		if seen[a.Name] {
			continue
		}
		seen[a.Name] = true
		fields = append(fields, Field{Name: a.Name, Expr: exprOf(prog)})
	}
	if len(b.Body.Attributes()) == 0 {
		p.errorf(b.TypeRange(), "Empty block", "A %s block sets at least one field: %s { field = expression }.", b.Type, b.Type)
		ok = false
	}
	if ok {
		s.st.Options[b.Type] = fields
	}
	return ok
}

func labels(b *ast.Block) []string {
	out := make([]string, len(b.Labels))
	for i, l := range b.Labels {
		out[i] = l.Raw
	}
	return out
}

// runCheck reports the errors of a schema's Check.
func (p *planner) runCheck(s *stageDecl, err error) {
	if err == nil {
		return
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		at := header(s.block)
		msg := e.Error()
		if oe, ok := e.(*OptionError); ok {
			msg = oe.Message
			if a := s.attrs[oe.Option]; a != nil {
				at = a.Value.Range()
			} else if nb := s.block.Body.BlocksOfType(oe.Option); len(nb) > 0 {
				at = nb[0].TypeRange()
			}
		}
		p.errorf(at, "Invalid options", "%s", sentence(msg))
	}
}

// sentence capitalises msg and ends it with a period.
func sentence(msg string) string {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return msg
	}
	msg = strings.ToUpper(msg[:1]) + msg[1:]
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}

// fromRefs decodes a from attribute: one bare stage name or a list of them.
func (p *planner) fromRefs(pd *pipelineDecl, a *ast.Attribute) []ref {
	lit, ok := p.literal(a.Value, "a stage name or a list of stage names")
	if !ok {
		return nil
	}
	one := func(l ast.Literal) (ref, bool) {
		switch r := l.(type) {
		case *ast.Ref:
			if len(r.Parts) == 1 {
				return ref{name: r.Parts[0], at: r}, true
			}
			p.errorf(r.Range(), "Invalid reference", "from names a stage of this pipeline: write a bare name, not %s.", r)
		case *ast.String:
			d := p.errorf(r.Range(), "Invalid reference", "from names a stage, written bare, not a string.")
			d.Hint = fmt.Sprintf("Write from = %s, without quotes.", r.Value)
			pd.suggested[r.Value] = true
		default:
			p.errorf(l.Range(), "Invalid reference", "from takes a stage name or a list of stage names.")
		}
		return ref{}, false
	}
	if l, isList := lit.(*ast.List); isList {
		if len(l.Elems) == 0 {
			p.errorf(l.Range(), "Empty from", "from lists no stage: name at least one.")
			return nil
		}
		var out []ref
		seen := map[string]bool{}
		for _, e := range l.Elems {
			r, ok := one(e)
			if !ok {
				continue
			}
			if seen[r.name] {
				p.errorf(r.at.Range(), "Duplicate input", "%s is already listed in from.", r.name)
				continue
			}
			seen[r.name] = true
			out = append(out, r)
		}
		return out
	}
	if r, ok := one(lit); ok {
		return []ref{r}
	}
	return nil
}

// setCommon stores a decoded common option.
func (p *planner) setCommon(s *stageDecl, a *ast.Attribute, v any) {
	switch a.Name {
	case "on_error":
		s.st.OnError.Mode, _ = onerror.ParseMode(v.(string)) // the schema's Enum checked it
	case "dead_letter":
		r := v.(ref)
		s.deadLetter = &r
	case "retry_attempts":
		n := v.(int64)
		if n < 0 {
			p.errorf(a.Value.Range(), "Invalid option value", "retry_attempts must be 0 (no limit) or more, not %d.", n)
			return
		}
		s.st.OnError.Attempts = int(n)
		if n == 0 {
			s.st.OnError.Attempts = onerror.Unlimited
		}
	case "retry_backoff", "retry_max_backoff":
		d := v.(time.Duration)
		if d <= 0 {
			p.errorf(a.Value.Range(), "Invalid option value", "%s must be longer than zero.", a.Name)
			return
		}
		if a.Name == "retry_backoff" {
			s.st.OnError.Backoff = d
		} else {
			s.st.OnError.MaxBackoff = d
		}
	case "edge_capacity", "edge_bytes":
		n := v.(int64)
		if n < 1 {
			p.errorf(a.Value.Range(), "Invalid option value", "%s must be at least 1, not %d.", a.Name, n)
			return
		}
		if a.Name == "edge_capacity" {
			s.edgeCap = int(n)
		} else {
			s.edgeBytes = n
		}
	case "when_full":
		s.whenFull, _ = overflow.Parse(v.(string)) // the Enum spec admits only its names
		s.whenFullAt = a.Value.Range()
	}
}

// checkPolicy completes and checks the stage's error policy and the options
// of its input edge.
func (p *planner) checkPolicy(s *stageDecl) {
	pol := &s.st.OnError
	modeSet := pol.Mode != 0
	role := onerror.Other
	if s.isSink() {
		role = onerror.Sink
	}
	def := onerror.Default(role)
	if !modeSet {
		pol.Mode = def.Mode
	}
	if s.attrs["retry_attempts"] == nil {
		pol.Attempts = def.Attempts
	}
	if pol.Backoff == 0 {
		pol.Backoff = def.Backoff
	}
	if pol.MaxBackoff == 0 {
		pol.MaxBackoff = max(def.MaxBackoff, pol.Backoff)
	}
	if a, b := s.attrs["retry_backoff"], s.attrs["retry_max_backoff"]; a != nil && b != nil && pol.MaxBackoff < pol.Backoff {
		p.errorf(b.Value.Range(), "Invalid option value",
			"retry_max_backoff (%s) is shorter than retry_backoff (%s).", pol.MaxBackoff, pol.Backoff)
	}
	if !pol.Mode.Retries() {
		for _, name := range []string{"retry_attempts", "retry_backoff", "retry_max_backoff"} {
			if a := s.attrs[name]; a != nil {
				p.warnf(a.NameRange(), "Option has no effect",
					"%s applies when on_error is \"skip\", \"retry\" or \"dead_letter\"; this stage's on_error is %q.", name, pol.Mode)
			}
		}
	}
	if pol.Mode == onerror.DeadLetter && s.block.Type == "merge" {
		p.errorf(s.attrs["on_error"].Value.Range(), "Invalid option value",
			"A merge stage cannot send records to a dead letter: its on_error is \"stop\", \"skip\" or \"retry\".")
		s.deadLetter = nil
		pol.Mode = onerror.Stop
		return
	}
	takesDeadLetter := pol.Mode == onerror.DeadLetter || pol.Mode == onerror.Retry
	switch {
	case pol.Mode == onerror.DeadLetter && s.deadLetter == nil && s.attrs["dead_letter"] == nil:
		p.errorf(s.attrs["on_error"].Value.Range(), "Missing dead_letter",
			"on_error = \"dead_letter\" sends failed records to a sink: name it with dead_letter = SINK.")
	case !takesDeadLetter && s.attrs["dead_letter"] != nil:
		d := p.errorf(s.attrs["dead_letter"].NameRange(), "Unexpected dead_letter",
			"dead_letter is used only when on_error is \"dead_letter\" or \"retry\"; this stage's on_error is %q.", pol.Mode)
		d.Hint = "Add on_error = \"dead_letter\"."
	}
	if s.isSource() {
		for _, name := range []string{"edge_capacity", "edge_bytes", "when_full"} {
			if a := s.attrs[name]; a != nil {
				p.errorf(a.NameRange(), "Option not allowed on a source",
					"%s sets the stage's input edge, and a source has none; set it on the pipeline or on the stages reading %q.", name, s.name)
			}
		}
		s.whenFull = overflow.Block
	}
}

// exprOf returns the program decoded for an Expr option.
func exprOf(v any) *expression.Program {
	prog, _ := v.(*expression.Program)
	return prog
}

func stageNames(pd *pipelineDecl) []string {
	names := make([]string, 0, len(pd.stages))
	for _, s := range pd.stages {
		names = append(names, s.name)
	}
	sort.Strings(names)
	return names
}
