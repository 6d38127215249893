package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"strconv"
	"strings"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
)

// migrations holds the schema, one directory per dialect. The files are
// goose's (`-- +goose Up`); a file's number is its goose version.
//
//go:embed migrations
var migrations embed.FS

// versionTable is where goose records the applied migrations.
const versionTable = "goose_db_version"

// legacyTable is where the index's own runner, before goose, recorded the
// applied migrations by file name (0001_init.sql). A database that has it
// and no goose table is adopted: its file names become goose versions, so
// nothing is applied twice (adoptLegacyVersions).
const legacyTable = "schema_migrations"

// migrate brings db's schema up to date: the store's tables (goose) and the
// ingest queue's (River's own migrations). On PostgreSQL both run under one
// session-level advisory lock, so that replicas starting together migrate
// one after another: the first applies, the others find nothing to do. The
// lock is per database and schema, so indexes in other schemas of the same
// database do not wait for each other. SQLite is one process's file and
// takes no lock.
func migrate(ctx context.Context, db *sql.DB, dialectName string) error {
	var gooseDialect goose.Dialect
	switch dialectName {
	case "sqlite":
		gooseDialect = goose.DialectSQLite3
	default:
		gooseDialect = goose.DialectPostgres
		conn, unlock, err := lockSchema(ctx, db)
		if err != nil {
			return err
		}
		defer conn.Close()
		defer unlock()
	}
	if err := adoptLegacyVersions(ctx, db, gooseDialect); err != nil {
		return fmt.Errorf("migrate: adopt the versions of %s: %w", legacyTable, err)
	}
	dir, err := fs.Sub(migrations, "migrations/"+dialectName)
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(gooseDialect, db, dir, goose.WithTableName(versionTable), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if dialectName == "sqlite" {
		err = riverMigrate(ctx, riversqlite.New(db))
	} else {
		err = riverMigrate(ctx, riverdatabasesql.New(db))
	}
	if err != nil {
		return fmt.Errorf("migrate the ingest queue's tables: %w", err)
	}
	return nil
}

// lockSchema takes goose's PostgreSQL session lock for the current database
// and schema on a connection of its own, which the caller closes after
// unlock.
func lockSchema(ctx context.Context, db *sql.DB) (*sql.Conn, func(), error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("migrate: %w", err)
	}
	var where string
	if err := conn.QueryRowContext(ctx, `SELECT current_database() || '.' || COALESCE(current_schema(), '')`).Scan(&where); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("migrate: %w", err)
	}
	h := fnv.New64a()
	h.Write([]byte("marketplace-index-migrations:" + where))
	// Retried every second for up to 10 minutes: a replica migrating a
	// large table holds it that long at most.
	l, err := lock.NewPostgresSessionLocker(lock.WithLockID(int64(h.Sum64()>>1)), lock.WithLockTimeout(1, 600))
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("migrate: %w", err)
	}
	if err := l.SessionLock(ctx, conn); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("migrate: lock %s: %w", where, err)
	}
	return conn, func() {
		if err := l.SessionUnlock(context.WithoutCancel(ctx), conn); err != nil {
			slog.Warn("migrate: unlock; closing the connection releases it", "err", err)
		}
	}, nil
}

// adoptLegacyVersions records in goose's table the migrations the former
// runner applied, when the database has its table and no goose table yet.
// It runs in one transaction: a crash leaves either both tables as they
// were or goose's complete. The legacy table is left in place, unread.
func adoptLegacyVersions(ctx context.Context, db *sql.DB, d goose.Dialect) error {
	if ok, err := tableExists(ctx, db, d, versionTable); err != nil || ok {
		return err
	}
	if ok, err := tableExists(ctx, db, d, legacyTable); err != nil || !ok {
		return err
	}
	gs, err := database.NewStore(d, versionTable)
	if err != nil {
		return err
	}
	rows, err := db.QueryContext(ctx, `SELECT version FROM `+legacyTable)
	if err != nil {
		return err
	}
	var versions []int64
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		n, err := legacyVersion(name)
		if err != nil {
			rows.Close()
			return err
		}
		versions = append(versions, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := gs.CreateVersionTable(ctx, tx); err != nil {
		return err
	}
	// Version 0 is what goose records when it creates its table.
	for _, v := range append([]int64{0}, versions...) {
		if err := gs.Insert(ctx, tx, database.InsertRequest{Version: v}); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// tableExists reports whether the current schema has the table.
func tableExists(ctx context.Context, db *sql.DB, d goose.Dialect, table string) (bool, error) {
	q := `SELECT to_regclass($1) IS NOT NULL`
	if d == goose.DialectSQLite3 {
		q = `SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?`
	}
	var exists bool
	err := db.QueryRowContext(ctx, q, table).Scan(&exists)
	return exists, err
}

// legacyVersion is the goose version of a file name the former runner
// recorded: its number (0007_name_owners.sql is 7).
func legacyVersion(name string) (int64, error) {
	num, _, ok := strings.Cut(name, "_")
	n, err := strconv.ParseInt(num, 10, 64)
	if !ok || err != nil || n <= 0 {
		return 0, errors.New("unexpected migration name " + strconv.Quote(name))
	}
	return n, nil
}

func riverMigrate(ctx context.Context, d riverdriver.Driver[*sql.Tx]) error {
	m, err := rivermigrate.New(d, &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	return err
}
