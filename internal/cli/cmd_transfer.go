package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/remote"
	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
	"oras.land/oras-go/v2/registry/remote/auth"
)

func newPushCmd(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "push REF [DIR]",
		Short: "Pack DIR (default .) and push it to a registry",
		Long: `Pack the extension in DIR into a reproducible OCI artifact and push it to REF.
A REF without a tag is tagged with the extension's version. Version tags are
immutable: pushing other content to an existing version fails unless --force.
SOURCE_DATE_EPOCH, when set, is written as org.opencontainers.image.created.`,
		Example: `  mkt push registry.example.com/acme/salesforce ./salesforce
  mkt push --plain-http localhost:5000/acme/salesforce --format json`,
		Args: rangeArgs(1, 2),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			ref, err := artifact.ParseReference(args[0])
			if err != nil {
				return nil, usageError{err}
			}
			if strings.Contains(args[0], "@") {
				return nil, usagef("push %s: give a tag or no reference, not a digest", args[0])
			}
			dir := "."
			if len(args) == 2 {
				dir = args[1]
			}
			created, err := artifact.SourceDateEpoch()
			if err != nil {
				return nil, usageError{err}
			}
			pkg, err := artifact.Pack(cmd.Context(), dir, artifact.PackOptions{Created: created})
			if err != nil {
				return nil, err
			}
			defer pkg.Close()
			repoName := ref.Registry + "/" + ref.Repository
			if !strings.HasSuffix("/"+ref.Repository, "/"+pkg.Extension.Metadata.Name) {
				fmt.Fprintf(g.stderr, "warning: repository %s does not end with the extension name %s; resolution by name (--registry HOST[/PREFIX]) will not find it\n", ref.Repository, pkg.Extension.Metadata.Name)
			}
			repo, err := artifact.NewRepository(repoName, g.remote())
			if err != nil {
				return nil, err
			}
			tag := ref.Reference
			if tag == "" {
				tag = pkg.Extension.Metadata.Version
			}
			res, err := artifact.Push(cmd.Context(), repo, tag, pkg, artifact.PushOptions{Force: force, Progress: newProgress(g).event})
			if err != nil {
				return nil, fmt.Errorf("push %s:%s: %w", repoName, tag, err)
			}
			out := &pushResult{
				Reference:    repoName + ":" + tag,
				Digest:       res.Manifest.Digest,
				MediaType:    res.Manifest.MediaType,
				ArtifactType: res.Manifest.ArtifactType,
				Size:         res.Manifest.Size,
				Name:         pkg.Extension.Metadata.Name,
				Version:      pkg.Extension.Metadata.Version,
				Files:        pkg.Files,
				LayerSize:    pkg.Layer.Size,
				Unchanged:    res.Unchanged,
			}
			if res.Replaced != nil {
				out.Replaced = res.Replaced.Digest
			}
			return out, nil
		}),
	}
	cmd.Flags().BoolVar(&force, "force", false, "move an existing version tag to this content")
	return cmd
}

func newPullCmd(g *globals) *cobra.Command {
	var (
		out    string
		force  bool
		limits artifact.Limits
		pf     policyFlags
		keys   []string
	)
	cmd := &cobra.Command{
		Use:   "pull REF -o DIR",
		Short: "Pull an extension and unpack it into DIR",
		Long: `Pull the extension REF names, check every digest and unpack it into DIR.
The layer is unpacked beside DIR first and moved into place only when all of it
is valid, so a failed pull leaves nothing behind. Links, devices, absolute
paths, "..", duplicate entries and layers over the limits are refused.`,
		Example: `  mkt pull registry.example.com/acme/salesforce:1.4.2 -o ./salesforce`,
		Args:    exactArgs(1),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			if out == "" {
				return nil, usagef("pull needs -o DIR")
			}
			repo, err := artifact.NewRepository(args[0], g.remote())
			if err != nil {
				return nil, usageError{err}
			}
			ref := repo.Reference.Reference
			if len(keys) > 0 && pf.policyFile != "" {
				return nil, usagef("give --key or --policy, not both")
			}
			if len(keys) > 0 {
				if ref, err = verifyKeys(cmd.Context(), g, args[0], keys); err != nil {
					return nil, err
				}
			}
			if pf.policyFile != "" {
				// Verify first, then pull exactly the digest the policy
				// allowed: nothing is unpacked from a denied artifact, and a
				// tag that moves in between changes nothing.
				if ref, err = verifyPolicy(cmd.Context(), g, args[0], &pf); err != nil {
					return nil, err
				}
			}
			res, err := artifact.Pull(cmd.Context(), repo, ref, out, artifact.PullOptions{Limits: limits, Force: force, Progress: newProgress(g).event})
			if err != nil {
				return nil, err
			}
			ext := res.Artifact.Extension
			return &pullResult{
				Reference: args[0], Digest: res.Artifact.Descriptor.Digest, Name: ext.Metadata.Name,
				Version: ext.Metadata.Version, Kind: ext.Kind, Directory: out,
				Files: res.Stats.Files, Bytes: res.Stats.Bytes,
			}, nil
		}),
	}
	f := cmd.Flags()
	f.StringVarP(&out, "output", "o", "", "directory to unpack into (created; must be empty unless --force)")
	f.BoolVar(&force, "force", false, "replace a non-empty output directory")
	f.IntVar(&limits.MaxFiles, "max-files", 0, fmt.Sprintf("most entries a layer may hold (default %d)", artifact.DefaultLimits.MaxFiles))
	f.Int64Var(&limits.MaxTotalSize, "max-size", 0, fmt.Sprintf("most bytes a layer may unpack to (default %d)", artifact.DefaultLimits.MaxTotalSize))
	f.Int64Var(&limits.MaxRatio, "max-ratio", 0, fmt.Sprintf("highest compression ratio accepted (default %d)", artifact.DefaultLimits.MaxRatio))
	f.StringVar(&pf.policyFile, "policy", "", "verify against this policy before unpacking")
	f.StringArrayVar(&keys, "key", nil, "verify a signature by one of these public keys before unpacking; repeatable")
	f.StringVar(&pf.factory, "factory-version", "", "the Factory version, for the policy's compatibility check")
	return cmd
}

