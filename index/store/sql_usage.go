package store

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
)

// usageChunk bounds the rows of one multi-row statement: 13 columns each
// stay under SQLite's and PostgreSQL's limits on bound parameters.
const usageChunk = 1000

const usageEventColumns = `month, source, id, at, received_at, tenant, owner, publisher, name, version, digest, type, quantity`

// usageKey identifies a usage event: its tenant, source and id, whatever
// its time (the key of usage_event_keys).
type usageKey struct {
	tenant, source, id string
}

type dailyKey struct {
	publisher, name, version, tenant, typ string
	day                                   int
}

type dailySum struct {
	owner                  string
	events, quantity, peak int64
}

// rollupKey is the key of usage_rollup_daily and usage_rollup_monthly, in
// their key's order: period is a yyyymmdd or a yyyymm.
type rollupKey struct {
	publisher             string
	period                int
	name, version, tenant string
}

func (a rollupKey) compare(b rollupKey) int {
	return cmp.Or(strings.Compare(a.publisher, b.publisher), cmp.Compare(a.period, b.period), strings.Compare(a.name, b.name),
		strings.Compare(a.version, b.version), strings.Compare(a.tenant, b.tenant))
}

// rollupSum is one roll-up row's counts: one UsageRow.
type rollupSum struct {
	owner                          string
	pulls, installs, seats, events int64
}

// add counts d, the sums of type typ, into r.
func (r *rollupSum) add(typ string, d *dailySum) {
	switch typ {
	case UsagePull:
		r.pulls += d.quantity
	case UsageInstall:
		r.installs += d.quantity
	case UsageSeats:
		r.seats = max(r.seats, d.peak)
	}
	r.events += d.events
}

// RecordUsage inserts the events' keys (tenant, source, id) into
// usage_event_keys (ON CONFLICT DO NOTHING, RETURNING the keys it
// inserted), then the newly keyed events alone into usage_events, the
// daily aggregate and the daily and monthly roll-ups (one statement on
// PostgreSQL), in one transaction: a duplicate changes no
// count, even one whose time moved into another month, and a batch that
// fails half-way counts nothing and leaves no key. Rows are written in key
// order, so that concurrent batches on PostgreSQL lock them in the same
// order and never deadlock.
func (s *sqlStore) RecordUsage(ctx context.Context, events []*UsageEvent) ([]UsageRecorded, error) {
	now := time.Now()
	months := map[int]bool{}
	for _, e := range events {
		if err := ValidateUsageEvent(e); err != nil {
			return nil, err
		}
		if e.ReceivedAt.IsZero() {
			e.ReceivedAt = now
		}
		months[e.Month()] = true
	}
	out, err := s.recordUsage(ctx, events, months)
	if isNoPartition(err) {
		// A partition this handle knew attached was detached since: look
		// at every month again, once.
		s.usageMonths.Clear()
		out, err = s.recordUsage(ctx, events, months)
	}
	return out, err
}

// isNoPartition reports PostgreSQL's refusal of a row no partition takes.
func isNoPartition(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23514" && strings.Contains(pe.Message, "no partition")
}

