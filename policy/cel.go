package policy

import (
	"encoding/json"
	"fmt"

	"github.com/google/cel-go/cel"
)

// celEnv declares what conditions can read: the newest statement's
// predicate, the whole in-toto statement, and the extension's descriptor
// (as in extension.yaml: extension.metadata.name, extension.spec.license).
func celEnv() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("predicate", cel.DynType),
		cel.Variable("statement", cel.DynType),
		cel.Variable("extension", cel.DynType),
	)
}

func compileCEL(env *cel.Env, expr string) (cel.Program, error) {
	ast, iss := env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		return nil, fmt.Errorf("CEL does not compile: %s", iss.Err())
	}
	if t := ast.OutputType(); t != cel.BoolType && t != cel.DynType {
		return nil, fmt.Errorf("CEL condition yields %s, want a bool", t)
	}
	return env.Program(ast)
}

// evalCEL runs a condition over JSON-shaped values; a runtime error (a
// missing field, a wrong type) is an error, never a pass.
func evalCEL(prog cel.Program, predicate, statement, extension any) (bool, error) {
	out, _, err := prog.Eval(map[string]any{
		"predicate": jsonValue(predicate),
		"statement": jsonValue(statement),
		"extension": jsonValue(extension),
	})
	if err != nil {
		return false, fmt.Errorf("CEL evaluation failed: %v", err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("CEL condition yielded %v, not a bool", out.Value())
	}
	return b, nil
}

// jsonValue turns any JSON-encodable value into maps, lists and scalars,
// which CEL reads field by field.
func jsonValue(v any) any {
	var raw []byte
	switch t := v.(type) {
	case json.RawMessage:
		raw = t
	case []byte:
		raw = t
	default:
		var err error
		if raw, err = json.Marshal(v); err != nil {
			return nil
		}
	}
	var out any
	if len(raw) == 0 || json.Unmarshal(raw, &out) != nil {
		return map[string]any{}
	}
	return out
}
