package artifact_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(artifact.ExtensionSchema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("extension.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("extension.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// yamlToJSONValue turns YAML into the generic JSON value the schema
// validator expects.
func yamlToJSONValue(t *testing.T, src string) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal([]byte(src), &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSchemaAgreesWithTheParser(t *testing.T) {
	s := compileSchema(t)
	dirs, _ := filepath.Glob("../examples/*/extension.yaml")
	valid := []string{validYAML}
	for _, d := range dirs {
		b := readFile(t, d)
		valid = append(valid, b)
	}
	for _, v := range valid {
		if err := s.Validate(yamlToJSONValue(t, v)); err != nil {
			t.Errorf("schema refuses a valid descriptor: %v\n%s", err, v)
		}
	}
	// Every one of these is refused by the parser too (see extension_test).
	invalid := map[string]string{
		"misspelt field": strings.Replace(validYAML, "  title:", "  titel:", 1),
		"bad kind":       strings.Replace(validYAML, "kind: Connector", "kind: Plugin", 1),
		"loose version":  strings.Replace(validYAML, "version: 1.4.2", "version: v1.4", 1),
		"bad name":       strings.Replace(validYAML, "name: acme/salesforce", "name: Acme/Sales_force", 1),
		"no licence":     strings.Replace(validYAML, "  license: Apache-2.0\n", "", 1),
		"escaping entry": strings.Replace(validYAML, "connector/main.yaml", "../main.yaml", 1),
		"api version":    strings.Replace(validYAML, "/v1", "/v2", 1),
	}
	for name, v := range invalid {
		if _, err := artifact.ParseExtension(strings.NewReader(v), "x"); err == nil {
			t.Fatalf("%s: the parser accepts it, so the case is wrong", name)
		}
		if err := s.Validate(yamlToJSONValue(t, v)); err == nil {
			t.Errorf("%s: schema accepts what the parser refuses", name)
		}
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
