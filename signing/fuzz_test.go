package signing_test

import (
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/signing"
)

func FuzzDecodeEnvelope(f *testing.F) {
	stmt := `{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"` + signing.ReviewV1 + `","subject":[{"name":"r","digest":{"sha256":"ab"}}],"predicate":{"result":"approved","time":"2026-01-01T00:00:00Z"}}`
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"` + base64.StdEncoding.EncodeToString([]byte(stmt)) + `","signatures":[{"keyid":"","sig":"MEUC"}]}`))
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"!!","signatures":[]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := signing.DecodeEnvelope(data)
		if err != nil {
			return
		}
		if st.PredicateType == "" || len(st.Subject) == 0 {
			t.Fatalf("decoded a statement without type or subject: %+v", st)
		}
		_ = st.PredicateTime()
	})
}

func FuzzNormalizePredicate(f *testing.F) {
	for typ, p := range predicates {
		f.Add(typ, []byte(p))
	}
	f.Add(signing.LifecycleV1, []byte(`{"status":"yanked","reason":"x","time":"bad"}`))
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		out, err := signing.NormalizePredicate(typ, data, time.Unix(0, 0))
		if err != nil {
			var pe *signing.PredicateError
			if !errors.As(err, &pe) {
				t.Fatalf("error is not a PredicateError: %v", err)
			}
			return
		}
		// A normalized predicate is stable: normalizing again changes nothing.
		again, err := signing.NormalizePredicate(typ, out, time.Unix(99, 0))
		if err != nil || string(again) != string(out) {
			t.Fatalf("not idempotent: %s → %s (%v)", out, again, err)
		}
	})
}
