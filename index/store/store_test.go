package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/index/store/storetest"
)

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return storetest.SQLite(t) })
}

// TestPostgreSQL runs the same suite on PostgreSQL, each test in a schema
// of its own. It fails, never skips, when the server cannot be reached.
func TestPostgreSQL(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return storetest.Postgres(t) })
}

func TestOpenRefusesUnknownSchemes(t *testing.T) {
	if _, err := store.Open(context.Background(), "mysql://x"); err == nil {
		t.Fatal("accepted mysql://")
	}
}

func TestMigrationsAreAppliedOnce(t *testing.T) {
	path := "sqlite://" + filepath.Join(t.TempDir(), "index.db")
	for i := 0; i < 2; i++ {
		s, err := store.Open(context.Background(), path)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		s.Close()
	}
}

// An index created before the change feed (migrations 0001–0004, with data)
// upgrades in place: its versions are numbered, and new writes follow them.
func TestChangeFeedMigrationNumbersExistingVersions(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			var url, dsn, sqlDriver string
			if driver == "sqlite" {
				path := filepath.Join(t.TempDir(), "index.db")
				url, dsn, sqlDriver = "sqlite://"+path, "file:"+path, "sqlite"
			} else {
				url = storetest.PostgresSchema(t)
				dsn, sqlDriver = url, "pgx"
			}
			db, err := sql.Open(sqlDriver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`CREATE TABLE schema_migrations (version TEXT PRIMARY KEY)`); err != nil {
				t.Fatal(err)
			}
			for _, m := range []string{"0001_init.sql", "0002_repository_index.sql", "0003_latest.sql", "0004_search_index.sql"} {
				body, err := os.ReadFile(filepath.Join("migrations", driver, m))
				if err != nil {
					t.Fatal(err)
				}
				for _, stmt := range strings.Split(string(body), ";") {
					if strings.TrimSpace(stmt) != "" {
						if _, err := db.Exec(stmt); err != nil {
							t.Fatalf("%s: %v", m, err)
						}
					}
				}
				if _, err := db.Exec(`INSERT INTO schema_migrations (version) VALUES ('` + m + `')`); err != nil {
					t.Fatal(err)
				}
			}
			for i, name := range []string{"acme/old", "acme/older"} {
				if _, err := db.Exec(`INSERT INTO versions (tenant, name, version, repository, digest, kind, publisher, visibility, ingested_at, latest, search_text)
					VALUES ('acme', '` + name + `', '1.0.0', 'reg/` + name + `', 'sha256:` + name + `', 'Module', 'acme', 'public', ` + fmt.Sprint(100-i) + `, TRUE, '` + name + `')`); err != nil {
					t.Fatal(err)
				}
			}
			s, err := store.Open(ctx, url)
			if err != nil {
				t.Fatalf("upgrade: %v", err)
			}
			defer s.Close()
			if _, err := s.UpsertVersion(ctx, &store.Version{Tenant: "acme", Name: "acme/new", Version: "1.0.0", Repository: "reg/acme/new",
				Digest: "sha256:new", Kind: "Module", Visibility: store.Public}); err != nil {
				t.Fatal(err)
			}
			vs, err := s.Changes(ctx, 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(vs) != 3 || vs[2].Name != "acme/new" || vs[0].Seq < 1 || vs[1].Seq <= vs[0].Seq || vs[2].Seq <= vs[1].Seq {
				for _, v := range vs {
					t.Logf("%s seq %d", v.Name, v.Seq)
				}
				t.Fatalf("after the upgrade the feed has %d versions, numbered out of order", len(vs))
			}
		})
	}
}

// A closed statement is immutable in the database itself: an UPDATE of
// what was signed or a DELETE is refused by a trigger, on both drivers,
// whatever code (or operator at a SQL prompt) tries it.
func TestClosedStatementIsImmutable(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			var url, dsn, sqlDriver string
			if driver == "sqlite" {
				path := filepath.Join(t.TempDir(), "index.db")
				url, dsn, sqlDriver = "sqlite://"+path, "file:"+path, "sqlite"
			} else {
				url = storetest.PostgresSchema(t)
				dsn, sqlDriver = url, "pgx"
			}
			s, err := store.Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.CloseStatement(ctx, &store.ClosedStatement{Publisher: "acme", Period: "2026-11", Body: []byte(`{"a":1}`), Signature: "sig", Signer: "fp"}); err != nil {
				t.Fatal(err)
			}
			db, err := sql.Open(sqlDriver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, stmt := range []string{`UPDATE statements SET body = 'x'`, `UPDATE statements SET signature = 'forged'`, `DELETE FROM statements`} {
				if _, err := db.ExecContext(ctx, stmt); err == nil || !strings.Contains(err.Error(), "immutable") {
					t.Fatalf("%s: %v, want it refused as immutable", stmt, err)
				}
			}
			if err := s.SetStatementReference(ctx, "acme", "2026-11", "reg/s@sha256:1"); err != nil {
				t.Fatalf("recording the push: %v", err)
			}
			cs, _ := s.ClosedStatements(ctx, "acme")
			if len(cs) != 1 || string(cs[0].Body) != `{"a":1}` || cs[0].Signature != "sig" {
				t.Fatalf("after the attempts: %+v", cs)
			}
		})
	}
}
