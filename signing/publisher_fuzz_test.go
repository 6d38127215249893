package signing_test

import (
	"context"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/signing"
)

// FuzzVerifyPublisher feeds hostile envelopes to the publisher
// verification the index runs on a config's verification file: it never
// panics, and it never verifies without a key (none is given here).
func FuzzVerifyPublisher(f *testing.F) {
	stmt := `{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"` + signing.PublisherV1 + `","subject":[{"name":"publisher:acme","digest":{"sha256":"ab"}}],"predicate":{"name":"acme","tenant":"acme","tier":"verified","keys":["ab"],"time":"2026-01-01T00:00:00Z"}}`
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"` + base64.StdEncoding.EncodeToString([]byte(stmt)) + `","signatures":[{"keyid":"","sig":"MEUC"}]}`))
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"!!","signatures":[]}`))
	f.Add([]byte(`null`))
	want := &signing.Publisher{Name: "acme", Tenant: "acme", Tier: "verified", Keys: []string{"ab"}}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, _, err := signing.VerifyPublisher(context.Background(), data, nil, want, time.Now())
		if err == nil || p != nil || !errors.Is(err, signing.ErrPublisherNotVerified) {
			t.Fatalf("verified without a key: %+v %v", p, err)
		}
	})
}
