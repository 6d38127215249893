package store_test

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
	"github.com/connectsoft/marketplace/index/store/storetest"
)

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "index.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// postgresURL is the server the PostgreSQL suite runs on: MKT_TEST_POSTGRES,
// or the machine's own (trust auth, database test), which .ci/run starts.
func postgresURL() string {
	if u := os.Getenv("MKT_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

var schemaSeq atomic.Int64

// TestPostgreSQL runs the same suite on PostgreSQL, each test in a schema
// of its own. It fails, never skips, when the server cannot be reached.
func TestPostgreSQL(t *testing.T) {
	admin, err := sql.Open("pgx", postgresURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		t.Fatalf("PostgreSQL at %s is not reachable (start it, or set MKT_TEST_POSTGRES): %v", postgresURL(), err)
	}
	storetest.Run(t, func(t *testing.T) store.Store {
		schema := fmt.Sprintf("mkt_test_%d_%d", os.Getpid(), schemaSeq.Add(1))
		if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { admin.Exec("DROP SCHEMA " + schema + " CASCADE") })
		s, err := store.Open(context.Background(), postgresURL()+"&search_path="+schema)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
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
