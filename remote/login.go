package remote

import (
	"context"
	"fmt"

	orasremote "oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
)

// Login checks credentials against a registry and stores them in the
// docker config, as `docker login` and `oras login` do.
func Login(ctx context.Context, host string, cred auth.Credential, o Options) error {
	store, err := o.CredentialStore()
	if err != nil {
		return fmt.Errorf("open registry config: %w", err)
	}
	reg, err := orasremote.NewRegistry(host)
	if err != nil {
		return fmt.Errorf("login %s: %w", host, err)
	}
	hc, err := o.HTTPClient()
	if err != nil {
		return err
	}
	reg.PlainHTTP = o.PlainHTTP
	reg.Client = &auth.Client{Client: hc, Cache: auth.NewCache()}
	if err := credentials.Login(ctx, store, reg, cred); err != nil {
		return fmt.Errorf("login %s: %w", host, err)
	}
	return nil
}

// Logout removes a registry's credentials from the docker config.
func Logout(ctx context.Context, host string, o Options) error {
	store, err := o.CredentialStore()
	if err != nil {
		return fmt.Errorf("open registry config: %w", err)
	}
	if err := credentials.Logout(ctx, store, host); err != nil {
		return fmt.Errorf("logout %s: %w", host, err)
	}
	return nil
}
