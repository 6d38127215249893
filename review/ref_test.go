package review_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/review"
	"github.com/connectsoft/marketplace/signing"
	"github.com/connectsoft/marketplace/testenv"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

func checkRef(t testing.TB, ref string, o review.Options) *review.Report {
	t.Helper()
	o.Remote = remoteOpts(t)
	rep, err := review.CheckRef(context.Background(), ref, o)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// The pushed artifact is read from its layer, and the report names it by
// digest: what an attestation is about.
func TestPushedArtifactIsReviewedFromItsLayer(t *testing.T) {
	files := cleanFiles()
	ref := pushDir(t, writeExt(t, descriptor("acme/crm", "  entrypoint: connector/main.yaml\n"), files), "review/clean")
	rep := checkRef(t, ref, review.Options{OSVDir: "testdata/osv"})
	if !rep.Approved() || rep.Reference != ref || rep.Files != 4 {
		t.Fatalf("report for %s:\n%s", ref, text(rep))
	}
	if c := rep.Check(review.CheckDescriptor); !strings.Contains(c.Summary, "agrees with the config") {
		t.Fatalf("descriptor: %+v", c)
	}
	// The same secret the directory check finds is found in the layer.
	files["deploy/id_ecdsa"] = file{content: privateKeyPEM(t)}
	ref = pushDir(t, writeExt(t, descriptor("acme/crm", ""), files), "review/leaky")
	fs := mustRejectFor(t, checkRef(t, ref, review.Options{}), review.CheckSecrets)
	if fs[0].File != "deploy/id_ecdsa" {
		t.Fatalf("finding %+v", fs[0])
	}
}

// Another tool can push a config that says one thing and a layer whose
// extension.yaml says another (permissions: none vs shell.exec): the
// pipeline judges the content Factory would run, and refuses the artifact.
func TestConfigThatLiesAboutTheLayerIsRefused(t *testing.T) {
	pub := fixture.NewPublisher(t, reg)
	e := fixture.Ext{Name: "acme/liar", Version: "1.0.0", Files: map[string]string{"run.sh": "#!/bin/sh\nrm -rf ~\n"}}
	layerYAML := "apiVersion: marketplace.connectsoft.io/v1\nkind: Module\nmetadata:\n  name: acme/liar\n  version: 1.0.0\nspec:\n  license: MIT\n  compatibility:\n    factory: \">=2.0.0 <3.0.0\"\n  permissions: [shell.exec]\n"
	ref := pub.PublishMismatched("review", e, layerYAML)
	rep := checkRef(t, ref, review.Options{})
	fs := mustRejectFor(t, rep, review.CheckDescriptor)
	if fs[0].Severity != review.Critical || !strings.Contains(fs[0].Message, "permissions") {
		t.Fatalf("finding %+v: want the permissions difference, critical", fs[0])
	}
}

// --attest right after push: the review and the SBOM are attested on the
// digest that was read, and stock cosign accepts both.
func TestStockCosignVerifiesThePipelineAttestations(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	signer, key, _ := fixture.KeyPair(t, home, "pipeline")
	ref := pushDir(t, writeExt(t, descriptor("acme/crm", ""), cleanFiles()), "review/attested")
	rep := checkRef(t, ref, review.Options{Stage: "enterprise"})
	c, err := signing.NewClient(remoteOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := review.Attest(ctx, c, signer, rep, signing.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(rep.Attestations) != 2 || rep.Attestations[0].Reference != ref {
		t.Fatalf("attestations %+v, want two on %s", rep.Attestations, ref)
	}
	cosign, err := testenv.NewTool("cosign", home)
	if err != nil {
		t.Fatal(err)
	}
	cosign.Dir = home
	for _, typ := range []string{signing.ReviewV1, "cyclonedx"} {
		out, err := cosign.Run(ctx, "verify-attestation", "--key", "pipeline.pub", "--type", typ, "--insecure-ignore-tlog=true", "--allow-http-registry", ref)
		if err != nil || !strings.Contains(out, "payload") {
			t.Fatalf("stock cosign verify-attestation --type %s refused: %v\n%s", typ, err, out)
		}
	}
	// And what was signed is the pipeline's review, valid by its schema.
	res, err := c.Verify(ctx, ref, signing.VerifyOptions{Keys: []*signing.Key{key}})
	if err != nil {
		t.Fatal(err)
	}
	latest := res.Latest(signing.ReviewV1)
	if latest == nil {
		t.Fatal("no verified review attestation")
	}
	var pred signing.Review
	if err := json.Unmarshal(latest.Statement.Predicate, &pred); err != nil {
		t.Fatal(err)
	}
	if pred.Reviewer != "pipeline" || pred.Result != "approved" || pred.Level != "enterprise" || len(pred.Checks) != 9 {
		t.Fatalf("predicate %+v", pred)
	}
	if err := signing.ValidatePredicate(signing.ReviewV1, latest.Statement.Predicate); err != nil {
		t.Fatal(err)
	}
	if res.Latest(signing.CycloneDXV1) == nil {
		t.Fatal("no verified CycloneDX attestation")
	}
}

// A directory has no digest: attesting one is refused, not signed about
// nothing.
func TestDirectoryIsNotAttested(t *testing.T) {
	signer, _, _ := fixture.KeyPair(t, t.TempDir(), "pipeline")
	rep := check(t, writeExt(t, descriptor("acme/crm", ""), cleanFiles()), review.Options{})
	c, _ := signing.NewClient(remoteOpts(t))
	if err := review.Attest(context.Background(), c, signer, rep, signing.WriteOptions{}); err == nil {
		t.Fatal("a directory's report was attested")
	}
}

// Compatibility evidence: missing, for another range, and covering.
func TestCompatibilityEvidence(t *testing.T) {
	w := fixture.NewPolicyWorld(t, reg, "pub", "qa", "stranger")
	p := w.MustPolicy(`trustRoots:
  - {name: qa, keys: [qa.pub]}
rules:
  - name: all
    match: {repositories: ["**"]}
    attestations: [{type: compatibility, trustRoots: [qa]}]
`)
	ref := pushDir(t, writeExt(t, descriptor("acme/crm", ""), cleanFiles()), "review/compat")
	o := review.Options{Policy: p, Stage: "public"}
	fs := mustRejectFor(t, checkRef(t, ref, o), review.CheckCompatibility)
	if !strings.Contains(fs[0].Message, "no compatibility attestation") {
		t.Fatalf("finding %+v", fs[0])
	}
	// An untrusted key's evidence counts for nothing.
	w.Pub.Attest(ref, w.Keys["stranger"], "compatibility", `{"constraint":">=2.0.0 <3.0.0","tested":[{"factory":"2.4.0","result":"passed"}]}`)
	mustRejectFor(t, checkRef(t, ref, o), review.CheckCompatibility)
	// The trusted key certifies a narrower range: not the claim.
	w.Pub.Attest(ref, w.Keys["qa"], "compatibility", `{"constraint":">=2.4.0 <3.0.0","tested":[{"factory":"2.4.0","result":"passed"}]}`)
	fs = mustRejectFor(t, checkRef(t, ref, o), review.CheckCompatibility)
	if !strings.Contains(fs[0].Message, "certifies") {
		t.Fatalf("finding %+v", fs[0])
	}
	w.Pub.Attest(ref, w.Keys["qa"], "compatibility", `{"constraint":">=2.0.0 <3.0.0","tested":[{"factory":"2.0.0","result":"passed"},{"factory":"2.9.1","result":"passed"},{"factory":"3.0.0","result":"failed"}]}`)
	rep := checkRef(t, ref, o)
	if c := rep.Check(review.CheckCompatibility); c.Status != review.Passed {
		t.Fatalf("compatibility %+v", c)
	}
}
