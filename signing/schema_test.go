package signing_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/signing"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

func TestPredicateSchemasAgreeWithValidation(t *testing.T) {
	files := map[string]string{
		signing.ReviewV1: "review-v1", signing.CompatibilityV1: "compatibility-v1",
		signing.TermsV1: "terms-v1", signing.LifecycleV1: "lifecycle-v1",
	}
	invalid := map[string][]string{
		signing.ReviewV1:        {`{"reviewer":"r","level":"public","time":"2026-01-01T00:00:00Z"}`, `{"reviewer":"r","result":"approved","level":"public","score":3,"time":"2026-01-01T00:00:00Z"}`},
		signing.CompatibilityV1: {`{"constraint":">=2","tested":[],"time":"2026-01-01T00:00:00Z"}`},
		signing.TermsV1:         {`{"license":"MIT","pricing":{"model":"flat","price":10,"currency":"euro"},"effectiveDate":"2026-01-01T00:00:00Z","time":"2026-01-01T00:00:00Z"}`},
		signing.LifecycleV1:     {`{"status":"yanked","time":"2026-01-01T00:00:00Z"}`, `{"status":"retired","reason":"x","time":"2026-01-01T00:00:00Z"}`},
	}
	for typ, file := range files {
		raw, err := signing.Schemas.ReadFile("schema/" + file + ".schema.json")
		if err != nil {
			t.Fatal(err)
		}
		doc, _ := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		c := jsonschema.NewCompiler()
		c.AddResource(file, doc)
		schema, err := c.Compile(file)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		// What validation accepts (and completes with a time), the schema accepts.
		norm, err := signing.NormalizePredicate(typ, []byte(predicates[typ]), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		v, _ := jsonschema.UnmarshalJSON(bytes.NewReader(norm))
		if err := schema.Validate(v); err != nil {
			t.Errorf("%s schema refuses a valid predicate %s: %v", file, norm, err)
		}
		// A predicate as signed must be complete: without its time, both the
		// schema and ValidatePredicate refuse it.
		if err := signing.ValidatePredicate(typ, norm); err != nil {
			t.Errorf("%s: ValidatePredicate refuses a complete predicate %s: %v", file, norm, err)
		}
		if !strings.Contains(predicates[typ], `"time"`) {
			if err := signing.ValidatePredicate(typ, []byte(predicates[typ])); err == nil || !strings.Contains(err.Error(), "time is required") {
				t.Errorf("%s: ValidatePredicate accepts %s without a time: %v", file, predicates[typ], err)
			}
			v, _ := jsonschema.UnmarshalJSON(strings.NewReader(predicates[typ]))
			if err := schema.Validate(v); err == nil {
				t.Errorf("%s schema accepts %s without a time", file, predicates[typ])
			}
		}
		for _, bad := range invalid[typ] {
			if _, err := signing.NormalizePredicate(typ, []byte(bad), time.Now()); err == nil {
				t.Fatalf("%s: validation accepts %s, so the case is wrong", file, bad)
			}
			if err := signing.ValidatePredicate(typ, []byte(bad)); err == nil {
				t.Errorf("%s: ValidatePredicate accepts what the schema refuses: %s", file, bad)
			}
			v, _ := jsonschema.UnmarshalJSON(strings.NewReader(bad))
			if err := schema.Validate(v); err == nil {
				t.Errorf("%s schema accepts what validation refuses: %s", file, bad)
			}
		}
	}
}
