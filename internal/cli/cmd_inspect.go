package cli

import (
	"fmt"
	"strings"

	"github.com/connectsoft/marketplace"
	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/signing"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

func newInspectCmd(g *globals) *cobra.Command {
	var keyRefs []string
	cmd := &cobra.Command{
		Use:     "inspect REF",
		Short:   "Show an extension's descriptor, digest, layers and what refers to it",
		Example: `  mkt inspect registry.example.com/acme/salesforce:1.4.2`,
		Args:    exactArgs(1),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			if _, err := artifact.ParseReference(args[0]); err != nil {
				return nil, usageError{err}
			}
			keys, err := signing.LoadKeys(cmd.Context(), keyRefs)
			if err != nil {
				return nil, err
			}
			in, err := marketplace.Inspect(cmd.Context(), args[0], keys, g.remote())
			if err != nil {
				return nil, err
			}
			return &inspectResult{
				Reference:    args[0],
				Digest:       in.Descriptor.Digest,
				MediaType:    in.Descriptor.MediaType,
				ArtifactType: in.Manifest.ArtifactType,
				Size:         in.Descriptor.Size,
				Annotations:  in.Manifest.Annotations,
				Layers:       in.Manifest.Layers,
				Extension:    in.Extension,
				Related:      in.Related,
				Signatures:   in.Signatures,
				Attestations: in.Attestations,
				keysGiven:    len(keys) > 0,
			}, nil
		}),
	}
	cmd.Flags().StringArrayVar(&keyRefs, "key", nil, "public key to check signers against; repeatable")
	return cmd
}

// inspectResult is an artifact's descriptor, manifest and evidence.
type inspectResult struct {
	Reference    string                      `json:"reference"`
	Digest       digest.Digest               `json:"digest"`
	MediaType    string                      `json:"mediaType"`
	ArtifactType string                      `json:"artifactType"`
	Size         int64                       `json:"size"`
	Annotations  map[string]string           `json:"annotations"`
	Layers       []ocispec.Descriptor        `json:"layers"`
	Extension    *artifact.Extension         `json:"extension"`
	Related      []artifact.Related          `json:"related"`
	Signatures   []signing.SignatureResult   `json:"signatures"`
	Attestations []signing.AttestationResult `json:"attestations"`
	keysGiven    bool
}

func (r *inspectResult) printText(p *printer) {
	printInspection(p, r)
	printRelatedSignatures(p, r.Signatures, r.Attestations, r.keysGiven)
}

func printInspection(p *printer, in *inspectResult) {
	e := in.Extension
	w := p.stdout
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-15s %s\n", k+":", artifact.Printable(v))
		}
	}
	row("Reference", in.Reference)
	row("Digest", in.Digest.String())
	row("Artifact type", in.ArtifactType)
	row("Name", e.Metadata.Name+" "+e.Metadata.Version)
	row("Kind", string(e.Kind))
	row("Title", e.Metadata.Title)
	row("Description", e.Metadata.Description)
	row("License", e.Spec.License)
	row("Factory", e.Spec.Compatibility.Factory)
	deps := make([]string, len(e.Spec.Dependencies))
	for i, d := range e.Spec.Dependencies {
		deps[i] = d.Name + " " + d.Version
	}
	row("Depends on", strings.Join(deps, ", "))
	row("Permissions", strings.Join(e.Spec.Permissions, ", "))
	row("Entrypoint", e.Spec.Entrypoint)
	row("Keywords", strings.Join(e.Metadata.Keywords, ", "))
	row("Homepage", e.Metadata.Homepage)
	row("Source", e.Metadata.Source)
	fmt.Fprintln(w, "Layers:")
	for _, l := range in.Layers {
		fmt.Fprintf(w, "  %s  %9s  %s\n", l.Digest, humanSize(l.Size), artifact.Printable(l.MediaType))
	}
	if len(in.Related) == 0 {
		fmt.Fprintln(w, "Related:        none")
		return
	}
	fmt.Fprintln(w, "Related:")
	for _, r := range in.Related {
		what := "referrer " + r.Descriptor.ArtifactType
		if r.Tag != "" {
			what = "cosign tag " + r.Tag
		}
		fmt.Fprintf(w, "  %s  %s\n", r.Descriptor.Digest, artifact.Printable(what))
	}
}
