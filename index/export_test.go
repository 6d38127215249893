package index

import (
	"context"

	"github.com/connectsoft/marketplace/index/store"
)

// SetFaultAfterRead installs the ingest's fault-injection hook (see
// Ingester.faultAfterRead) for a test; nil removes it.
func (in *Ingester) SetFaultAfterRead(f func(ctx context.Context, v *store.Version)) {
	if f == nil {
		in.faultAfterRead.Store(nil)
		return
	}
	in.faultAfterRead.Store(&f)
}

// SetFaultBeforeRead installs the ingest's fault-injection hook (see
// Ingester.faultBeforeRead) for a test; nil removes it.
func (in *Ingester) SetFaultBeforeRead(f func(ctx context.Context, repository, ref string)) {
	if f == nil {
		in.faultBeforeRead.Store(nil)
		return
	}
	in.faultBeforeRead.Store(&f)
}
