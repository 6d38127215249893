package catalog

import (
	"strings"
	"testing"
)

// FuzzTextMatches checks the matcher search uses (signature, then word
// beginnings) against its definition: every query word begins one of the
// words of the text.
func FuzzTextMatches(f *testing.F) {
	f.Add("acme/crm-sync Title of it", "crm")
	f.Add("pull-requests", "requ")
	f.Add("pull-requests", "equests")
	f.Add("ééé ààà", "àà")
	f.Add("crmcrm crm", "crm sy")
	f.Add("a b c", "a")
	f.Fuzz(func(t *testing.T, text, query string) {
		ws := words(text)
		joined := " " + strings.Join(ws, " ")
		want := words(query)
		expect := true
		for _, w := range want {
			found := false
			for _, x := range ws {
				found = found || strings.HasPrefix(x, w)
			}
			expect = expect && found
		}
		if got := textMatches(joined, signature(ws), want, signature(want)); got != expect {
			t.Fatalf("textMatches(%q, %q) = %v, want %v", joined, want, got, expect)
		}
	})
}
