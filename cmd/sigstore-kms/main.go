// Command sigstore-kms serves sigstore's four KMS providers (AWS KMS, GCP
// KMS, Azure Key Vault, HashiCorp Vault) to mkt, and to stock cosign,
// through sigstore's KMS plugin protocol (sigstore/pkg/signature/kms/cliplugin).
//
// mkt does not link the providers: they are about 300 packages (the AWS,
// Google Cloud, Azure and Vault SDKs) whose package initialisation every
// mkt command paid for at start-up, KMS or not. For a key reference
// SCHEME://ID with no linked provider, sigstore runs the program
// sigstore-kms-SCHEME from PATH. Install this program under the names of
// the schemes you use (make kms-plugins writes all four into bin/):
//
//	sigstore-kms-awskms  sigstore-kms-gcpkms  sigstore-kms-azurekms  sigstore-kms-hashivault
//
// It takes the scheme from the name it was started as, opens
// SCHEME://ID with sigstore's own provider, answers the one request and
// exits.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/kms"
	"github.com/sigstore/sigstore/pkg/signature/kms/cliplugin"
	"github.com/sigstore/sigstore/pkg/signature/kms/cliplugin/common"
	"github.com/sigstore/sigstore/pkg/signature/kms/cliplugin/handler"
	"github.com/sigstore/sigstore/pkg/signature/options"

	_ "github.com/sigstore/sigstore/pkg/signature/kms/aws"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/azure"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/gcp"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/hashivault"
)

func main() {
	if err := run(); err != nil {
		// The protocol carries errors in the response on stdout; a failure
		// to write even that goes to stderr.
		if werr := handler.WriteErrorResponse(os.Stdout, err); werr != nil {
			fmt.Fprintln(os.Stderr, "sigstore-kms:", err)
		}
		os.Exit(1)
	}
}

func run() error {
	name := strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe")
	scheme, ok := strings.CutPrefix(name, cliplugin.PluginBinaryPrefix)
	if !ok || scheme == "" {
		return fmt.Errorf("started as %q: install this program as %sSCHEME (awskms, gcpkms, azurekms or hashivault)", name, cliplugin.PluginBinaryPrefix)
	}
	// Only a linked provider may answer: for any other scheme kms.Get
	// would start sigstore-kms-SCHEME, this program, again.
	served := kms.SupportedProviders()
	slices.Sort(served)
	if !slices.Contains(served, scheme+"://") {
		return fmt.Errorf("no provider for %s:// in this plugin (it serves %s)", scheme, strings.Join(served, ", "))
	}
	args, err := handler.GetPluginArgs(os.Args)
	if err != nil {
		return err
	}
	if args.InitOptions == nil || args.MethodArgs == nil {
		return errors.New("incomplete plugin arguments")
	}
	if v := args.InitOptions.ProtocolVersion; v != common.ProtocolVersion {
		return fmt.Errorf("protocol version %q: this plugin speaks %q", v, common.ProtocolVersion)
	}
	ctx := context.Background()
	if d := args.InitOptions.CtxDeadline; d != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, *d)
		defer cancel()
	}
	var rpc []signature.RPCOption
	if o := args.InitOptions.RPCOptions; o != nil {
		rpc = append(rpc, options.WithContext(ctx))
		if o.KeyVersion != nil {
			rpc = append(rpc, options.WithKeyVersion(*o.KeyVersion))
		}
		if o.RemoteVerification != nil {
			rpc = append(rpc, options.WithRemoteVerification(*o.RemoteVerification))
		}
	}
	sv, err := kms.Get(ctx, scheme+"://"+args.InitOptions.KeyResourceID, args.InitOptions.HashFunc, rpc...)
	if err != nil {
		return err
	}
	_, err = handler.Dispatch(os.Stdout, os.Stdin, args, sv)
	return err
}
