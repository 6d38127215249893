package review

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/resolve"
	"github.com/connectsoft/marketplace/signing"
	"github.com/github/go-spdx/v2/spdxexp"
	"oras.land/oras-go/v2/content"
)

// CheckDir reviews the extension in dir as `mkt push` would pack it (the
// same include and exclude rules), reading every file once. A descriptor
// that breaks the model is reported as findings, not returned as an
// error; an error means the directory could not be read at all.
func CheckDir(ctx context.Context, dir string, o Options) (*Report, error) {
	if err := o.normalise(); err != nil {
		return nil, err
	}
	name := filepath.Join(dir, artifact.DescriptorFile)
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("review %s: %w (is it an extension directory? mkt init writes a starter %s)", dir, err, artifact.DescriptorFile)
	}
	ext, derr := artifact.DecodeExtension(f, name)
	f.Close()
	rep := &Report{Target: dir}
	p := newPass(ctx, o, ext)
	if !p.descriptorProblems(derr) {
		return p.stop(rep, "the descriptor does not decode"), nil
	}
	describe(rep, ext)
	p.license("")
	if err := p.start(); err != nil {
		return nil, err
	}
	werr := artifact.WalkDir(ctx, dir, ext, p.visit)
	p.wait()
	if werr != nil {
		if p.nfiles > 0 || ctx.Err() != nil {
			return nil, fmt.Errorf("review %s: %w", dir, werr)
		}
		// Refused before a byte was read: what mkt push would refuse.
		p.add(CheckDescriptor, Finding{Severity: Critical, Message: "mkt push would refuse this directory: " + oneLine(werr.Error())})
		return p.stop(rep, "the content could not be packed"), nil
	}
	if p.descriptor == nil {
		p.add(CheckDescriptor, Finding{Severity: Critical, File: artifact.DescriptorFile, Message: "spec.include/exclude leave extension.yaml out of the packed content; Factory reads it from there, so pull would refuse the artifact"})
	}
	p.skipped[CheckCompatibility] = "not yet available for a directory: compatibility evidence is an attestation on a pushed artifact; check the reference once it is pushed and attested"
	p.finish(rep)
	assemble(rep, p.o, p.findings, p.summaries, p.skipped)
	return rep, nil
}

// CheckRef reviews the pushed artifact ref names: its manifest and config
// as Fetch checks them, its layer streamed through the unpacker's checks
// into every check in one pass, its digest verified at the end; the
// compatibility attestations are read from the registry. The report names
// the artifact by digest, so an attestation of it is about exactly the
// bytes read, whatever a tag says later.
func CheckRef(ctx context.Context, ref string, o Options) (*Report, error) {
	if err := o.normalise(); err != nil {
		return nil, err
	}
	repo, err := artifact.NewRepository(ref, o.Remote)
	if err != nil {
		return nil, err
	}
	a, err := artifact.Fetch(ctx, repo, ref)
	if err != nil {
		return nil, err
	}
	repoName := repo.Reference.Registry + "/" + repo.Reference.Repository
	rep := &Report{Target: ref, Digest: a.Descriptor.Digest.String(), Reference: repoName + "@" + a.Descriptor.Digest.String()}
	ext := a.Extension
	describe(rep, ext)
	p := newPass(ctx, o, ext)
	p.descriptorProblems(nil)
	p.license(repoName)
	if err := p.start(); err != nil {
		return nil, err
	}
	layer := a.Layer()
	rc, err := repo.Fetch(ctx, layer)
	if err != nil {
		p.wait()
		return nil, fmt.Errorf("fetch layer %s of %s: %w", layer.Digest, ref, err)
	}
	vr := content.NewVerifyReader(rc, layer)
	werr := artifact.WalkLayer(ctx, vr, artifact.Limits{}, p.visit)
	p.wait()
	if werr == nil {
		werr = vr.Verify()
	}
	rc.Close()
	if werr != nil {
		return nil, fmt.Errorf("read layer %s of %s: %w", layer.Digest, ref, werr)
	}
	p.layerDescriptor(layer.Digest.String())
	p.compatibility(ctx, repoName, rep.Reference)
	p.finish(rep)
	assemble(rep, p.o, p.findings, p.summaries, p.skipped)
	return rep, nil
}

func describe(rep *Report, ext *artifact.Extension) {
	rep.Name, rep.Version, rep.Kind = ext.Metadata.Name, ext.Metadata.Version, string(ext.Kind)
}

