package policy

import (
	"os"
	"strings"
	"testing"
)

// The conditions docs/policy.md shows, on predicates they should pass and
// fail; a documented example that does not work is a bug.
func TestDocumentedConditions(t *testing.T) {
	env, err := celEnv()
	if err != nil {
		t.Fatal(err)
	}
	ext := map[string]any{"metadata": map[string]any{"name": "acme/crm"}}
	cases := []struct {
		cond       string
		pass, fail string
	}{
		{`predicate.result == "approved" && predicate.level in ["enterprise", "public"]`, `{"result":"approved","level":"public"}`, `{"result":"approved","level":"internal"}`},
		{`!has(predicate.findings) || predicate.findings.all(f, f.severity != "critical")`, `{"result":"approved"}`, `{"findings":[{"severity":"critical","message":"rce"}]}`},
		{`predicate.tested.exists(t, t.factory == "2.4.0" && t.result == "passed")`, `{"tested":[{"factory":"2.4.0","result":"passed"}]}`, `{"tested":[{"factory":"2.4.0","result":"failed"}]}`},
		{`predicate.pricing.model == "free" || predicate.revenueShare.publisher >= 70.0`, `{"pricing":{"model":"flat"},"revenueShare":{"publisher":70,"platform":30}}`, `{"pricing":{"model":"flat"},"revenueShare":{"publisher":60,"platform":40}}`},
		{`has(predicate.revenueShare) && predicate.revenueShare.platform <= 30.0`, `{"revenueShare":{"publisher":70,"platform":30}}`, `{"pricing":{"model":"free"}}`},
		{`extension.metadata.name.startsWith("acme/")`, `{}`, ``},
	}
	docs := readDocs(t)
	for _, c := range cases {
		if !strings.Contains(docs, c.cond) {
			t.Errorf("docs/policy.md no longer shows %s", c.cond)
		}
		prog, err := compileCEL(env, c.cond)
		if err != nil {
			t.Fatalf("%s: %v", c.cond, err)
		}
		if ok, err := evalCEL(prog, []byte(c.pass), map[string]any{}, ext); err != nil || !ok {
			t.Errorf("%s on %s: %v %v, want true", c.cond, c.pass, ok, err)
		}
		if c.fail == "" {
			continue
		}
		if ok, err := evalCEL(prog, []byte(c.fail), map[string]any{}, ext); err != nil || ok {
			t.Errorf("%s on %s: %v %v, want false", c.cond, c.fail, ok, err)
		}
	}
}

func readDocs(t *testing.T) string {
	b, err := os.ReadFile("../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
