package servercmd

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index/billing"
)

// A preview whose usage has no terms in force says why terms were
// ignored, in text as in JSON (the statement's problems): an operator who
// attested terms with its own key sees that only the publisher's keys set
// them.
func TestStatementTextNamesIgnoredTerms(t *testing.T) {
	why := "acme/widget@0.1.0: terms signed by key 28e0a9b54538 ignored: not a key of the extension's publisher"
	s := &billing.Statement{Publisher: "acme", Period: "2026-10", Status: "open", Cutoff: time.Date(2026, 11, 29, 22, 0, 0, 0, time.UTC),
		Lines:    []billing.Line{{Extension: "acme/widget", Tenant: "globex", Status: billing.StatusNoTerms, Installs: 5}},
		Problems: []string{why}}
	var out bytes.Buffer
	printStatement(&out, s)
	if !strings.Contains(out.String(), "no terms") || !strings.Contains(out.String(), "  problem: "+why+"\n") {
		t.Fatalf("the text preview does not say why the line has no terms:\n%s", out.String())
	}
}