func (s *sqlStore) recordUsage(ctx context.Context, events []*UsageEvent, months map[int]bool) ([]UsageRecorded, error) {
	out := make([]UsageRecorded, len(events))
	detached, err := s.usagePartitions(ctx, months)
	if err != nil {
		return nil, err
	}
	// The first of the batch's copies of an event is the one inserted.
	first := map[usageKey]int{}
	var todo []int
	for i, e := range events {
		k := usageKey{e.Tenant, e.Source, e.ID}
		switch _, seen := first[k]; {
		case detached[e.Month()]:
			// Refused before any key is written: its resend, once the
			// month is attached again, is still new.
			out[i].Err = fmt.Errorf("usage event %s (%s): %w", e.ID, e.At.UTC().Format("2006-01"), ErrUsageMonthDetached)
		case seen:
			out[i].Duplicate = true
		default:
			first[k] = i
			todo = append(todo, i)
		}
	}
	slices.SortFunc(todo, func(a, b int) int {
		ea, eb := events[a], events[b]
		return cmp.Or(strings.Compare(ea.Tenant, eb.Tenant), strings.Compare(ea.Source, eb.Source), strings.Compare(ea.ID, eb.ID))
	})
	if len(todo) == 0 {
		return out, nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("record usage: %w", err)
	}
	defer tx.Rollback()
	inserted := map[usageKey]bool{}
	for chunk := range slices.Chunk(todo, usageChunk) {
		if err := s.insertUsageKeys(ctx, tx, events, chunk, inserted); err != nil {
			return nil, err
		}
	}
	fresh := make([]int, 0, len(inserted))
	for _, i := range todo {
		e := events[i]
		if !inserted[usageKey{e.Tenant, e.Source, e.ID}] {
			out[i].Duplicate = true
			continue
		}
		fresh = append(fresh, i)
	}
	for chunk := range slices.Chunk(fresh, usageChunk) {
		if err := s.insertUsageEvents(ctx, tx, events, chunk); err != nil {
			return nil, err
		}
	}
	daily := map[dailyKey]*dailySum{}
	for _, i := range fresh {
		e := events[i]
		k := dailyKey{e.Publisher, e.Name, e.Version, e.Tenant, e.Type, DayOf(e.At)}
		d := daily[k]
		if d == nil {
			d = &dailySum{owner: e.Owner}
			daily[k] = d
		}
		d.events++
		d.quantity += e.Quantity
		d.peak = max(d.peak, e.Quantity)
	}
	keys := make([]dailyKey, 0, len(daily))
	for k := range daily {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b dailyKey) int {
		return cmp.Or(strings.Compare(a.publisher, b.publisher), strings.Compare(a.name, b.name), strings.Compare(a.version, b.version),
			strings.Compare(a.tenant, b.tenant), strings.Compare(a.typ, b.typ), cmp.Compare(a.day, b.day))
	})
	// On PostgreSQL the aggregates' upserts are collected and sent as one
	// statement (pgAll), one round trip instead of three per batch.
	var pgAll *pgStatements
	if s.d.name == "postgres" {
		pgAll = &pgStatements{}
	}
	for chunk := range slices.Chunk(keys, usageChunk) {
		if err := s.addUsageDaily(ctx, tx, pgAll, chunk, daily); err != nil {
			return nil, err
		}
	}
	// The roll-ups the usage answers read: the types of a day side by
	// side, and the same by month (rollupKey.period holds the yyyymmdd,
	// then the yyyymm), each in its key's order.
	for _, monthly := range []bool{false, true} {
		sums := map[rollupKey]*rollupSum{}
		var order []rollupKey
		for _, k := range keys {
			d := daily[k]
			rk := rollupKey{k.publisher, k.day, k.name, k.version, k.tenant}
			if monthly {
				rk.period /= 100
			}
			r := sums[rk]
			if r == nil {
				r = &rollupSum{owner: d.owner}
				sums[rk] = r
				order = append(order, rk)
			}
			r.add(k.typ, d)
		}
		slices.SortFunc(order, rollupKey.compare)
		table, period := "usage_rollup_daily", "day"
		if monthly {
			table, period = "usage_rollup_monthly", "month"
		}
		for chunk := range slices.Chunk(order, usageChunk) {
			if err := s.addUsageRollup(ctx, tx, pgAll, table, period, chunk, sums); err != nil {
				return nil, err
			}
		}
	}
	if err := pgAll.exec(ctx, tx); err != nil {
		return nil, fmt.Errorf("record usage: aggregates: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("record usage: commit: %w", err)
	}
	return out, nil
}

// insertUsageKeys inserts the keys of events[i] for i in idx into
// usage_event_keys in one statement and adds the keys it inserted (those
// not recorded before) to inserted.
func (s *sqlStore) insertUsageKeys(ctx context.Context, tx *sql.Tx, events []*UsageEvent, idx []int, inserted map[usageKey]bool) error {
	var rows *sql.Rows
	var err error
	if s.d.name == "postgres" {
		n := len(idx)
		tenant, source, id, month := make([]string, n), make([]string, n), make([]string, n), make([]int64, n)
		for k, i := range idx {
			e := events[i]
			tenant[k], source[k], id[k], month[k] = e.Tenant, e.Source, e.ID, int64(e.Month())
		}
		rows, err = tx.QueryContext(ctx, `INSERT INTO usage_event_keys (tenant, source, id, month)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[])
			ON CONFLICT DO NOTHING RETURNING tenant, source, id`, tenant, source, id, month)
	} else {
		var b strings.Builder
		b.WriteString(`INSERT INTO usage_event_keys (tenant, source, id, month) VALUES `)
		args := make([]any, 0, 4*len(idx))
		for n, i := range idx {
			e := events[i]
			if n > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?)")
			args = append(args, e.Tenant, e.Source, e.ID, e.Month())
		}
		b.WriteString(` ON CONFLICT DO NOTHING RETURNING tenant, source, id`)
		rows, err = tx.QueryContext(ctx, s.q(b.String()), args...)
	}
	if err != nil {
		return fmt.Errorf("record usage: event keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k usageKey
		if err := rows.Scan(&k.tenant, &k.source, &k.id); err != nil {
			return fmt.Errorf("record usage: event keys: %w", err)
		}
		inserted[k] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("record usage: event keys: %w", err)
	}
	return nil
}

