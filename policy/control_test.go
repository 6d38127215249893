package policy_test

import (
	"github.com/connectsoft/marketplace/control"
	"strings"
	"testing"
)

func TestControlListSpecIsCheckedWithFieldPaths(t *testing.T) {
	rule := "rules:\n  - name: all\n    match: {repositories: [\"**\"]}\n"
	for _, tc := range []struct{ name, body, want string }{
		{"no ref", "controlList: {keys: [k.pub]}\n", "controlList.ref: required"},
		{"no tag", "controlList: {ref: reg.example/ops/control, keys: [k.pub]}\n", "controlList.ref: \"reg.example/ops/control\" names no tag"},
		{"no keys", "controlList: {ref: reg.example/ops/control:latest}\n", "controlList.keys: name at least one operator key"},
		{"bad maxAge", "controlList: {ref: reg.example/ops/control:latest, keys: [k.pub], maxAge: 1 day}\n", "controlList.maxAge: \"1 day\" is not a duration"},
		{"negative maxAge", "controlList: {ref: reg.example/ops/control:latest, keys: [k.pub], maxAge: -1h}\n", "controlList.maxAge: must be positive"},
		{"misspelt field", "controlList: {ref: reg.example/ops/control:latest, key: [k.pub]}\n", "unknown field \"key\""},
		{"missing key file", "controlList: {ref: reg.example/ops/control:latest, keys: [nosuch.pub]}\n", "controlList.keys[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			_, err := w.Policy(rule + tc.body)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want %q, got %v", tc.want, err)
			}
		})
	}
}

func TestPolicyWithoutControlListHasNoControlCheck(t *testing.T) {
	w := newWorld(t, "pub")
	p := w.MustPolicy("trustRoots:\n  - {name: pub, keys: [pub.pub]}\nrules:\n  - name: all\n    match: {repositories: [\"**\"]}\n    signatures: {trustRoots: [pub]}\n")
	if _, ok := p.ControlList(); ok || p.AttachControl(controlOptions()) != nil {
		t.Fatal("a policy without controlList has one")
	}
}

func controlOptions() control.Options { return control.Options{} }
