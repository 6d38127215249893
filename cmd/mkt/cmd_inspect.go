package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/signing"
	"github.com/spf13/cobra"
)

func newInspectCmd(g *globals) *cobra.Command {
	var keyRefs []string
	cmd := &cobra.Command{
		Use:     "inspect REF",
		Short:   "Show an extension's descriptor, digest, layers and what refers to it",
		Example: `  mkt inspect registry.example.com/acme/salesforce:1.4.2`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			repo, err := artifact.NewRepository(args[0], g.remote())
			if err != nil {
				return usageError{err}
			}
			in, err := artifact.Inspect(cmd.Context(), repo, repo.Reference.Reference)
			if err != nil {
				return err
			}
			sigs, err := signatures(cmd.Context(), g, args[0], in.Descriptor.Digest.String(), keyRefs)
			if err != nil {
				return err
			}
			if g.json() {
				return writeJSON(g.stdout, map[string]any{
					"reference":    args[0],
					"digest":       in.Descriptor.Digest,
					"mediaType":    in.Descriptor.MediaType,
					"artifactType": in.Manifest.ArtifactType,
					"size":         in.Descriptor.Size,
					"annotations":  in.Manifest.Annotations,
					"layers":       in.Manifest.Layers,
					"extension":    in.Extension,
					"related":      in.Related,
					"signatures":   sigs.Signatures,
					"attestations": sigs.Attestations,
				})
			}
			printInspection(g, args[0], in)
			printRelatedSignatures(g, sigs, len(keyRefs) > 0)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&keyRefs, "key", nil, "public key to check signers against; repeatable")
	return cmd
}

// signatures collects the signatures and attestations of digest in the
// repository of ref, checked against the given keys (if any).
func signatures(ctx context.Context, g *globals, ref, digest string, keyRefs []string) (*signing.Result, error) {
	c, err := signing.NewClient(g.remote())
	if err != nil {
		return nil, err
	}
	r, err := artifact.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	ev, err := c.Collect(ctx, r.Registry+"/"+r.Repository+"@"+digest)
	if err != nil {
		return nil, err
	}
	var opts signing.VerifyOptions
	for _, r := range keyRefs {
		k, err := signing.LoadKey(ctx, r)
		if err != nil {
			return nil, err
		}
		opts.Keys = append(opts.Keys, k)
	}
	return ev.Check(ctx, opts)
}

func printInspection(g *globals, ref string, in *artifact.Inspection) {
	e := in.Extension
	w := g.stdout
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-15s %s\n", k+":", artifact.Printable(v))
		}
	}
	row("Reference", ref)
	row("Digest", in.Descriptor.Digest.String())
	row("Artifact type", in.Manifest.ArtifactType)
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
	for _, l := range in.Manifest.Layers {
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