// insertUsageEvents inserts events[i] for i in idx, events whose keys
// this transaction has just inserted, in one statement.
func (s *sqlStore) insertUsageEvents(ctx context.Context, tx *sql.Tx, events []*UsageEvent, idx []int) error {
	if s.d.name == "postgres" {
		return insertUsageEventsPG(ctx, tx, events, idx)
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO usage_events (` + usageEventColumns + `) VALUES `)
	args := make([]any, 0, 13*len(idx))
	for n, i := range idx {
		e := events[i]
		if n > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		args = append(args, e.Month(), e.Source, e.ID, e.At.UnixNano(), e.ReceivedAt.UnixNano(), e.Tenant, e.Owner,
			e.Publisher, e.Name, e.Version, e.Digest, e.Type, e.Quantity)
	}
	b.WriteString(` ON CONFLICT DO NOTHING`)
	if _, err := tx.ExecContext(ctx, s.q(b.String()), args...); err != nil {
		return fmt.Errorf("record usage: %w", err)
	}
	return nil
}

// addUsageDaily adds the sums of keys to the daily aggregate in one
// statement, on PostgreSQL one of pg's.
func (s *sqlStore) addUsageDaily(ctx context.Context, tx *sql.Tx, pg *pgStatements, keys []dailyKey, daily map[dailyKey]*dailySum) error {
	if pg != nil {
		addUsageDailyPG(pg, keys, daily)
		return nil
	}
	const table, period = "usage_daily", "day"
	var b strings.Builder
	b.WriteString(`INSERT INTO ` + table + ` (` + period + `, tenant, owner, publisher, name, version, type, events, quantity, peak) VALUES `)
	args := make([]any, 0, 10*len(keys))
	for n, k := range keys {
		d := daily[k]
		if n > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		args = append(args, k.day, k.tenant, d.owner, k.publisher, k.name, k.version, k.typ, d.events, d.quantity, d.peak)
	}
	// SQLite's MAX of two arguments is a scalar function.
	b.WriteString(` ON CONFLICT (publisher, name, version, tenant, type, ` + period + `) DO UPDATE SET
		events = ` + table + `.events + excluded.events, quantity = ` + table + `.quantity + excluded.quantity,
		peak = MAX(` + table + `.peak, excluded.peak)`)
	if _, err := tx.ExecContext(ctx, s.q(b.String()), args...); err != nil {
		return fmt.Errorf("record usage: daily aggregate: %w", err)
	}
	return nil
}

// addUsageRollup adds the counts of keys to a roll-up (table, whose period
// column is period) in one statement, on PostgreSQL one of pg's; the owner
// is the first row's.
func (s *sqlStore) addUsageRollup(ctx context.Context, tx *sql.Tx, pg *pgStatements, table, period string, keys []rollupKey, sums map[rollupKey]*rollupSum) error {
	const conflict = ` ON CONFLICT (publisher, %[2]s, name, version, tenant) DO UPDATE SET
		pulls = %[1]s.pulls + excluded.pulls, installs = %[1]s.installs + excluded.installs,
		seats = %[3]s(%[1]s.seats, excluded.seats), events = %[1]s.events + excluded.events`
	columns := `INSERT INTO ` + table + ` (publisher, ` + period + `, name, version, tenant, owner, pulls, installs, seats, events) `
	if pg != nil {
		n := len(keys)
		per, pulls, installs, seats, events := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		text := make([][]string, 5) // publisher, name, version, tenant, owner
		for c := range text {
			text[c] = make([]string, n)
		}
		for i, k := range keys {
			r := sums[k]
			per[i], pulls[i], installs[i], seats[i], events[i] = int64(k.period), r.pulls, r.installs, r.seats, r.events
			for c, v := range []string{k.publisher, k.name, k.version, k.tenant, r.owner} {
				text[c][i] = v
			}
		}
		pg.add(columns+`SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[],
			$7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[])`+fmt.Sprintf(conflict, table, period, "GREATEST"),
			text[0], per, text[1], text[2], text[3], text[4], pulls, installs, seats, events)
		return nil
	}
	var b strings.Builder
	b.WriteString(columns + `VALUES `)
	args := make([]any, 0, 10*len(keys))
	for n, k := range keys {
		r := sums[k]
		if n > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		args = append(args, k.publisher, k.period, k.name, k.version, k.tenant, r.owner, r.pulls, r.installs, r.seats, r.events)
	}
	// SQLite's MAX of two arguments is a scalar function.
	b.WriteString(fmt.Sprintf(conflict, table, period, "MAX"))
	if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
		return fmt.Errorf("record usage: %s: %w", table, err)
	}
	return nil
}

// pgStatements collects data-modifying statements, each numbering its
// parameters from $1, to run as one: all but the last in WITH.
type pgStatements struct {
	parts []string
	args  []any
}

var pgParam = regexp.MustCompile(`\$([0-9]+)`)

func (p *pgStatements) add(query string, args ...any) {
	offset := len(p.args)
	p.parts = append(p.parts, pgParam.ReplaceAllStringFunc(query, func(m string) string {
		n, _ := strconv.Atoi(m[1:])
		return "$" + strconv.Itoa(n+offset)
	}))
	p.args = append(p.args, args...)
}

// exec runs the statements collected, if any (p may be nil).
func (p *pgStatements) exec(ctx context.Context, tx *sql.Tx) error {
	if p == nil || len(p.parts) == 0 {
		return nil
	}
	var b strings.Builder
	for i, part := range p.parts[:len(p.parts)-1] {
		if i == 0 {
			b.WriteString("WITH ")
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "w%d AS (%s)\n", i, part)
	}
	b.WriteString(p.parts[len(p.parts)-1])
	_, err := tx.ExecContext(ctx, b.String(), p.args...)
	return err
}

// usagePartitions makes sure each month has its partition of usage_events
// on PostgreSQL (SQLite has one table), creating the missing ones, and
// reports the months whose partition an operator detached. A month found
// attached is remembered for the life of the handle.
func (s *sqlStore) usagePartitions(ctx context.Context, months map[int]bool) (detached map[int]bool, err error) {
	if s.d.name != "postgres" {
		return nil, nil
	}
	for m := range months {
		if _, ok := s.usageMonths.Load(m); ok {
			continue
		}
		attached, err := s.usagePartition(ctx, m)
		if err != nil {
			return nil, err
		}
		if !attached {
			if detached == nil {
				detached = map[int]bool{}
			}
			detached[m] = true
			continue
		}
		s.usageMonths.Store(m, true)
	}
	return detached, nil
}

// usagePartitionName is the partition of usage_events holding month yyyymm.
func usagePartitionName(month int) string { return "usage_events_" + strconv.Itoa(month) }

// usagePartition creates month's partition unless the current schema has
// a table by its name, under a transaction lock so that replicas create it
// once; it reports whether the table is attached.
func (s *sqlStore) usagePartition(ctx context.Context, month int) (bool, error) {
	name := usagePartitionName(month)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("usage partition %s: %w", name, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.usage_events partitions'))`); err != nil {
		return false, fmt.Errorf("usage partition %s: lock: %w", name, err)
	}
	var attached bool
	err = tx.QueryRowContext(ctx, `SELECT c.relispartition FROM pg_class c
		WHERE c.relname = $1 AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())`, name).Scan(&attached)
	switch {
	case err == nil:
		return attached, nil
	case !errors.Is(err, sql.ErrNoRows):
		return false, fmt.Errorf("usage partition %s: %w", name, err)
	}
	next := month + 1
	if month%100 == 12 {
		next = (month/100+1)*100 + 1
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`CREATE TABLE %s PARTITION OF usage_events FOR VALUES FROM (%d) TO (%d)`, name, month, next)); err != nil {
		return false, fmt.Errorf("usage partition %s: create: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("usage partition %s: %w", name, err)
	}
	return true, nil
}