func newCopyCmd(g *globals) *cobra.Command {
	var fromLayout, toLayout, skipRelated bool
	var concurrency int
	var from, to copySide
	cmd := &cobra.Command{
		Use:   "copy SRC DST",
		Short: "Copy an extension with its signatures, attestations and referrers",
		Long: `Copy the artifact SRC names to DST, with the cosign signature, attestation and SBOM
tags that belong to it and its OCI referrers, between registries or to and from
OCI image layouts (PATH[:TAG|@DIGEST]) for mirroring and air-gapped transfer.
A DST without a tag takes SRC's. The global --plain-http, --insecure, --ca-file and
--registry-config apply to both sides; the --from-* and --to-* flags, as oras copy
has them, set one side (a --from-ca-file or --to-ca-file replaces --ca-file there).`,
		Example: `  mkt copy registry.example.com/acme/crm:1.0.0 mirror.internal/acme/crm
  mkt copy registry.example.com/acme/crm:1.0.0 ./airgap:1.0.0 --to-oci-layout
  mkt copy --from-plain-http localhost:5000/acme/crm:1.0.0 mirror.internal/acme/crm --to-ca-file mirror-ca.pem`,
		Args: exactArgs(2),
		RunE: g.action(func(cmd *cobra.Command, args []string) (result, error) {
			srcRemote, err := from.options(g, "from")
			if err != nil {
				return nil, err
			}
			dstRemote, err := to.options(g, "to")
			if err != nil {
				return nil, err
			}
			src, srcRef, err := artifact.OpenTarget(args[0], fromLayout, srcRemote)
			if err != nil {
				return nil, usageError{err}
			}
			dst, dstRef, err := artifact.OpenTarget(args[1], toLayout, dstRemote)
			if err != nil {
				return nil, usageError{err}
			}
			if srcRef == "" {
				return nil, usagef("copy %s: give a tag or digest to copy", args[0])
			}
			if dstRef == "" && !strings.Contains(srcRef, ":") {
				dstRef = srcRef
			}
			p := newProgress(g)
			res, err := artifact.Copy(cmd.Context(), src, srcRef, dst, dstRef, artifact.CopyOptions{SkipRelated: skipRelated, Concurrency: concurrency, Progress: p.event})
			if err != nil {
				return nil, err
			}
			return &copyResult{Source: args[0], Destination: args[1], Digest: res.Manifest.Digest, Related: res.Related}, nil
		}),
	}
	f := cmd.Flags()
	f.BoolVar(&fromLayout, "from-oci-layout", false, "SRC is an OCI image layout PATH[:TAG|@DIGEST]")
	f.BoolVar(&toLayout, "to-oci-layout", false, "DST is an OCI image layout PATH[:TAG|@DIGEST]")
	f.BoolVar(&skipRelated, "skip-related", false, "copy the artifact alone, without signatures, attestations and referrers")
	f.IntVar(&concurrency, "concurrency", 0, "parallel blob transfers (default 3)")
	from.register(cmd, "from", "source")
	to.register(cmd, "to", "destination")
	return cmd
}

