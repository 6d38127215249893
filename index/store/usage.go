package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Usage event types (DESIGN §6.4): a registry pull of a version manifest,
// an install report and a seat report.
const (
	UsagePull    = "pull"
	UsageInstall = "install"
	UsageSeats   = "seats"
)

// UsageTypes are the usage event types, in the order reports show them.
var UsageTypes = []string{UsagePull, UsageInstall, UsageSeats}

// ErrUsageMonthDetached refuses an event whose month's partition an
// operator detached (PostgreSQL): that month is archived, and counting into
// it would change what was archived.
var ErrUsageMonthDetached = errors.New("the usage of this month is archived (its partition is detached)")

// UsageEvent is one counted use of one version of an extension by one
// tenant. Its identity is Source and ID, as a CloudEvent's is, for its
// Tenant within the calendar month (UTC) of At: the same event sent again,
// late or out of order, is recorded once, and one tenant cannot make
// another's events duplicates by sending their ids first.
type UsageEvent struct {
	Source string `json:"source"`
	ID     string `json:"id"`
	// At is when the use happened, by the sender's clock: it decides the
	// day and month the event counts in (and the terms a statement
	// applies).
	At time.Time `json:"time"`
	// ReceivedAt is when the index recorded it (RecordUsage sets it when
	// zero): a statement closed before it takes it as an adjustment.
	ReceivedAt time.Time `json:"receivedAt"`
	// Tenant used the extension; Owner is the tenant that publishes it
	// (the owner of its name), who sees the usage of its extensions.
	Tenant string `json:"tenant"`
	Owner  string `json:"owner"`
	// Publisher is the namespace, Name the whole name (publisher/name).
	Publisher string `json:"publisher"`
	Name      string `json:"name"`
	Version   string `json:"version"`
	Digest    string `json:"digest"`
	Type      string `json:"type"`
	// Quantity is 1 for a pull, the number of installs for an install
	// report (1 unless the sender batches), the number of seats in use for
	// a seat report (0 allowed).
	Quantity int64 `json:"quantity"`
}

// Month is the yyyymm of the event's time, UTC.
func (e *UsageEvent) Month() int { return MonthOf(e.At) }

// MonthOf is the yyyymm of t in UTC, the unit usage is partitioned by.
func MonthOf(t time.Time) int { t = t.UTC(); return t.Year()*100 + int(t.Month()) }

// DayOf is the yyyymmdd of t in UTC, the unit usage is aggregated by.
func DayOf(t time.Time) int { t = t.UTC(); return t.Year()*10000 + int(t.Month())*100 + t.Day() }

// UsageRecorded says what RecordUsage did with one event.
type UsageRecorded struct {
	// Duplicate is true when the event (tenant, source, id, month) was
	// recorded before: nothing changed.
	Duplicate bool
	// Err refuses this event alone (ErrUsageMonthDetached); the others of
	// the batch are recorded.
	Err error
}

// Usage granularities.
const (
	Daily   = "day"
	Monthly = "month"
)

// UsageViewer is who reads usage: the operator sees all of it; a tenant
// sees its own, and with the publisher role also the usage of the
// extensions it publishes, by every tenant.
type UsageViewer struct {
	All       bool
	Tenant    string
	Publisher bool
}

// UsageQuery selects aggregated usage. Empty filters select everything the
// viewer may see; From is inclusive and To exclusive, both rounded down to
// their day (UTC); a zero To is open-ended.
type UsageQuery struct {
	Viewer UsageViewer
	// Publisher, Name (publisher/name) and Tenant filter.
	Publisher, Name, Tenant string
	From, To                time.Time
	// Granularity is Daily (the default) or Monthly.
	Granularity string
	// PerExtension sums over tenants and versions: one row per period and
	// extension, Tenant and Version empty, Seats the largest of any
	// tenant's. A chart of an extension needs no more, and grouping by
	// tenant and version would cost a row per tenant.
	PerExtension bool
}