// usageWhere builds the conditions common to both usage reads.
type usageWhere struct {
	conds []string
	args  []any
}

func (w *usageWhere) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *usageWhere) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// Usage reads the roll-ups, whose rows are the answer's rows: a by-day
// answer, or a by-month one over whole months, is read in the order of an
// index (no GROUP BY, no sort on SQLite) and copied out; only a month
// bounded within a month and PerExtension sum roll-up rows.
func (s *sqlStore) Usage(ctx context.Context, q UsageQuery) ([]UsageRow, error) {
	monthly := false
	switch q.Granularity {
	case "", Daily:
	case Monthly:
		monthly = true
	default:
		return nil, fmt.Errorf("usage: granularity %q: want day or month", q.Granularity)
	}
	var w usageWhere
	switch v := q.Viewer; {
	case v.All:
	case v.Tenant == "":
		return nil, nil // nobody sees nothing
	case v.Publisher:
		w.add("(tenant = ? OR owner = ?)", v.Tenant, v.Tenant)
	default:
		w.add("tenant = ?", v.Tenant)
	}
	if q.Publisher != "" {
		w.add("publisher = ?", q.Publisher)
	}
	if q.Name != "" {
		w.add("name = ?", q.Name)
	}
	if q.Tenant != "" {
		w.add("tenant = ?", q.Tenant)
	}
	// Whole months are read from the monthly roll-up; a bound within a
	// month needs the daily one.
	table, col, from, to := "usage_rollup_daily", "day", DayOf(q.From), DayOf(q.To)
	period := col
	if monthly {
		period = "day / 100"
		if (q.From.IsZero() || from%100 == 1) && (q.To.IsZero() || to%100 == 1) {
			table, col, period, from, to = "usage_rollup_monthly", "month", "month", from/100, to/100
		}
	}
	if !q.From.IsZero() {
		w.add(col+" >= ?", from)
	}
	if !q.To.IsZero() {
		w.add(col+" < ?", to)
	}
	sum := func(col string) string { return "SUM(" + col + ")" }
	if s.d.name == "postgres" {
		// A bigint, not a numeric: pgx decodes it in place.
		sum = func(col string) string { return "SUM(" + col + ")::bigint" }
	}
	var query string
	ordered := true // the query orders the rows as the answer does
	switch {
	case q.PerExtension:
		query = `SELECT ` + period + `, '', publisher, name, '', ` + sum("pulls") + `, ` + sum("installs") + `, MAX(seats), ` + sum("events") +
			` FROM ` + table + w.String() + ` GROUP BY ` + period + `, publisher, name ORDER BY 1, name`
	case period != col:
		query = `SELECT ` + period + `, tenant, publisher, name, version, ` + sum("pulls") + `, ` + sum("installs") + `, MAX(seats), ` + sum("events") +
			` FROM ` + table + w.String() + ` GROUP BY ` + period + `, tenant, publisher, name, version ORDER BY 1, name, version, tenant`
	default:
		query = `SELECT ` + col + `, tenant, publisher, name, version, pulls, installs, seats, events FROM ` + table + w.String()
		if s.d.name == "sqlite" {
			// SQLite reads the rows in this order from the index it
			// picks; PostgreSQL's planner sorts them instead (a Sort
			// took half its time over 12,000 rows), and readUsageRows
			// puts them in order faster.
			query += ` ORDER BY ` + col + `, name, version, tenant`
		} else {
			ordered = false
		}
	}
	out, err := s.readUsageRows(ctx, s.q(query), w.args, monthly, ordered)
	if err != nil {
		return nil, fmt.Errorf("usage: %w", err)
	}
	return out, nil
}