// copySide holds copy's connection flags for one side (--from-* or --to-*,
// as oras copy names them), so that a copy can go from a plain-HTTP
// registry to a TLS one, or between registries with different credentials.
type copySide struct {
	plainHTTP, insecure                      bool
	caFile, registryConfig, username, secret string
}

func (s *copySide) register(cmd *cobra.Command, side, what string) {
	f := cmd.Flags()
	f.BoolVar(&s.plainHTTP, side+"-plain-http", false, "talk to the "+what+" registry over plain HTTP")
	f.BoolVar(&s.insecure, side+"-insecure", false, "skip TLS certificate verification of the "+what+" registry")
	f.StringVar(&s.caFile, side+"-ca-file", "", "PEM file of extra CA certificates to trust for the "+what+" registry (instead of --ca-file)")
	f.StringVar(&s.registryConfig, side+"-registry-config", "", "docker config.json with the "+what+" registry's credentials (instead of --registry-config)")
	f.StringVar(&s.username, side+"-username", "", "user name for the "+what+" registry (with --"+side+"-password; else the docker config's)")
	f.StringVar(&s.secret, side+"-password", "", "password or token for the "+what+" registry")
}

// options are the global registry options with this side's flags applied:
// the booleans add to the global ones, the files replace them.
func (s *copySide) options(g *globals, side string) (remote.Options, error) {
	o := g.remote()
	o.PlainHTTP = o.PlainHTTP || s.plainHTTP
	o.Insecure = o.Insecure || s.insecure
	if s.caFile != "" {
		o.CAFile = s.caFile
	}
	if s.registryConfig != "" {
		o.RegistryConfig = s.registryConfig
	}
	if (s.username == "") != (s.secret == "") {
		return o, usagef("give --%s-username and --%s-password together", side, side)
	}
	if s.username != "" {
		cred := auth.Credential{Username: s.username, Password: s.secret}
		// Each side talks to one registry, so the credential needs no host.
		o.Credential = func(context.Context, string) (auth.Credential, error) { return cred, nil }
	}
	return o, nil
}

// pushResult is what push published (DESIGN §7: reference, digest,
// mediaType, artifactType, size), with what it packed.
type pushResult struct {
	Reference    string        `json:"reference"`
	Digest       digest.Digest `json:"digest"`
	MediaType    string        `json:"mediaType"`
	ArtifactType string        `json:"artifactType"`
	Size         int64         `json:"size"`
	Name         string        `json:"name"`
	Version      string        `json:"version"`
	Files        int           `json:"files"`
	LayerSize    int64         `json:"layerSize"`
	// Unchanged is true when the registry held this exact content already.
	Unchanged bool `json:"unchanged"`
	// Replaced is the digest a forced push moved the tag away from.
	Replaced digest.Digest `json:"replaced,omitempty"`
}

func (r *pushResult) printText(p *printer) {
	switch {
	case r.Unchanged:
		fmt.Fprintf(p.stderr, "Already published: %s is %s\n", r.Reference, r.Digest)
	case r.Replaced != "":
		fmt.Fprintf(p.stderr, "Moved %s from %s (forced)\n", r.Reference, r.Replaced)
	default:
		fmt.Fprintf(p.stderr, "Pushed %s %s (%d files, %s)\n", r.Name, r.Version, r.Files, humanSize(r.LayerSize))
	}
	fmt.Fprintf(p.stdout, "%s@%s\n", r.Reference, r.Digest)
}

// pullResult is what pull unpacked, and where.
type pullResult struct {
	Reference string        `json:"reference"`
	Digest    digest.Digest `json:"digest"`
	Name      string        `json:"name"`
	Version   string        `json:"version"`
	Kind      artifact.Kind `json:"kind"`
	Directory string        `json:"directory"`
	Files     int           `json:"files"`
	Bytes     int64         `json:"bytes"`
}

func (r *pullResult) printText(p *printer) {
	fmt.Fprintf(p.stderr, "Pulled %s %s (%s) into %s: %d files, %s\n", r.Name, r.Version, r.Kind, r.Directory, r.Files, humanSize(r.Bytes))
	fmt.Fprintln(p.stdout, r.Digest)
}

// copyResult is what copy copied: the artifact and what refers to it.
type copyResult struct {
	Source      string             `json:"source"`
	Destination string             `json:"destination"`
	Digest      digest.Digest      `json:"digest"`
	Related     []artifact.Related `json:"related"`
}

func (r *copyResult) printText(p *printer) {
	fmt.Fprintf(p.stderr, "Copied %s to %s with %d related artifacts\n", r.Source, r.Destination, len(r.Related))
	fmt.Fprintln(p.stdout, r.Digest)
}
