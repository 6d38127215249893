package index_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/policy"
)

// The three ready configurations of docs/phases.md load as they are: the
// index config, each stage's policy (parsed: the keys are the operator's
// to make), and every source in a defined stage.
func TestExamplePhaseConfigsLoad(t *testing.T) {
	t.Setenv("MKT_WEBHOOK_SECRET", "example-secret")
	for _, phase := range []string{"internal", "enterprise", "public"} {
		t.Run(phase, func(t *testing.T) {
			c, err := index.LoadConfig(filepath.Join("..", "examples", "phases", phase, "index.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Stages) != 1 || c.Stages[0].Name != phase || len(c.Sources) == 0 {
				t.Fatalf("stages %+v, %d sources", c.Stages, len(c.Sources))
			}
			for _, s := range c.Sources {
				if s.Stage != phase {
					t.Errorf("source %s is in stage %q, not %s", s.Name, s.Stage, phase)
				}
			}
			path := c.StagePolicyPath(phase)
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := policy.Parse(raw, path); err != nil {
				t.Fatalf("the %s stage's policy: %v", phase, err)
			}
		})
	}
}