// usageRowColumns are the columns readUsageRows reads: period (yyyymmdd
// or yyyymm), tenant, publisher, name, version, pulls, installs, seats,
// events.
const usageRowColumns = 9

// readUsageRows runs a usage query on the driver's own connection rather
// than through database/sql's Scan: an answer can be 12,000 rows, and
// boxing each of their 108,000 values into a driver.Value and converting
// it back cost as much as the query (docs/performance.md). The texts
// repeat (a few tenants, names and versions), so each is made once per
// answer, and a period's text once per period. Unless ordered says the
// query orders them, the rows are put in the answer's order (period,
// name, version, tenant) here (see usageRowChunks.sorted).
func (s *sqlStore) readUsageRows(ctx context.Context, query string, args []any, monthly, ordered bool) ([]UsageRow, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var out usageRowChunks
	var texts usageTexts
	texts.monthly = monthly
	err = conn.Raw(func(dc any) error {
		switch c := dc.(type) {
		case *stdlib.Conn:
			rows, err := c.Conn().Query(ctx, query, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			var p int64
			var tenant, publisher, name, version pgtype.DriverBytes
			for rows.Next() {
				var r UsageRow
				if err := rows.Scan(&p, &tenant, &publisher, &name, &version, &r.Pulls, &r.Installs, &r.Seats, &r.Events); err != nil {
					return err
				}
				key := usageOrder{period: texts.period(p), tenant: texts.intern(tenant), name: texts.intern(name), version: texts.intern(version)}
				r.Period, r.Publisher = texts.periods[key.period].text, texts.texts[texts.intern(publisher)]
				r.Tenant, r.Name, r.Version = texts.texts[key.tenant], texts.texts[key.name], texts.texts[key.version]
				out.add(r, key)
			}
			return rows.Err()
		case driver.QueryerContext:
			named := make([]driver.NamedValue, len(args))
			for i, a := range args {
				if n, ok := a.(int); ok {
					a = int64(n) // the driver.Value database/sql would have made
				}
				named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
			}
			rows, err := c.QueryContext(ctx, query, named)
			if err != nil {
				return err
			}
			defer rows.Close()
			if n := len(rows.Columns()); n != usageRowColumns {
				return fmt.Errorf("%d columns, want %d", n, usageRowColumns)
			}
			v := make([]driver.Value, usageRowColumns)
			for {
				switch err := rows.Next(v); {
				case errors.Is(err, io.EOF):
					return nil
				case err != nil:
					return err
				}
				var r UsageRow
				var p int64
				var ok [9]bool
				p, ok[0] = v[0].(int64)
				key := usageOrder{period: texts.period(p)}
				var publisher int32
				key.tenant, ok[1] = texts.value(v[1])
				publisher, ok[2] = texts.value(v[2])
				key.name, ok[3] = texts.value(v[3])
				key.version, ok[4] = texts.value(v[4])
				r.Pulls, ok[5] = v[5].(int64)
				r.Installs, ok[6] = v[6].(int64)
				r.Seats, ok[7] = v[7].(int64)
				r.Events, ok[8] = v[8].(int64)
				if i := slices.Index(ok[:], false); i >= 0 {
					return fmt.Errorf("column %d is a %T, want an integer or a text", i+1, v[i])
				}
				r.Period, r.Publisher = texts.periods[key.period].text, texts.texts[publisher]
				r.Tenant, r.Name, r.Version = texts.texts[key.tenant], texts.texts[key.name], texts.texts[key.version]
				out.add(r, key)
			}
		default:
			return fmt.Errorf("the %s driver's connection is a %T, which cannot be queried directly", s.d.name, dc)
		}
	})
	if err != nil {
		return nil, err
	}
	if ordered {
		return out.all(), nil
	}
	return out.sorted(&texts), nil
}

// usageRowChunks collects rows in chunks of usageRowChunk and copies them
// once, in the answer's order, into a slice of the right size: growing
// one slice by doubling copied a 12,000-row answer about twice over and
// was a sixth of reading it. Each row's sort key is kept beside it.
type usageRowChunks struct {
	chunks [][]UsageRow
	keys   []usageOrder
}

const usageRowChunk = 1024

// usageOrder is a row's place in the answer (period, name, version,
// tenant), each as its usageTexts id, which usageTexts.ranks turns into
// the order of the periods and the byte order of the texts.
type usageOrder struct {
	period, name, version, tenant int32
}

func (o usageOrder) compare(b usageOrder) int {
	return cmp.Or(cmp.Compare(o.period, b.period), cmp.Compare(o.name, b.name), cmp.Compare(o.version, b.version), cmp.Compare(o.tenant, b.tenant))
}

// add appends r, whose key is k.
func (c *usageRowChunks) add(r UsageRow, k usageOrder) {
	if n := len(c.chunks); n == 0 || len(c.chunks[n-1]) == usageRowChunk {
		c.chunks = append(c.chunks, make([]UsageRow, 0, usageRowChunk))
	}
	last := &c.chunks[len(c.chunks)-1]
	*last = append(*last, r)
	c.keys = append(c.keys, k)
}

func (c *usageRowChunks) row(i int) *UsageRow { return &c.chunks[i/usageRowChunk][i%usageRowChunk] }

// all returns the rows in the order added.
func (c *usageRowChunks) all() []UsageRow {
	if len(c.chunks) == 1 {
		return c.chunks[0]
	}
	out := make([]UsageRow, 0, len(c.keys))
	for _, ch := range c.chunks {
		out = append(out, ch...)
	}
	return out
}

// sorted returns the rows in the answer's order: as they came if they
// came in it (SQLite reads them from an index in that order), else sorted
// by their keys. A key whose ranks and row number fit in 64 bits (any
// answer of fewer than a million rows with fewer than 2,000 distinct
// texts and periods does) is sorted as one integer: sorting 12,000 such
// keys is a fraction of comparing the rows' fields.
func (c *usageRowChunks) sorted(t *usageTexts) []UsageRow { return c.sortedBy(t, true) }

// sortedBy is sorted, packing the keys only if pack (tests take the other
// way with few rows).
func (c *usageRowChunks) sortedBy(t *usageTexts, pack bool) []UsageRow {
	n := len(c.keys)
	if n == 0 {
		return nil
	}
	textRank, periodRank := t.ranks()
	tb, pb, rb := bits.Len(uint(len(textRank))), bits.Len(uint(len(periodRank))), bits.Len(uint(n))
	order := make([]int, n)
	if pack && pb+3*tb+rb <= 64 {
		packed := make([]uint64, n)
		for i, k := range c.keys {
			v := uint64(periodRank[k.period])
			for _, id := range [...]int32{k.name, k.version, k.tenant} {
				v = v<<tb | uint64(textRank[id])
			}
			packed[i] = v<<rb | uint64(i)
		}
		if !slices.IsSorted(packed) {
			slices.Sort(packed)
		}
		mask := uint64(1)<<rb - 1
		for i, v := range packed {
			order[i] = int(v & mask)
		}
	} else {
		for i := range c.keys {
			k := &c.keys[i]
			k.period, k.name, k.version, k.tenant = periodRank[k.period], textRank[k.name], textRank[k.version], textRank[k.tenant]
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int { return c.keys[a].compare(c.keys[b]) })
	}
	if len(c.chunks) == 1 && slices.IsSorted(order) {
		return c.chunks[0]
	}
	out := make([]UsageRow, n)
	for i, row := range order {
		out[i] = *c.row(row)
	}
	return out
}

// usageTexts makes each text and each period's text of an answer once,
// and numbers them.
type usageTexts struct {
	ids       map[string]int32
	texts     []string
	monthly   bool // periods are yyyymm, else yyyymmdd
	periods   []usagePeriod
	periodIDs map[int64]int32
}

type usagePeriod struct {
	p    int64 // yyyymmdd or yyyymm
	text string
}

// intern returns the id of b's text, made on its first sight.
func (t *usageTexts) intern(b []byte) int32 {
	if id, ok := t.ids[string(b)]; ok {
		return id
	}
	return t.add(string(b))
}

func (t *usageTexts) add(s string) int32 {
	if t.ids == nil {
		t.ids = map[string]int32{}
	}
	id := int32(len(t.texts))
	t.ids[s] = id
	t.texts = append(t.texts, s)
	return id
}

// value is the id of a text column's value as a SQLite driver gives it
// (a string or bytes); false if it is neither.
func (t *usageTexts) value(v driver.Value) (int32, bool) {
	switch v := v.(type) {
	case string:
		if id, ok := t.ids[v]; ok {
			return id, true
		}
		return t.add(v), true
	case []byte:
		return t.intern(v), true
	}
	return 0, false
}

// period returns the id of period p, its text made on its first sight.
// Rows mostly come a period at a time (in order, or as PostgreSQL stored
// them), so the last period is tried first, then a map of them all.
func (t *usageTexts) period(p int64) int32 {
	if n := len(t.periods); n > 0 && t.periods[n-1].p == p {
		return int32(n - 1)
	}
	if id, ok := t.periodIDs[p]; ok {
		return id
	}
	text := fmt.Sprintf("%04d-%02d-%02d", p/10000, p/100%100, p%100)
	if t.monthly {
		text = fmt.Sprintf("%04d-%02d", p/100, p%100)
	}
	if t.periodIDs == nil {
		t.periodIDs = map[int64]int32{}
	}
	id := int32(len(t.periods))
	t.periodIDs[p] = id
	t.periods = append(t.periods, usagePeriod{p, text})
	return id
}

// ranks maps each text's id to its place in byte order (the order of the
// roll-ups' COLLATE "C" columns and of SQLite's BINARY) and each period's
// id to its place in time.
func (t *usageTexts) ranks() (text, period []int32) {
	rank := func(n int, less func(a, b int32) int) []int32 {
		byValue := make([]int32, n)
		for i := range byValue {
			byValue[i] = int32(i)
		}
		slices.SortFunc(byValue, less)
		r := make([]int32, n)
		for place, id := range byValue {
			r[id] = int32(place)
		}
		return r
	}
	return rank(len(t.texts), func(a, b int32) int { return strings.Compare(t.texts[a], t.texts[b]) }),
		rank(len(t.periods), func(a, b int32) int { return cmp.Compare(t.periods[a].p, t.periods[b].p) })
}

func (s *sqlStore) UsageEvents(ctx context.Context, q UsageEventQuery, fn func(*UsageEvent) error) error {
	var w usageWhere
	if q.Publisher != "" {
		w.add("publisher = ?", q.Publisher)
	}
	if q.Name != "" {
		w.add("name = ?", q.Name)
	}
	if q.Tenant != "" {
		w.add("tenant = ?", q.Tenant)
	}
	if !q.From.IsZero() {
		// The month bound lets PostgreSQL skip other months' partitions.
		w.add("month >= ? AND at >= ?", MonthOf(q.From), q.From.UnixNano())
	}
	if !q.To.IsZero() {
		w.add("month <= ? AND at < ?", MonthOf(q.To), q.To.UnixNano())
	}
	if !q.ReceivedFrom.IsZero() {
		w.add("received_at >= ?", q.ReceivedFrom.UnixNano())
	}
	if !q.ReceivedTo.IsZero() {
		w.add("received_at < ?", q.ReceivedTo.UnixNano())
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+usageEventColumns+` FROM usage_events`+w.String()+` ORDER BY at, source, id`), w.args...)
	if err != nil {
		return fmt.Errorf("usage events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e := &UsageEvent{}
		var month int
		var at, received int64
		if err := rows.Scan(&month, &e.Source, &e.ID, &at, &received, &e.Tenant, &e.Owner, &e.Publisher, &e.Name, &e.Version,
			&e.Digest, &e.Type, &e.Quantity); err != nil {
			return fmt.Errorf("usage events: %w", err)
		}
		e.At, e.ReceivedAt = time.Unix(0, at).UTC(), time.Unix(0, received).UTC()
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("usage events: %w", err)
	}
	return nil
}

func (s *sqlStore) RepositoryVersions(ctx context.Context, tenant, repository string) ([]*Version, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+headerColumns+` FROM versions WHERE tenant = ? AND repository = ?`), tenant, repository)
	if err != nil {
		return nil, fmt.Errorf("read the versions of %s: %w", repository, err)
	}
	return s.scanVersions(rows, false)
}