// UsageRow is the usage of one version by one tenant in one period.
type UsageRow struct {
	// Period is the day (2026-11-29) or month (2026-11) the row counts.
	Period    string `json:"period"`
	Tenant    string `json:"tenant"`
	Publisher string `json:"publisher"`
	Name      string `json:"name"`
	Version   string `json:"version"`
	Pulls     int64  `json:"pulls"`
	Installs  int64  `json:"installs"`
	// Seats is the largest seat count reported in the period.
	Seats int64 `json:"seats"`
	// Events is how many events were counted, of every type.
	Events int64 `json:"events"`
}

// UsageEventQuery selects raw usage events. Empty filters select all; the
// time bounds are inclusive From, exclusive To, zero meaning open.
type UsageEventQuery struct {
	Publisher, Name, Tenant string
	// From and To bound the events' time (UsageEvent.At).
	From, To time.Time
	// ReceivedFrom and ReceivedTo bound when they were recorded.
	ReceivedFrom, ReceivedTo time.Time
}

// UsageStore keeps usage events and their daily aggregate. Both SQL stores
// implement it and pass storetest's usage suite.
type UsageStore interface {
	// RecordUsage records the events not recorded before and adds them to
	// the daily aggregate, all in one transaction; out[i] says what became
	// of events[i]. An event whose month is archived is refused alone. The
	// events must be valid (ValidateUsageEvent); an invalid one fails the
	// whole call, as a programming error.
	RecordUsage(ctx context.Context, events []*UsageEvent) (out []UsageRecorded, err error)
	// Usage reads the roll-ups, ordered by period, name, version, tenant
	// (by bytes).
	Usage(ctx context.Context, q UsageQuery) ([]UsageRow, error)
	// UsageEvents calls fn with each raw event q selects, in time order
	// (then source, id), stopping at fn's first error.
	UsageEvents(ctx context.Context, q UsageEventQuery, fn func(*UsageEvent) error) error
	// NameOwner returns the owner of an extension name, ErrNotFound when
	// no repository has claimed it.
	NameOwner(ctx context.Context, name string) (*NameOwner, error)
	// RepositoryVersions lists a tenant's versions found in a repository
	// (registry/repository), without descriptor, decision and evidence:
	// a pull notification names a digest, and this says which version it
	// is, if any.
	RepositoryVersions(ctx context.Context, tenant, repository string) ([]*Version, error)
}

// maxUsageQuantity bounds one event's quantity: no tenant installs an
// extension a billion times in one event, and sums stay far from overflow.
const maxUsageQuantity = 1_000_000_000

// ValidateUsageEvent checks what the store relies on: an identity, a time,
// the tenants and extension, a known type and a quantity in range.
func ValidateUsageEvent(e *UsageEvent) error {
	switch {
	case e.Source == "" || e.ID == "":
		return errors.New("usage event: source and id are required")
	case e.At.IsZero() || e.At.Year() < 2000 || e.At.Year() > 9999:
		return fmt.Errorf("usage event %s: time %v is not a time usage can count in", e.ID, e.At)
	case e.Tenant == "" || e.Owner == "" || e.Publisher == "" || e.Name == "" || e.Version == "":
		return fmt.Errorf("usage event %s: tenant, owner, publisher, name and version are required", e.ID)
	case e.Type != UsagePull && e.Type != UsageInstall && e.Type != UsageSeats:
		return fmt.Errorf("usage event %s: type %q is not pull, install or seats", e.ID, e.Type)
	case e.Type == UsageSeats && (e.Quantity < 0 || e.Quantity > maxUsageQuantity):
		return fmt.Errorf("usage event %s: seats %d is not between 0 and %d", e.ID, e.Quantity, maxUsageQuantity)
	case e.Type != UsageSeats && (e.Quantity < 1 || e.Quantity > maxUsageQuantity):
		return fmt.Errorf("usage event %s: quantity %d is not between 1 and %d", e.ID, e.Quantity, maxUsageQuantity)
	}
	return nil
}
