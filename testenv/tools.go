package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// FindTool finds a stock binary: $MKT_<NAME> if set, then $PATH, then the
// directory `go install` writes to. The error says how to install it.
func FindTool(name string) (string, error) {
	if p := os.Getenv("MKT_" + strings.ToUpper(name)); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range goBinDirs() {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("stock %s not found on $PATH or in $GOPATH/bin: run `make tools`", name)
}

func goBinDirs() []string {
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, p := range filepath.SplitList(strings.TrimSpace(string(out))) {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	return dirs
}

// Tool runs a stock binary with a private HOME and docker config, so that
// tests never read or write the developer's credentials.
type Tool struct {
	Path string
	// Env is added to the process environment.
	Env []string
	// Dir is the working directory.
	Dir string
}

// Run runs the tool and returns its stdout; the error carries stderr.
func (t *Tool) Run(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, t.Path, args...)
	cmd.Env = append(os.Environ(), t.Env...)
	cmd.Dir = t.Dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s", filepath.Base(t.Path), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// NewTool finds the named stock binary and isolates it in home, which
// becomes its HOME and DOCKER_CONFIG.
func NewTool(name, home string) (*Tool, error) {
	p, err := FindTool(name)
	if err != nil {
		return nil, err
	}
	return &Tool{Path: p, Env: []string{"HOME=" + home, "DOCKER_CONFIG=" + home}}, nil
}
