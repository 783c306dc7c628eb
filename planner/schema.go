package planner

// Registry tells the planner which stage kinds exist and what options each
// takes. The operators package provides the real one.
type Registry interface {
	// Lookup returns the schema of a kind of the given block type ("source",
	// "sink", "filter", ...). For source and sink blocks kind is the `kind`
	// option; for the others it equals block.
	Lookup(block, kind string) (*Schema, bool)
	// Kinds lists the kinds registered for a block type, for hints.
	Kinds(block string) []string
}

// Schema describes one kind of stage.
type Schema struct {
	Block string
	Kind  string
	// Doc is one sentence that says what the kind does.
	Doc     string
	Options []OptionSpec
	// Stateful stages (batch, window, reduce, buffered...) hold records; the
	// planner adds InFlight(options) to the memory bound.
	InFlight func(Options) int
	// Check, when set, validates the decoded options together: options
	// that require or exclude one another, ranges of values. Each error it
	// returns (several may be joined with errors.Join) becomes a diagnostic;
	// an *OptionError places it at the option it names. Check runs only when
	// every option decoded without error.
	Check func(Options) error
}

// OptionError is an error about one option of a stage, returned by
// Schema.Check. Message is a sentence that says how to fix it.
type OptionError struct {
	Option  string
	Message string
}

// Error returns the option's name and the message.
func (e *OptionError) Error() string { return e.Option + ": " + e.Message }

// Option returns the spec of the option name, or nil.
func (s *Schema) Option(name string) *OptionSpec {
	for i := range s.Options {
		if s.Options[i].Name == name {
			return &s.Options[i]
		}
	}
	return nil
}

// OptionType is the type of an option's value and decides how the planner
// decodes it.
type OptionType int

const (
	// String decodes to string.
	String OptionType = iota + 1
	// Int decodes to int64.
	Int
	// Float decodes to float64 (an integer literal is accepted).
	Float
	// Bool decodes to bool.
	Bool
	// Duration decodes a string such as "250ms" to time.Duration.
	Duration
	// Enum decodes to string, one of OptionSpec.Enum.
	Enum
	// Expr decodes a bare expr-lang expression to *expression.Program,
	// compiled against the record's fields.
	Expr
	// Predicate is an Expr that must yield a bool.
	Predicate
	// Fields decodes a nested block of `name = expression` attributes to
	// []Field (map's set).
	Fields
	// StringList decodes a list of strings, or one string, to []string.
	StringList
	// Value decodes any literal (string, number, bool, list, object) to its
	// JSON-like Go value.
	Value
	// StageRef decodes a bare name of another stage in the pipeline to string.
	StageRef
)

// OptionSpec describes one option of a kind.
type OptionSpec struct {
	Name     string
	Type     OptionType
	Required bool
	// Default is the decoded value used when the option is absent.
	Default any
	// Enum lists the allowed values of an Enum option.
	Enum []string
	Doc  string
}
