package expression

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/flowrun/flowrun/lang/diag"
)

// Runner runs compiled programs against records. It reuses one VM, so it is
// not safe for concurrent use: give each goroutine its own Runner. The zero
// value is ready to use.
type Runner struct {
	vm vm.VM
}

// Run evaluates p with the record's fields as variables; a field that is
// absent is nil. Integers in the result are int64 and floats float64, as in
// records.
func (r *Runner) Run(p *Program, fields map[string]any) (any, error) {
	out, err := r.vm.Run(p.program, fields)
	if err != nil {
		return nil, runtimeError(p, err)
	}
	if p.normalized {
		return out, nil
	}
	return normalize(out), nil
}

// Bool evaluates the predicate p: nil (such as an absent field) is false,
// any other value that is not a bool is an error.
func (r *Runner) Bool(p *Program, fields map[string]any) (bool, error) {
	if p.equals != nil {
		return p.equals.eval(fields), nil
	}
	out, err := r.vm.Run(p.program, fields)
	if err != nil {
		return false, runtimeError(p, err)
	}
	switch b := out.(type) {
	case bool:
		return b, nil
	case nil:
		return false, nil
	}
	return false, &RuntimeError{Range: p.Range, Message: fmt.Sprintf("condition yielded %T, not a bool", out)}
}

// RuntimeError is an expression that failed on a record, with the position
// in the .flow file where it failed.
type RuntimeError struct {
	Range   diag.Range
	Message string
	Err     error
}

// Error formats the error as file:line:col: message.
func (e *RuntimeError) Error() string {
	return fmt.Sprintf("%s: %s", e.Range, e.Message)
}

// Unwrap returns the underlying error.
func (e *RuntimeError) Unwrap() error { return e.Err }

func runtimeError(p *Program, err error) error {
	loc := locator{src: p.Source, at: p.Range}
	var fe *file.Error
	if errors.As(err, &fe) {
		return &RuntimeError{Range: loc.rangeOf(fe.From, fe.To), Message: fe.Message, Err: err}
	}
	return &RuntimeError{Range: p.Range, Message: err.Error(), Err: err}
}

// normalize converts expr's int results to int64 and float32 to float64,
// inside lists and objects too. A list or object is copied when one of its
// elements changes, never modified: it may be a constant of the program or a
// value of the record.
func normalize(v any) any {
	if !changes(v) {
		return v
	}
	switch x := v.(type) {
	case int:
		return int64(x)
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case uint:
		return int64(x)
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint64:
		return int64(x)
	case float32:
		return float64(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	}
	return v
}

// yieldsNormalized reports whether the compiled expression n can only yield
// values normalize leaves as they are: values of the record (identifiers and
// members), string, float, bool and nil literals, constants without int
// values, comparisons, and conditionals, objects and lists made of those. It
// is conservative: anything else (arithmetic, integer literals, calls that
// may return int) answers false.
func yieldsNormalized(n ast.Node) bool {
	if t := n.Type(); t != nil {
		switch t.Kind() {
		case reflect.String, reflect.Bool, reflect.Int64, reflect.Float64:
			return true
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32:
			return false
		}
	}
	switch x := n.(type) {
	case *ast.IdentifierNode, *ast.MemberNode, *ast.StringNode, *ast.BoolNode, *ast.NilNode, *ast.FloatNode:
		return true
	case *ast.ConstantNode:
		return !changes(x.Value)
	case *ast.ConditionalNode:
		return yieldsNormalized(x.Exp1) && yieldsNormalized(x.Exp2)
	case *ast.MapNode:
		for _, pair := range x.Pairs {
			if p, ok := pair.(*ast.PairNode); !ok || !yieldsNormalized(p.Value) {
				return false
			}
		}
		return true
	case *ast.ArrayNode:
		for _, e := range x.Nodes {
			if !yieldsNormalized(e) {
				return false
			}
		}
		return true
	}
	return false
}

// changes reports whether normalize would change v.
func changes(v any) bool {
	switch x := v.(type) {
	case int, int8, int16, int32, uint, uint8, uint16, uint32, uint64, float32:
		return true
	case []any:
		for _, e := range x {
			if changes(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if changes(e) {
				return true
			}
		}
	}
	return false
}
