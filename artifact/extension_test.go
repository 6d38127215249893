package artifact_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/artifact"
)

const validYAML = `apiVersion: marketplace.connectsoft.io/v1
kind: Connector
metadata:
  name: acme/salesforce
  version: 1.4.2
  title: Salesforce connector
  publisher: acme
  keywords: [crm, sync]
  homepage: https://example.com
spec:
  license: Apache-2.0
  compatibility:
    factory: ">=2.1.0 <3.0.0"
  dependencies:
    - name: acme/http
      version: ^1.2.0
  permissions: [network, secrets.read]
  entrypoint: connector/main.yaml
`

func TestParseExtensionAcceptsTheDesignExample(t *testing.T) {
	ext, err := artifact.ParseExtension(strings.NewReader(validYAML), "extension.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if ext.Kind != artifact.KindConnector || ext.Publisher() != "acme" || ext.ShortName() != "salesforce" {
		t.Fatalf("parsed %+v", ext)
	}
	if got := ext.Kind.ArtifactType(); got != "application/vnd.connectsoft.connector.v1" {
		t.Fatalf("artifact type %q", got)
	}
	if len(ext.Spec.Dependencies) != 1 || ext.Spec.Dependencies[0].Version != "^1.2.0" {
		t.Fatalf("dependencies %+v", ext.Spec.Dependencies)
	}
}

func TestParseExtensionRefusesWithFieldAndLine(t *testing.T) {
	cases := []struct {
		name string
		edit func(string) string
		want []string // substrings of the error
	}{
		{"misspelt field", func(s string) string { return strings.Replace(s, "  title:", "  titel:", 1) }, []string{`extension.yaml:6:3`, `unknown field "titel"`, `did you mean "title"`}},
		{"unknown top-level field", func(s string) string { return s + "extra: 1\n" }, []string{`extension.yaml:19:1`, `unknown field "extra"`}},
		{"unknown nested field", func(s string) string {
			return strings.Replace(s, "      version: ^1.2.0", "      version: ^1.2.0\n      optional: true", 1)
		}, []string{`extension.yaml:17:7`, `spec.dependencies[0]`, `unknown field "optional"`}},
		{"loose version", func(s string) string { return strings.Replace(s, "version: 1.4.2", "version: v1.4", 1) }, []string{`extension.yaml:5:12`, `metadata.version`, `strict SemVer`}},
		{"bad kind", func(s string) string { return strings.Replace(s, "kind: Connector", "kind: Plugin", 1) }, []string{`extension.yaml:2:7`, `kind`, `"Plugin"`}},
		{"kind in lower case", func(s string) string { return strings.Replace(s, "kind: Connector", "kind: connector", 1) }, []string{`extension.yaml:2:7`, `"connector": write it "Connector"`}},
		{"bad name", func(s string) string { return strings.Replace(s, "name: acme/salesforce", "name: Acme/Sales_force", 1) }, []string{`extension.yaml:4:9`, `metadata.name`}},
		{"publisher mismatch", func(s string) string { return strings.Replace(s, "publisher: acme", "publisher: other", 1) }, []string{`metadata.publisher`, `differs`}},
		{"bad licence", func(s string) string { return strings.Replace(s, "license: Apache-2.0", "license: Apache-Two", 1) }, []string{`extension.yaml:11:12`, `spec.license`, `SPDX`}},
		{"bad constraint", func(s string) string { return strings.Replace(s, `">=2.1.0 <3.0.0"`, `"around 2"`, 1) }, []string{`extension.yaml:13:14`, `spec.compatibility.factory`}},
		{"missing compatibility", func(s string) string {
			return strings.Replace(s, "  compatibility:\n    factory: \">=2.1.0 <3.0.0\"\n", "", 1)
		}, []string{`spec.compatibility.factory`, `required`}},
		{"bad dependency", func(s string) string { return strings.Replace(s, "version: ^1.2.0", "version: latest", 1) }, []string{`spec.dependencies[0].version`, `"latest"`}},
		{"escaping entrypoint", func(s string) string { return strings.Replace(s, "connector/main.yaml", "../main.yaml", 1) }, []string{`spec.entrypoint`, `leaves`}},
		{"wrong type", func(s string) string { return strings.Replace(s, "keywords: [crm, sync]", "keywords: crm", 1) }, []string{`extension.yaml:8:13`, `want a list`}},
		{"duplicate key", func(s string) string { return strings.Replace(s, "  title:", "  version: 1.0.0\n  title:", 1) }, []string{`line 6`, `already defined`}},
		{"api version", func(s string) string { return strings.Replace(s, "/v1", "/v2", 1) }, []string{`apiVersion`, `not supported`}},
		{"aliases", func(s string) string {
			return strings.Replace(s, "keywords: [crm, sync]", "keywords: &k [crm]\n  title2: *k", 1)
		}, []string{`unknown field "title2"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := artifact.ParseExtension(strings.NewReader(tc.edit(validYAML)), "extension.yaml")
			if err == nil {
				t.Fatal("accepted an invalid descriptor")
			}
			if !errors.Is(err, artifact.ErrInvalidExtension) {
				t.Errorf("error %v is not ErrInvalidExtension", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseExtensionReportsEveryProblemAtOnce(t *testing.T) {
	bad := strings.NewReplacer("version: 1.4.2", "version: 1", "license: Apache-2.0", "license: nope").Replace(validYAML)
	_, err := artifact.ParseExtension(strings.NewReader(bad), "x.yaml")
	var de *artifact.DescriptorError
	if !errors.As(err, &de) || len(de.Problems) != 2 {
		t.Fatalf("want 2 problems, got %v", err)
	}
}

func TestConfigRoundTripsThroughCanonicalJSON(t *testing.T) {
	ext, err := artifact.ParseExtension(strings.NewReader(validYAML), "extension.yaml")
	if err != nil {
		t.Fatal(err)
	}
	j1, err := ext.CanonicalJSON()
	if err != nil {
		t.Fatal(err)
	}
	back, err := artifact.ParseConfig(j1)
	if err != nil {
		t.Fatal(err)
	}
	j2, _ := back.CanonicalJSON()
	if string(j1) != string(j2) {
		t.Fatalf("canonical JSON not stable:\n%s\n%s", j1, j2)
	}
	if _, err := artifact.ParseConfig([]byte(strings.Replace(string(j1), `"kind"`, `"kinds"`, 1))); !errors.Is(err, artifact.ErrInvalidExtension) {
		t.Fatalf("config with unknown field accepted: %v", err)
	}
}

func TestExamplesAreValid(t *testing.T) {
	// Extensions are the example directories with a descriptor; others
	// (examples/phases: index configurations) are tested where they belong.
	descriptors, _ := filepath.Glob("../examples/*/extension.yaml")
	if len(descriptors) < 4 {
		t.Fatalf("want an example of each kind, found %d", len(descriptors))
	}
	kinds := map[artifact.Kind]bool{}
	for _, f := range descriptors {
		ext, err := artifact.LoadExtension(filepath.Dir(f))
		if err != nil {
			t.Fatal(err)
		}
		kinds[ext.Kind] = true
	}
	for _, k := range artifact.Kinds {
		if !kinds[k] {
			t.Errorf("no example of kind %s", k)
		}
	}
	if _, err := os.Stat("../examples/salesforce-connector/extension.yaml"); err != nil {
		t.Fatal(err)
	}
}
