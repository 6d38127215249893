package artifact

import (
	"fmt"
	"strings"
)

// Media types and annotation keys of the Marketplace OCI mapping (DESIGN §3).
// They are part of the public contract: other tools recognise extensions by them.
const (
	// APIVersion is the only extension.yaml schema version this package reads.
	APIVersion = "marketplace.connectsoft.io/v1"

	// ConfigMediaType is the config blob: the descriptor as canonical JSON.
	ConfigMediaType = "application/vnd.connectsoft.extension.config.v1+json"
	// LayerMediaType is the single content layer: a reproducible tar+gzip.
	LayerMediaType = "application/vnd.connectsoft.extension.content.v1.tar+gzip"

	artifactTypePrefix = "application/vnd.connectsoft."
	artifactTypeSuffix = ".v1"

	// AnnotationName and friends are ours, beside the org.opencontainers ones.
	AnnotationName          = "io.connectsoft.marketplace.name"
	AnnotationKind          = "io.connectsoft.marketplace.kind"
	AnnotationCompatibility = "io.connectsoft.marketplace.compatibility.factory"
)

// Kind is the sort of extension Factory loads: it selects the artifact type.
type Kind string

// The four kinds of extension Factory knows.
const (
	KindTemplate  Kind = "Template"
	KindAgent     Kind = "Agent"
	KindModule    Kind = "Module"
	KindConnector Kind = "Connector"
)

// Kinds lists every valid kind, in the order documentation shows them.
var Kinds = []Kind{KindTemplate, KindAgent, KindModule, KindConnector}

// Valid reports whether k is one of Kinds.
func (k Kind) Valid() bool {
	for _, v := range Kinds {
		if k == v {
			return true
		}
	}
	return false
}

// ArtifactType is the manifest artifactType for k, e.g.
// application/vnd.connectsoft.connector.v1.
func (k Kind) ArtifactType() string {
	return artifactTypePrefix + strings.ToLower(string(k)) + artifactTypeSuffix
}

// ParseKind accepts a kind in any letter case ("connector", "Connector").
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if strings.EqualFold(s, string(k)) {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown kind %q: want one of Template, Agent, Module, Connector", s)
}

// KindOfArtifactType maps a manifest artifactType back to its kind; ok is
// false for anything that is not a Marketplace extension.
func KindOfArtifactType(artifactType string) (Kind, bool) {
	for _, k := range Kinds {
		if k.ArtifactType() == artifactType {
			return k, true
		}
	}
	return "", false
}