func (s *sqlStore) NameOwner(ctx context.Context, name string) (*NameOwner, error) {
	o := &NameOwner{Name: name}
	var claimed int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT tenant, repository, claimed_at FROM name_owners WHERE name = ?`), name).
		Scan(&o.Tenant, &o.Repository, &claimed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("extension %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read the owner of %s: %w", name, err)
	}
	o.ClaimedAt = time.Unix(0, claimed).UTC()
	return o, nil
}

// insertUsageEventsPG is insertUsageEvents on PostgreSQL: one array per
// column, unnested into rows, so that a batch is 13 parameters however
// many events it holds (13,000 bound values cost more than the insert).
// The table has no key of its own (migration 0045): usage_event_keys is
// the events' identity.
func insertUsageEventsPG(ctx context.Context, tx *sql.Tx, events []*UsageEvent, idx []int) error {
	n := len(idx)
	month, at, received, quantity := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	text := make([][]string, 9) // source, id, tenant, owner, publisher, name, version, digest, type
	for c := range text {
		text[c] = make([]string, n)
	}
	for k, i := range idx {
		e := events[i]
		month[k], at[k], received[k], quantity[k] = int64(e.Month()), e.At.UnixNano(), e.ReceivedAt.UnixNano(), e.Quantity
		for c, v := range []string{e.Source, e.ID, e.Tenant, e.Owner, e.Publisher, e.Name, e.Version, e.Digest, e.Type} {
			text[c][k] = v
		}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO usage_events (`+usageEventColumns+`)
		SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::text[],
			$9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[])`,
		month, text[0], text[1], at, received, text[2], text[3], text[4], text[5], text[6], text[7], text[8], quantity)
	if err != nil {
		return fmt.Errorf("record usage: %w", err)
	}
	return nil
}

