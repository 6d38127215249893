package index_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index/client"
	"github.com/connectsoft/marketplace/index/store"
)

// TestImpactHidesQuarantinedVersions: a quarantined version (not passed
// its stage's policy, DESIGN §6.2) is seen only by its own tenant and by
// reviewers, also where the impact graph would name it: as a dependent in
// another publisher's blast radius, on the anonymous page of a yanked
// version, and in the 403-versus-404 answer to a query naming it.
func TestImpactHidesQuarantinedVersions(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			w := newImpactWorld(t, s.open(t))
			ctx := context.Background()
			// initech's new public version, held in the public stage's
			// quarantine, depends on acme/http 1.2.0.
			desc, _ := json.Marshal(map[string]any{"apiVersion": "marketplace.connectsoft.io/v1", "kind": "Module",
				"metadata": map[string]any{"name": "initech/embargoed", "version": "1.0.0"},
				"spec":     map[string]any{"license": "MIT", "dependencies": []map[string]string{{"name": "acme/http", "version": "^1.2.0"}}}})
			if _, err := w.st.UpsertVersion(ctx, &store.Version{Tenant: "initech", Name: "initech/embargoed", Version: "1.0.0",
				Repository: "reg/initech/embargoed", Digest: "sha256:initech/embargoed@1.0.0", Kind: "Module", License: "MIT",
				Visibility: store.Public, Stage: "public", Quarantined: true, Descriptor: desc, IngestedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			got, err := w.impact("acme/publisher", client.ImpactQuery{Name: "acme/http", Version: "1.2.0"})
			if err != nil {
				t.Fatal(err)
			}
			if body, _ := json.Marshal(got); strings.Contains(string(body), "embargoed") {
				t.Errorf("acme's impact names initech's quarantined version: %s", body)
			}
			// Naming it: exactly like a version that does not exist.
			for _, q := range []client.ImpactQuery{{Name: "initech/embargoed", Version: "1.0.0"}, {Digest: "sha256:initech/embargoed@1.0.0"}} {
				if _, err := w.impact("globex/publisher", q); !errors.Is(err, client.ErrNotFound) {
					t.Errorf("globex asking for initech's quarantined %+v: %v, want not found, as for none", q, err)
				}
			}
			// The anonymous page of a yanked acme/http 1.2.0.
			v, err := w.st.Version(ctx, "acme", "acme/http", "1.2.0")
			if err != nil {
				t.Fatal(err)
			}
			v.Lifecycle = "yanked"
			if _, err := w.st.UpsertVersion(ctx, v); err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(mustRequest(t, w.url+"/extensions/acme/http", ""))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(b), `data-impact="1.2.0"`) {
				t.Fatalf("page: %d %s", resp.StatusCode, b)
			}
			if strings.Contains(string(b), "embargoed") {
				t.Errorf("the anonymous page of yanked acme/http 1.2.0 names initech's quarantined version")
			}
			// Its own tenant still sees it in its blast radius.
			if got, err := w.impact("initech/publisher", client.ImpactQuery{Name: "initech/embargoed", Version: "1.0.0"}); err != nil || len(got.Targets) != 1 {
				t.Errorf("initech's own quarantined version: %+v %v", got, err)
			}
		})
	}
}
