package catalog

import (
	"strings"
	"testing"
)

// FuzzBeginsWord checks the matcher search uses against its definition: w
// begins one of the words of the text.
func FuzzBeginsWord(f *testing.F) {
	f.Add("acme/crm-sync Title of it", "crm")
	f.Add("pull-requests", "requ")
	f.Add("pull-requests", "equests")
	f.Add("ééé ààà", "àà")
	f.Add("crmcrm crm", "crm")
	f.Fuzz(func(t *testing.T, text, query string) {
		text = " " + strings.Join(words(text), " ")
		for _, w := range words(query) {
			want := false
			for _, x := range strings.Fields(text) {
				if strings.HasPrefix(x, w) {
					want = true
				}
			}
			if got := beginsWord(text, w); got != want {
				t.Fatalf("beginsWord(%q, %q) = %v, want %v", text, w, got, want)
			}
		}
	})
}
