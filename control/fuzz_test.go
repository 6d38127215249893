package control_test

import (
	"testing"

	"github.com/connectsoft/marketplace/control"
)

// FuzzParse holds the list parser to never panic, and to accept only
// lists that survive their own canonical form.
func FuzzParse(f *testing.F) {
	f.Add([]byte("apiVersion: marketplace.connectsoft.io/v1\nkind: ControlList\nsequence: 1\nexpires: 2030-01-01T00:00:00Z\nentries:\n  - {name: acme/x, versions: [\"<2\"], action: yank, reason: r, time: 2026-01-01T00:00:00Z}\n"))
	f.Add([]byte(`{"apiVersion":"marketplace.connectsoft.io/v1","kind":"ControlList","sequence":2,"expires":"2030-01-01T00:00:00Z","entries":[{"digest":"` + d1 + `","action":"block","reason":"r","time":"2026-01-01T00:00:00Z"}]}`))
	f.Add([]byte("entries: [{digest: 1}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := control.Parse(data, "fuzz")
		if err != nil {
			return
		}
		body, err := l.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		again, err := control.Parse(body, "canonical")
		if err != nil {
			t.Fatalf("a parsed list's canonical form does not parse: %v\n%s", err, body)
		}
		if again.Sequence != l.Sequence || len(again.Entries) != len(l.Entries) {
			t.Fatalf("canonical form differs: %+v vs %+v", again, l)
		}
	})
}
