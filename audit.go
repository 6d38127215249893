package marketplace

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/signing"
)

// AuditOptions say what Audit checks and against what.
type AuditOptions struct {
	// Dir is where Install put the extensions (Dir/<publisher>/<name>/).
	Dir string
	// Lockfile is what Install recorded; "" means Dir's sibling default,
	// extensions.lock in the current directory, as Install writes it.
	Lockfile string
	// Policy decides what may stay: its control list, lifecycle and
	// attestation rules (a revoked review fails them). Required.
	Policy *policy.Policy
	Remote remote.Options
}

// AuditFinding is what Audit found about one installed extension.
type AuditFinding struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Digest    string `json:"digest"`
	Directory string `json:"directory"`
	// MustGo is true when the extension has to be removed (or reinstalled,
	// when only its files changed); Reasons say why.
	MustGo  bool     `json:"mustGo"`
	Reasons []string `json:"reasons,omitempty"`
	// ContentDigest is the content digest of the files on disk now.
	ContentDigest string `json:"contentDigest,omitempty"`
	// Modified is true when the files on disk differ from those installed.
	Modified bool             `json:"modified,omitempty"`
	Decision *policy.Decision `json:"decision,omitempty"`
}

// AuditReport is what Audit found, extension by extension.
type AuditReport struct {
	Dir        string         `json:"dir"`
	Lockfile   string         `json:"lockfile"`
	Extensions []AuditFinding `json:"extensions"`
	// MustGo counts the extensions that have to go.
	MustGo int `json:"mustGo"`
}

// ErrAuditFailed is returned beside a report in which something must go.
var ErrAuditFailed = errors.New("installed extensions must go")

// Audit checks what is installed against the policy today: every
// lockfile entry's digest is decided again as if it were chosen now, not
// pinned (a version yanked since, by its lifecycle or the control list,
// must go; a review revoked since fails the policy's attestation rule), and
// the files on disk are hashed: content the control list blocks must go
// under whatever name it was installed, and files changed since install
// are reported. It returns the report, with ErrAuditFailed when anything
// must go.
func Audit(ctx context.Context, o AuditOptions) (*AuditReport, error) {
	if o.Policy == nil {
		return nil, errors.New("audit: a policy is required (its control list, lifecycle and review rules decide what may stay)")
	}
	lockPath := o.Lockfile
	if lockPath == "" {
		lockPath = "extensions.lock"
	}
	lock, err := ReadLock(lockPath)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	ro, err := o.Remote.Shared()
	if err != nil {
		return nil, err
	}
	attachControl(o.Policy, ro)
	sc, err := signing.NewClient(ro)
	if err != nil {
		return nil, err
	}
	rep := &AuditReport{Dir: o.Dir, Lockfile: lockPath, Extensions: []AuditFinding{}}
	for _, e := range lock.Extensions {
		f := AuditFinding{Name: e.Name, Version: e.Version, Digest: e.Digest, Directory: filepath.Join(o.Dir, filepath.FromSlash(e.Name))}
		if _, err := os.Stat(f.Directory); err != nil {
			f.Reasons = append(f.Reasons, fmt.Sprintf("not on disk (%v): the lockfile and %s disagree; reinstall or remove it from the lockfile", err, o.Dir))
			f.MustGo = true
		} else {
			if f.ContentDigest, err = artifact.DirContentDigest(f.Directory); err != nil {
				return nil, fmt.Errorf("audit: %w", err)
			}
			if e.ContentDigest != "" && f.ContentDigest != e.ContentDigest {
				f.Modified, f.MustGo = true, true
				f.Reasons = append(f.Reasons, fmt.Sprintf("files changed on disk since install (content %s, installed %s): reinstall it (`mkt install --locked`)", short(f.ContentDigest), short(e.ContentDigest)))
			}
		}
		c, d, err := decide(ctx, e.Reference, false, o.Policy, lock.Factory, ro, sc)
		if err != nil {
			return nil, fmt.Errorf("audit %s@%s (%s): %w", e.Name, e.Version, e.Digest, err)
		}
		if c.Digest != e.Digest {
			return nil, fmt.Errorf("audit %s@%s: %s names %s, not the locked %s", e.Name, e.Version, e.Reference, c.Digest, e.Digest)
		}
		if _, ok := o.Policy.ControlList(); ok {
			// Both what was installed and what is on disk now: blocked
			// files are refused whatever they are called.
			for _, cd := range uniq(e.ContentDigest, f.ContentDigest) {
				d = o.Policy.RecheckContent(ctx, d, controlInput(c, false, cd))
				if !d.Allowed {
					break
				}
			}
		}
		f.Decision = d
		for _, ck := range d.Checks {
			// The Factory version is the lockfile's, recorded at install;
			// an extension compatible then stays so.
			if !ck.Passed && ck.Name != policy.CheckCompatibility {
				f.MustGo = true
				f.Reasons = append(f.Reasons, ck.Name+": "+ck.Reason)
			}
		}
		if f.MustGo {
			rep.MustGo++
		}
		rep.Extensions = append(rep.Extensions, f)
	}
	if rep.MustGo > 0 {
		return rep, fmt.Errorf("audit: %d of %d installed extensions: %w", rep.MustGo, len(rep.Extensions), ErrAuditFailed)
	}
	return rep, nil
}

func uniq(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" && (len(out) == 0 || out[len(out)-1] != s) {
			out = append(out, s)
		}
	}
	return out
}

func short(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}
