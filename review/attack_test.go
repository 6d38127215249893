package review_test

import (
	"context"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/resolve"
	"github.com/connectsoft/marketplace/review"
	"github.com/connectsoft/marketplace/signing"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

// The dependency closure resolves under the stage's policy: a dependency
// that exists and is signed by a trusted key passes; one that no version
// satisfies, or that only an untrusted key signed, rejects; without a
// resolver the check is skipped, not passed.
func TestDependencyClosureUnderTheStagePolicy(t *testing.T) {
	w := fixture.NewPolicyWorld(t, reg, "pub", "stranger")
	p := w.MustPolicy(`trustRoots:
  - {name: publishers, keys: [pub.pub]}
rules:
  - name: all
    match: {repositories: ["**"]}
    signatures: {trustRoots: [publishers]}
`)
	http := w.Pub.Publish("deps", fixture.Ext{Name: "acme/http", Version: "1.2.0"})
	w.Pub.Sign(http, w.Keys["pub"])
	rogue := w.Pub.Publish("deps", fixture.Ext{Name: "evil/log", Version: "1.0.0"})
	w.Pub.Sign(rogue, w.Keys["stranger"])
	src, err := resolve.NewRegistrySource(reg.Ref("deps"), w.Pub.Remote)
	if err != nil {
		t.Fatal(err)
	}
	resolver := func(ctx context.Context, reqs []resolve.Requirement) (*resolve.Resolution, error) {
		return resolve.Resolve(ctx, src, reqs, resolve.Options{Policy: p, FactoryVersion: "2.4.0"})
	}
	deps := func(lines string) string { return descriptor("acme/crm", "  dependencies:\n"+lines) }
	dir := writeExt(t, deps("    - {name: acme/http, version: ^1.2.0}\n"), cleanFiles())
	rep := check(t, dir, review.Options{Resolve: resolver})
	if c := rep.Check(review.CheckDependencies); c.Status != review.Passed || !strings.Contains(c.Summary, "acme/http@1.2.0") {
		t.Fatalf("dependencies %+v", c)
	}
	if c := check(t, dir, review.Options{}).Check(review.CheckDependencies); c.Status != review.Skipped || !strings.Contains(c.Summary, "--registry or --index") {
		t.Fatalf("without a resolver: %+v, want skipped", c)
	}
	for _, line := range []string{"    - {name: acme/http, version: ^2.0.0}\n", "    - {name: evil/log, version: ^1.0.0}\n", "    - {name: acme/nosuch, version: ^1.0.0}\n"} {
		rep := check(t, writeExt(t, deps(line), cleanFiles()), review.Options{Resolve: resolver})
		mustRejectFor(t, rep, review.CheckDependencies)
	}
}

// A publisher moves the tag between the check and the attestation (or the
// registry serves other content under it): the pipeline's attestation is
// about the digest it read, so it never vouches for the new content.
func TestAttestationFollowsTheDigestReadNotTheTag(t *testing.T) {
	ctx := context.Background()
	signer, key, _ := fixture.KeyPair(t, t.TempDir(), "pipeline")
	clean := writeExt(t, descriptor("acme/crm", ""), cleanFiles())
	first := pushDir(t, clean, "review/moving")
	tagRef := first[:strings.Index(first, "@")] + ":1.0.0"
	rep := checkRef(t, tagRef, review.Options{})
	if rep.Reference != first {
		t.Fatalf("report about %s, want the digest read %s", rep.Reference, first)
	}
	// The tag now names content with a secret in it.
	files := cleanFiles()
	files["leak.env"] = file{content: "AWS_ACCESS_KEY_ID=" + awsKeyID() + "\n"}
	pkg, err := artifact.Pack(ctx, writeExt(t, descriptor("acme/crm", ""), files), artifact.PackOptions{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer pkg.Close()
	repo, err := artifact.NewRepository(tagRef, remoteOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := artifact.Push(ctx, repo, "1.0.0", pkg, artifact.PushOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	c, err := signing.NewClient(remoteOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := review.Attest(ctx, c, signer, rep, signing.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	moved, err := c.Verify(ctx, tagRef, signing.VerifyOptions{Keys: []*signing.Key{key}})
	if err != nil {
		t.Fatal(err)
	}
	if moved.Latest(signing.ReviewV1) != nil {
		t.Fatal("the approval of the first digest is found on the content the tag moved to")
	}
	orig, err := c.Verify(ctx, first, signing.VerifyOptions{Keys: []*signing.Key{key}})
	if err != nil || orig.Latest(signing.ReviewV1) == nil {
		t.Fatalf("the digest read has no review: %v", err)
	}
	// And the moved content, checked in its turn, is rejected.
	mustRejectFor(t, checkRef(t, tagRef, review.Options{}), review.CheckSecrets)
}

// A secret that straddles two scan pieces, and one near the start of the
// next, are both found once, at their lines.
func TestSecretAcrossScanPiecesIsFoundOnce(t *testing.T) {
	line := strings.Repeat("y", 79) + "\n"
	var b strings.Builder
	var want []int
	lines := 0
	for _, at := range []int{256<<10 - 100, 512<<10 + 100, 3 << 20} {
		for b.Len() < at {
			b.WriteString(line)
			lines++
		}
		want = append(want, lines+1)
		k := privateKeyPEM(t)
		b.WriteString(k)
		lines += strings.Count(k, "\n")
	}
	files := cleanFiles()
	files["data/blob.txt"] = file{content: b.String()}
	rep := check(t, writeExt(t, descriptor("acme/crm", ""), files), review.Options{})
	fs := mustRejectFor(t, rep, review.CheckSecrets)
	var got []int
	for _, f := range fs {
		got = append(got, f.Line)
	}
	if len(got) != len(want) {
		t.Fatalf("findings at lines %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("findings at lines %v, want %v", got, want)
		}
	}
}
