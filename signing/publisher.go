package signing

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/cosign/v2/pkg/cosign/attestation"
	ctypes "github.com/sigstore/cosign/v2/pkg/types"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	sigopts "github.com/sigstore/sigstore/pkg/signature/options"
)

// PublisherV1 is the predicate type of a publisher verification: the
// operator's signed statement that a publisher namespace belongs to a
// tenant, holds these keys and is vouched for at this tier. An index shows
// a publisher as verified only when such a statement, signed by one of
// its operator keys, says exactly what its config binds (DESIGN §6.1).
const PublisherV1 = "https://connectsoft.io/marketplace/publisher/v1"

// Publisher is the publisher/v1 predicate.
type Publisher struct {
	Name   string `json:"name"`
	Tenant string `json:"tenant"`
	Tier   string `json:"tier"` // official | verified
	// Keys are the fingerprints of the publisher's keys, sorted.
	Keys []string  `json:"keys"`
	Time time.Time `json:"time"`
}

// Record is the publisher binding the statement is about, without its
// time: its sha256 is the statement's subject, so a statement cannot be
// moved to another binding.
func (p *Publisher) Record() []byte {
	keys := slices.Clone(p.Keys)
	slices.Sort(keys)
	b, _ := json.Marshal(struct {
		Name   string   `json:"name"`
		Tenant string   `json:"tenant"`
		Tier   string   `json:"tier"`
		Keys   []string `json:"keys"`
	}{p.Name, p.Tenant, p.Tier, keys})
	return b
}

func (p *Publisher) validate() []string {
	var out []string
	if p.Name == "" || p.Tenant == "" {
		out = append(out, "name and tenant are required")
	}
	if !oneOf(p.Tier, "official", "verified") {
		out = append(out, fmt.Sprintf("tier %q: want official or verified (community needs no verification)", p.Tier))
	}
	if len(p.Keys) == 0 {
		out = append(out, "keys: at least one key fingerprint")
	}
	if p.Time.IsZero() {
		out = append(out, "time is required")
	}
	return out
}

// AttestPublisher signs p, as the operator with s, into a DSSE envelope of
// an in-toto statement whose subject is p's Record (named
// "publisher:<name>"), the form `cosign attest-blob` writes. The envelope
// is a file the index config names (publishers[].verification).
func AttestPublisher(ctx context.Context, s *Signer, p *Publisher) ([]byte, error) {
	if p.Time.IsZero() {
		p.Time = time.Now().UTC().Truncate(time.Second)
	}
	slices.Sort(p.Keys)
	if problems := p.validate(); len(problems) > 0 {
		return nil, &PredicateError{Type: PublisherV1, Problems: problems}
	}
	pred, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(p.Record())
	st, err := attestation.GenerateStatement(attestation.GenerateOpts{
		Predicate: bytes.NewReader(pred), Type: PublisherV1, Digest: hex.EncodeToString(sum[:]), Repo: "publisher:" + p.Name,
	})
	if err != nil {
		return nil, fmt.Errorf("attest publisher %s: %w", p.Name, err)
	}
	payload, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	env, err := dsse.WrapSigner(s, ctypes.IntotoPayloadType).SignMessage(bytes.NewReader(payload), sigopts.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("attest publisher %s: %w", p.Name, err)
	}
	return env, nil
}

// ErrPublisherNotVerified matches every reason VerifyPublisher refuses.
var ErrPublisherNotVerified = errors.New("publisher not verified")

// VerifyPublisher checks that envelope is a publisher/v1 statement signed
// by one of keys whose predicate is exactly want (name, tenant, tier and
// keys; the time is the statement's) and whose subject is want's Record.
// It returns the verified predicate and the signing key's fingerprint.
func VerifyPublisher(ctx context.Context, envelope []byte, keys []*Key, want *Publisher, now time.Time) (*Publisher, string, error) {
	fail := func(format string, args ...any) (*Publisher, string, error) {
		return nil, "", fmt.Errorf("%w: "+format, append([]any{ErrPublisherNotVerified}, args...)...)
	}
	st, err := DecodeEnvelope(envelope)
	if err != nil {
		return fail("%v", err)
	}
	if st.PredicateType != PublisherV1 {
		return fail("predicate type %s, want %s", st.PredicateType, PublisherV1)
	}
	sum := sha256.Sum256(want.Record())
	h := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	layer := sigLayer{payload: envelope}
	var signer string
	for _, k := range keys {
		if verifyAttestation(ctx, k.Verifier, &layer, h) == nil {
			signer = k.Fingerprint
			break
		}
	}
	if signer == "" {
		return fail("no operator key verifies it for %s as configured (a key of the operator signed it about exactly this name, tenant, tier and keys?)", want.Name)
	}
	var got Publisher
	dec := json.NewDecoder(bytes.NewReader(st.Predicate))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		return fail("predicate: %v", err)
	}
	if problems := got.validate(); len(problems) > 0 {
		return fail("predicate: %v", problems)
	}
	if !bytes.Equal(got.Record(), want.Record()) {
		return fail("it states %s, the config binds %s", got.Record(), want.Record())
	}
	if got.Time.After(now.Add(MaxClockSkew)) {
		return fail("dated %s, in the future", got.Time.Format(time.RFC3339))
	}
	return &got, signer, nil
}
