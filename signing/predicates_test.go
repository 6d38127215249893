package signing_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/signing"
)

func TestFutureDatedRefusesStatementsBeyondTheClockSkew(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name, typ, predicate string
		field                string // "" when the statement is not future-dated
	}{
		{"past lifecycle", signing.LifecycleV1, `{"status":"active","time":"2026-11-29T11:00:00Z"}`, ""},
		{"within the skew", signing.LifecycleV1, `{"status":"active","time":"2026-11-29T12:05:00Z"}`, ""},
		{"just beyond the skew", signing.LifecycleV1, `{"status":"active","time":"2026-11-29T12:05:01Z"}`, "time"},
		{"2099 review", signing.ReviewV1, `{"result":"approved","time":"2099-01-01T00:00:00Z"}`, "time"},
		{"terms in force later", signing.TermsV1, `{"license":"MIT","effectiveDate":"2099-01-01T00:00:00Z","time":"2026-11-29T11:00:00Z"}`, "effectiveDate"},
		{"effectiveDate means nothing outside terms", signing.ReviewV1, `{"effectiveDate":"2099-01-01T00:00:00Z"}`, ""},
		{"no time", signing.LifecycleV1, `{"status":"active"}`, ""},
		{"unreadable time", signing.LifecycleV1, `{"time":"soon"}`, ""},
		{"not an object", signing.LifecycleV1, `[1,2]`, ""},
	}
	for _, tc := range cases {
		st := &signing.Statement{PredicateType: tc.typ, Predicate: json.RawMessage(tc.predicate)}
		field, at, future := signing.FutureDated(st, now)
		if future != (tc.field != "") || field != tc.field {
			t.Errorf("%s: FutureDated = %q, %v, %v; want field %q", tc.name, field, at, future, tc.field)
		}
		if future && !at.After(now.Add(signing.MaxClockSkew)) {
			t.Errorf("%s: reported time %v is not beyond the skew", tc.name, at)
		}
	}
	if _, _, future := signing.FutureDated(nil, now); future {
		t.Error("a missing statement is future-dated")
	}
}

func FuzzFutureDated(f *testing.F) {
	f.Add(signing.TermsV1, []byte(`{"effectiveDate":"2099-01-01T00:00:00Z","time":"2026-11-29T11:00:00Z"}`))
	f.Add(signing.LifecycleV1, []byte(`{"status":"active","time":"2099-01-01T00:00:00Z"}`))
	f.Add(signing.ReviewV1, []byte(`{"time":"9999-12-31T23:59:59.999999999+14:00"}`))
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, typ string, predicate []byte) {
		st := &signing.Statement{PredicateType: typ, Predicate: predicate}
		field, at, future := signing.FutureDated(st, now)
		if future != (field != "") || future && !at.After(now.Add(signing.MaxClockSkew)) {
			t.Fatalf("FutureDated(%s) = %q, %v, %v", predicate, field, at, future)
		}
	})
}
