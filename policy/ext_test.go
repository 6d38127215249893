package policy_test

import (
	"strings"

	"github.com/connectsoft/marketplace/artifact"
)

func mustExt(name, version, deps string) *artifact.Extension {
	y := "apiVersion: marketplace.connectsoft.io/v1\nkind: Module\nmetadata:\n  name: " + name + "\n  version: " + version +
		"\nspec:\n  license: MIT\n  compatibility:\n    factory: \">=2.0.0 <3.0.0\"\n"
	if deps != "" {
		y += "  dependencies:\n" + deps
	}
	ext, err := artifact.ParseExtension(strings.NewReader(y), "bench.yaml")
	if err != nil {
		panic(err)
	}
	return ext
}
