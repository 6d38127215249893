package cli

import (
	"bytes"
	"testing"

	"github.com/connectsoft/marketplace/index/client"
)

// TestImpactTextShowsTheChainByDepth: the human form lists the targets,
// then each dependent indented by its depth with what it needs and by which
// constraint, then the tenants; the counts go to stderr.
func TestImpactTextShowsTheChainByDepth(t *testing.T) {
	http := client.ImpactRef{Tenant: "acme", Name: "acme/http", Version: "1.2.0", Digest: "sha256:aa"}
	crm := client.ImpactRef{Tenant: "acme", Name: "acme/crm", Version: "1.0.0", Digest: "sha256:bb"}
	res := &impactResult{&client.Impact{
		Targets: []client.ImpactVersion{{ImpactRef: http, Visibility: "public", Lifecycle: "yanked"}},
		Dependents: []client.ImpactVersion{
			{ImpactRef: crm, Depth: 1, Via: &http, Constraint: "^1.2.0"},
			{ImpactRef: client.ImpactRef{Tenant: "initech", Name: "initech/portal\x1b[2J", Version: "1.0.0"}, Depth: 2, Via: &crm, Constraint: "^1"},
		},
		HiddenDependents: 2, Tenants: []client.ImpactTenant{{Tenant: "acme"}}, OtherTenants: 2, TenantsFrom: "usage",
	}}
	var out, errb bytes.Buffer
	res.printText(&printer{stdout: &out, stderr: &errb})
	want := "acme/http@1.2.0  acme  sha256:aa yanked\n" +
		"  acme/crm@1.0.0                           acme         needs acme/http@1.2.0 (^1.2.0)\n" +
		"    initech/portal\\x1b[2J@1.0.0              initech      needs acme/crm@1.0.0 (^1)\n" +
		"tenants: acme\n"
	if out.String() != want {
		t.Errorf("stdout:\n%q\nwant:\n%q", out.String(), want)
	}
	if e := errb.String(); e != "1 targets, 2 dependents (2 you may not see), 1 tenants named and 2 others; tenants from usage events\n" {
		t.Errorf("stderr: %q", e)
	}
}
