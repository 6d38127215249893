package snapshot_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/connectsoft/marketplace/resolve/snapshot"
)

// FuzzParseCatalog feeds the catalog decoder arbitrary bytes: it must
// return a catalog or an error, never panic, and a catalog it accepts
// must encode and parse again to the same entries.
func FuzzParseCatalog(f *testing.F) {
	good, _ := json.Marshal(catalogOf(3))
	f.Add(good)
	f.Add([]byte(`{"apiVersion":"marketplace.connectsoft.io/v1","kind":"Catalog","versions":[]}`))
	f.Add([]byte(`{"apiVersion":"marketplace.connectsoft.io/v1","kind":"Catalog","versions":[{"name":"a/b","version":"1.0.0","repository":"r.io/a/b","digest":"sha256:` +
		"0000000000000000000000000000000000000000000000000000000000000000" + `","kind":"Connector","dependencies":[{"name":"a/c","version":">=1"}]}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := snapshot.ParseCatalog(bytes.NewReader(data))
		if err != nil {
			return
		}
		again, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := snapshot.ParseCatalog(bytes.NewReader(again))
		if err != nil {
			t.Fatalf("an accepted catalog does not parse again: %v", err)
		}
		if len(c2.Versions) != len(c.Versions) {
			t.Fatalf("%d versions, then %d", len(c.Versions), len(c2.Versions))
		}
	})
}
