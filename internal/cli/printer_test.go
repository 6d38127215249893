package cli

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestOnlyThePrinterWritesStdout keeps the JSON contract from breaking as
// commands are added: a command that writes to stdout itself (g.stdout,
// os.Stdout, writeJSON) prints a second document beside the printer's. A
// command returns a result; its printText method writes the text form.
func TestOnlyThePrinterWritesStdout(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				x, ok := n.X.(*ast.Ident)
				if !ok {
					return true
				}
				switch {
				// server.go hands stdout to mkt-server, which then is the
				// program and prints through its own printer.
				case x.Name == "g" && n.Sel.Name == "stdout" && name != "main.go" && name != "server.go":
					t.Errorf("%s: a command writes g.stdout; return a result instead", fset.Position(n.Pos()))
				case x.Name == "os" && n.Sel.Name == "Stdout" && name != "main.go":
					t.Errorf("%s: os.Stdout outside main; return a result instead", fset.Position(n.Pos()))
				}
			case *ast.CallExpr:
				if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "writeJSON" && name != "output.go" {
					t.Errorf("%s: writeJSON outside the printer; return a result instead", fset.Position(n.Pos()))
				}
			}
			return true
		})
	}
}

type emptyResult struct{}

func (emptyResult) printText(*printer) {}

type fieldResult struct {
	Passed bool `json:"passed"`
}

func (fieldResult) printText(*printer) {}

// A failure with a result is one document: the result's fields with
// "error" beside them; without a result, {"error":{…}} alone.
func TestAFailureIsOneDocumentWithOrWithoutAResult(t *testing.T) {
	body := &errorBody{Code: codeFailed, Message: "it broke", ExitCode: exitFailure}
	for _, tc := range []struct {
		name string
		res  result
		want string
	}{
		{"no result", nil, `{"error":{"code":"failed","message":"it broke","exitCode":1}}`},
		{"empty result", emptyResult{}, `{"error":{"code":"failed","message":"it broke","exitCode":1}}`},
		{"a result", fieldResult{}, `{"passed":false,"error":{"code":"failed","message":"it broke","exitCode":1}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			if err := writeFailure(&b, tc.res, body); err != nil {
				t.Fatal(err)
			}
			doc := oneDocument(t, b.String())
			got, _ := json.Marshal(doc)
			var want map[string]any
			json.Unmarshal([]byte(tc.want), &want)
			wantJSON, _ := json.Marshal(want)
			if string(got) != string(wantJSON) {
				t.Fatalf("got %s, want %s", got, wantJSON)
			}
		})
	}
}