// stop ends a run that could not read the content: the content checks are
// skipped with the reason.
func (p *pass) stop(rep *Report, why string) *Report {
	for _, c := range checkOrder {
		if c != CheckDescriptor && c != CheckLicense {
			p.skipped[c] = why
		}
	}
	if p.ext == nil {
		p.skipped[CheckLicense] = why
	}
	assemble(rep, p.o, p.findings, p.summaries, p.skipped)
	return rep
}

// descriptorProblems files the descriptor's problems under the checks they
// belong to (a licence that is no SPDX expression under license) and says
// whether the descriptor decoded at all.
func (p *pass) descriptorProblems(err error) bool {
	var de *artifact.DescriptorError
	switch {
	case err == nil:
	case errors.As(err, &de):
		for _, pr := range de.Problems {
			check := CheckDescriptor
			if strings.HasPrefix(pr.Field, "spec.license") {
				check = CheckLicense
			}
			p.add(check, Finding{Severity: High, File: artifact.DescriptorFile, Line: pr.Line, Message: oneLine(pr.Error())})
		}
	default:
		p.add(CheckDescriptor, Finding{Severity: Critical, File: artifact.DescriptorFile, Message: oneLine(err.Error())})
	}
	if p.ext == nil {
		return false
	}
	p.summaries[CheckDescriptor] = fmt.Sprintf("%s %s %s", p.ext.Kind, p.ext.Metadata.Name, p.ext.Metadata.Version)
	return true
}

// layerDescriptor checks that the layer's extension.yaml says what the
// config says and that the entrypoint ships: what policy judged is what
// Factory would run.
func (p *pass) layerDescriptor(layer string) {
	if p.descriptor == nil {
		p.add(CheckDescriptor, Finding{Severity: Critical, File: artifact.DescriptorFile, Message: "the layer has no extension.yaml at its root: the config blob describes content that is not there (was it pushed by another tool?)"})
		return
	}
	le, err := artifact.ParseExtension(bytes.NewReader(p.descriptor), "layer "+artifact.DescriptorFile)
	if err != nil {
		p.add(CheckDescriptor, Finding{Severity: Critical, File: artifact.DescriptorFile, Message: oneLine(err.Error())})
		return
	}
	if err := artifact.CompareDescriptors(p.ext, le, layer); err != nil {
		p.add(CheckDescriptor, Finding{Severity: Critical, File: artifact.DescriptorFile, Message: oneLine(err.Error())})
		return
	}
	if e := p.ext.Spec.Entrypoint; e != "" {
		found := false
		for _, f := range p.files {
			found = found || f.path == e
		}
		if !found {
			p.add(CheckDescriptor, Finding{Severity: High, File: e, Message: "spec.entrypoint names a file the layer does not hold"})
		}
	}
	p.summaries[CheckDescriptor] += "; the layer's extension.yaml agrees with the config"
}

// license checks the expression and the stage policy's licence rules.
func (p *pass) license(repository string) {
	expr := p.ext.Spec.License
	if len(p.findings[CheckLicense]) > 0 {
		p.summaries[CheckLicense] = fmt.Sprintf("%q is not a valid SPDX expression", expr)
		return
	}
	if ok, bad := spdxexp.ValidateLicenses([]string{expr}); !ok {
		p.add(CheckLicense, Finding{Severity: High, File: artifact.DescriptorFile, Message: fmt.Sprintf("spec.license %q is not a valid SPDX expression (%s)", expr, strings.Join(bad, ", "))})
		return
	}
	if p.o.Policy == nil {
		p.summaries[CheckLicense] = expr + " is a valid SPDX expression; no stage policy given, so no licence rule applied"
		return
	}
	checks := p.o.Policy.LicenseChecks(policy.Input{Repository: repository, Extension: p.ext})
	if len(checks) == 0 {
		p.summaries[CheckLicense] = expr + " is a valid SPDX expression; no licence rule of the stage policy applies"
		return
	}
	for _, c := range checks {
		if !c.Passed {
			p.add(CheckLicense, Finding{Severity: High, File: artifact.DescriptorFile, Rule: c.Rule, Message: fmt.Sprintf("rule %s of the stage policy: %s", c.Rule, c.Reason)})
		}
	}
	p.summaries[CheckLicense] = fmt.Sprintf("%s checked against %s of the stage policy", expr, plural(len(checks), "licence rule"))
}

