package artifact

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/connectsoft/marketplace/remote"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	orasremote "oras.land/oras-go/v2/registry/remote"
)

// NewRepository opens the repository of ref ("host/repo[:tag|@digest]")
// through the registry client of o (the shared one when o holds it).
func NewRepository(ref string, o remote.Options) (*orasremote.Repository, error) {
	repo, err := orasremote.NewRepository(ref)
	if err != nil {
		return nil, fmt.Errorf("parse reference %q: %w", ref, err)
	}
	client, err := o.AuthClient()
	if err != nil {
		return nil, err
	}
	repo.Client = client
	repo.PlainHTTP = o.PlainHTTP
	return repo, nil
}

// ParseReference splits "host/repo[:tag|@digest]" and checks it.
func ParseReference(ref string) (registry.Reference, error) {
	r, err := registry.ParseReference(ref)
	if err != nil {
		return r, fmt.Errorf("invalid reference %q: %w", ref, err)
	}
	return r, nil
}

// retryPolicy is how often and how patiently a streamed blob transfer is
// tried again. Tests shorten it.
type retryPolicy struct {
	attempts int
	wait     time.Duration
}

var blobRetry = retryPolicy{attempts: 4, wait: 250 * time.Millisecond}

func (p retryPolicy) do(ctx context.Context, what string, fn func() error) error {
	var err error
	wait := p.wait
	for attempt := 1; ; attempt++ {
		if err = fn(); err == nil || !remote.IsTransient(err) || attempt >= p.attempts {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait *= 2
	}
	if err != nil && remote.IsTransient(err) {
		return fmt.Errorf("%s: still failing after %d attempts: %w", what, p.attempts, err)
	}
	return err
}

// IsNotFound reports whether err means the registry has no such content.
func IsNotFound(err error) bool { return errors.Is(err, errdef.ErrNotFound) }
