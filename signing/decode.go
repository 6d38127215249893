package signing

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	ctypes "github.com/sigstore/cosign/v2/pkg/types"
)

// maxEnvelopeSize bounds an attestation layer: statements are small.
const maxEnvelopeSize = 4 << 20

// Statement is an in-toto statement, as much of it as verification reads.
type Statement struct {
	Type          string          `json:"_type"`
	PredicateType string          `json:"predicateType"`
	Subject       []Subject       `json:"subject"`
	Predicate     json.RawMessage `json:"predicate"`
}

// Subject is what a statement is about.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

type envelope struct {
	PayloadType string `json:"payloadType"`
	Payload     string `json:"payload"`
	Signatures  []struct {
		KeyID string `json:"keyid"`
		Sig   string `json:"sig"`
	} `json:"signatures"`
}

// DecodeEnvelope reads the in-toto statement out of a DSSE envelope. It
// does not verify the signature: callers verify first (cosign's verifier
// does) and decode what verified.
func DecodeEnvelope(raw []byte) (*Statement, error) {
	if len(raw) > maxEnvelopeSize {
		return nil, fmt.Errorf("DSSE envelope larger than %d bytes", maxEnvelopeSize)
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("DSSE envelope: %w", err)
	}
	if env.PayloadType != ctypes.IntotoPayloadType {
		return nil, fmt.Errorf("DSSE payloadType %q, want %s", env.PayloadType, ctypes.IntotoPayloadType)
	}
	if len(env.Signatures) == 0 {
		return nil, errors.New("DSSE envelope has no signature")
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("DSSE payload is not base64: %w", err)
	}
	var st Statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("in-toto statement: %w", err)
	}
	if st.PredicateType == "" {
		return nil, errors.New("in-toto statement has no predicateType")
	}
	if len(st.Subject) == 0 {
		return nil, errors.New("in-toto statement has no subject")
	}
	return &st, nil
}

// PredicateTime is the "time" field of a predicate, which all Marketplace
// predicate types carry; zero when absent or unreadable.
func (s *Statement) PredicateTime() time.Time {
	var p struct {
		Time time.Time `json:"time"`
	}
	_ = json.Unmarshal(s.Predicate, &p)
	return p.Time
}