// addUsageDailyPG is addUsageDaily on PostgreSQL, with arrays as above.
func addUsageDailyPG(pg *pgStatements, keys []dailyKey, daily map[dailyKey]*dailySum) {
	const table, period = "usage_daily", "day"
	n := len(keys)
	day, events, quantity, peak := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	text := make([][]string, 6) // tenant, owner, publisher, name, version, type
	for c := range text {
		text[c] = make([]string, n)
	}
	for i, k := range keys {
		d := daily[k]
		day[i], events[i], quantity[i], peak[i] = int64(k.day), d.events, d.quantity, d.peak
		for c, v := range []string{k.tenant, d.owner, k.publisher, k.name, k.version, k.typ} {
			text[c][i] = v
		}
	}
	pg.add(`INSERT INTO `+table+` (`+period+`, tenant, owner, publisher, name, version, type, events, quantity, peak)
		SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::bigint[], $10::bigint[])
		ON CONFLICT (publisher, name, version, tenant, type, `+period+`) DO UPDATE SET
		events = `+table+`.events + excluded.events, quantity = `+table+`.quantity + excluded.quantity,
		peak = GREATEST(`+table+`.peak, excluded.peak)`,
		day, text[0], text[1], text[2], text[3], text[4], text[5], events, quantity, peak)
}
