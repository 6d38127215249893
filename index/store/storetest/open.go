package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index/store"
)

// SQLite opens a fresh SQLite store in the test's temporary directory.
func SQLite(t testing.TB) store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// PostgresURL is the server the PostgreSQL tests run on: MKT_TEST_POSTGRES,
// or the machine's own (trust auth, database test), which .ci/run starts.
func PostgresURL() string {
	if u := os.Getenv("MKT_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

var schemaSeq atomic.Int64

// Postgres opens a fresh PostgreSQL store in a schema of its own, dropped
// when the test ends. It fails, never skips, when the server cannot be
// reached: in CI these tests must run.
func Postgres(t testing.TB) store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), PostgresSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// PostgresSchema creates an empty schema, dropped when the test ends, and
// returns the URL of a connection that uses it.
func PostgresSchema(t testing.TB) string {
	t.Helper()
	admin, err := sql.Open("pgx", PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		admin.Close()
		t.Fatalf("PostgreSQL at %s is not reachable (start it, or set MKT_TEST_POSTGRES): %v", PostgresURL(), err)
	}
	schema := fmt.Sprintf("mkt_test_%d_%d", os.Getpid(), schemaSeq.Add(1))
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		admin.Close()
	})
	return PostgresURL() + "&search_path=" + schema
}