// dependencies resolves the declared dependencies under the stage policy.
func (p *pass) dependencies() {
	deps := p.ext.Spec.Dependencies
	if len(deps) == 0 {
		p.summaries[CheckDependencies] = "declares no dependencies"
		return
	}
	if p.o.Resolve == nil {
		p.skipped[CheckDependencies] = fmt.Sprintf("%s declared, but no --registry or --index given to resolve them", plural(len(deps), "dependency"))
		return
	}
	var reqs []resolve.Requirement
	for _, d := range deps {
		reqs = append(reqs, resolve.Requirement{Name: d.Name, Constraint: d.Version})
	}
	res, err := p.o.Resolve(p.ctx, reqs)
	if err != nil {
		p.add(CheckDependencies, Finding{Severity: High, File: artifact.DescriptorFile, Message: "the dependency closure does not resolve under the stage's policy: " + oneLine(err.Error())})
		return
	}
	var chosen []string
	for _, s := range res.Selected {
		chosen = append(chosen, s.Name+"@"+s.Version)
	}
	p.summaries[CheckDependencies] = fmt.Sprintf("%s resolve: %s", plural(len(res.Selected), "extension"), joinLimited(chosen, 8))
}

// compatibility looks for a compatibility attestation, by a key the stage
// policy trusts for this artifact, that certifies the Factory range the
// descriptor claims: its constraint is that range, and every Factory
// version it tested inside the range passed (at least one).
func (p *pass) compatibility(ctx context.Context, repository, ref string) {
	claimed := p.ext.Spec.Compatibility.Factory
	if p.o.Policy == nil {
		p.skipped[CheckCompatibility] = "no stage policy given (--policy): no trusted keys to check compatibility attestations with"
		return
	}
	keys := p.o.Policy.KeysFor(policy.Input{Repository: repository, Extension: p.ext, Now: p.o.Now})
	c, err := signing.NewClient(p.o.Remote)
	if err == nil {
		var res *signing.Result
		res, err = c.Verify(ctx, ref, signing.VerifyOptions{Keys: keys})
		if err == nil {
			p.compatibilityFrom(res, claimed)
			return
		}
	}
	p.add(CheckCompatibility, Finding{Severity: Medium, Message: "the attestations could not be read: " + oneLine(err.Error())})
}

func (p *pass) compatibilityFrom(res *signing.Result, claimed string) {
	missing := func(why string) {
		p.add(CheckCompatibility, Finding{Severity: Medium, File: artifact.DescriptorFile, Message: fmt.Sprintf("no evidence for the Factory range %q: %s; attest the Factory versions tested (mkt attest --type compatibility) with a key the stage trusts", claimed, why)})
	}
	latest := res.Latest(signing.CompatibilityV1)
	if latest == nil || latest.Statement == nil {
		missing("no compatibility attestation by a key the stage policy trusts")
		return
	}
	if err := signing.ValidatePredicate(signing.CompatibilityV1, latest.Statement.Predicate); err != nil {
		missing("the newest one is invalid: " + err.Error())
		return
	}
	var cp signing.Compatibility
	if err := json.Unmarshal(latest.Statement.Predicate, &cp); err != nil {
		missing("the newest one does not decode: " + err.Error())
		return
	}
	if normaliseRange(cp.Constraint) != normaliseRange(claimed) {
		missing(fmt.Sprintf("the newest attestation certifies %q, not the range claimed", cp.Constraint))
		return
	}
	rng, err := semver.NewConstraint(claimed)
	if err != nil {
		missing("the claimed range does not parse: " + err.Error())
		return
	}
	passed := 0
	for _, t := range cp.Tested {
		v, err := semver.NewVersion(t.Factory)
		if err != nil || !rng.Check(v) {
			continue
		}
		if t.Result != "passed" {
			missing(fmt.Sprintf("Factory %s, inside the range, %s", t.Factory, t.Result))
			return
		}
		passed++
	}
	if passed == 0 {
		missing("the attestation tested no Factory version inside the range")
		return
	}
	p.summaries[CheckCompatibility] = fmt.Sprintf("%q certified by key %s: %s inside it passed", claimed, shortFP(latest.Fingerprint), plural(passed, "Factory version"))
}

func normaliseRange(s string) string { return strings.Join(strings.Fields(s), " ") }

func shortFP(fp string) string {
	if len(fp) > 16 {
		return fp[:16]
	}
	return fp
}
