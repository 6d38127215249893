package index

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/connectsoft/marketplace/index/store"
	"gopkg.in/yaml.v3"
)

// Roles a token can carry (DESIGN §6).
var Roles = []string{"reader", "publisher", RoleReviewer, "admin"}

// RoleReviewer sees quarantined versions and the review queue (DESIGN §6.2).
const RoleReviewer = "reviewer"

// NewToken makes a random API token and the record to store: only the
// token's hash is kept, so the token is shown once, at creation.
func NewToken(tenant string, roles []string) (string, *store.Token, error) {
	for _, r := range roles {
		if !slices.Contains(Roles, r) {
			return "", nil, errors.New("unknown role " + strconv.Quote(r) + ": want reader, publisher, reviewer or admin")
		}
	}
	if tenant == "" || len(roles) == 0 {
		return "", nil, errors.New("a token needs a tenant and at least one role")
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	token := "mkt_" + base64.RawURLEncoding.EncodeToString(b)
	hash := HashToken(token)
	return token, &store.Token{Hash: hash, ID: hash[:store.TokenIDLength], Tenant: tenant, Roles: roles}, nil
}

// HashToken is how tokens are looked up: hex SHA-256 (tokens are random,
// so no salt or slow hash is needed).
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// TokenStore is what administering tokens needs of a store: the operator's
// commands (mkt index token create|list|revoke) use it, the API does not.
type TokenStore interface {
	PutToken(ctx context.Context, t *store.Token) error
	Tokens(ctx context.Context, tenant string) ([]*store.Token, error)
	RevokeToken(ctx context.Context, id string) (*store.Token, error)
}

// CreatedToken is a token as its creation shows it, the one time it is.
type CreatedToken struct {
	// Secret is the token itself: only its hash is stored.
	Secret string `json:"token"`
	*store.Token
}

// maxExpiry is the latest expiry a token can have.
var maxExpiry = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

// CreateToken makes a token for tenant with roles, valid until expires
// (zero: until revoked), and stores its hash.
func CreateToken(ctx context.Context, st TokenStore, tenant string, roles []string, expires time.Time) (*CreatedToken, error) {
	tok, rec, err := NewToken(tenant, roles)
	if err != nil {
		return nil, err
	}
	if !expires.IsZero() && !expires.After(time.Now()) {
		return nil, fmt.Errorf("expiry %s is not in the future", expires.Format(time.RFC3339))
	}
	if expires.After(maxExpiry) { // the store keeps times as int64 nanoseconds
		return nil, fmt.Errorf("expiry %s is after %d; for a token that never expires, give none", expires.Format(time.DateOnly), maxExpiry.Year())
	}
	rec.ExpiresAt = expires.UTC()
	if err := st.PutToken(ctx, rec); err != nil {
		return nil, err
	}
	return &CreatedToken{Secret: tok, Token: rec}, nil
}

// ParseExpiry reads an expiry as operators write it: a duration from now
// (90d, 720h, 30m; d is 24 hours), a date (2027-01-31, the start of that
// day in UTC) or an RFC 3339 time.
func ParseExpiry(s string, now time.Time) (time.Time, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n > 0 {
			return now.Add(time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(d), nil
	}
	for _, layout := range []string{time.DateOnly, time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("expiry %q: want a duration such as 90d or 720h, a date such as 2027-01-31, or an RFC 3339 time", s)
}

// OpenConfigStore opens the store an index config names and reads nothing
// else of the config: ${NAME} is expanded in the store URL alone, so token
// administration needs the database's credentials, not the webhook secret
// or anything else the server needs.
func OpenConfigStore(ctx context.Context, path string) (store.Store, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load index config: %w", err)
	}
	var c struct {
		Store string `yaml:"store"`
	}
	if err := yaml.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("index config %s: %w", path, err)
	}
	var missing []string
	url := envRef.ReplaceAllStringFunc(c.Store, func(m string) string {
		name := envRef.FindStringSubmatch(m)[1]
		v, ok := os.LookupEnv(name)
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("index config %s: store: environment variables not set: %v", path, missing)
	}
	if url == "" {
		return nil, fmt.Errorf("index config %s: store: required: sqlite://PATH or postgres://…", path)
	}
	return OpenStore(ctx, &Config{Store: url, Dir: filepath.Dir(path)})
}

// TokenInfo is a token's record as token list and revoke show it, with
// whether the API accepts it now.
type TokenInfo struct {
	*store.Token
	// State is active, expired or revoked (store.Token.State).
	State string `json:"state"`
}

// ListTokens lists a tenant's tokens ("" for all), newest first.
func ListTokens(ctx context.Context, st TokenStore, tenant string) ([]TokenInfo, error) {
	ts, err := st.Tokens(ctx, tenant)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]TokenInfo, len(ts))
	for i, t := range ts {
		out[i] = TokenInfo{t, t.State(now)}
	}
	return out, nil
}

// RevokeToken revokes the token with the ID token list shows: the API
// refuses it from then on, with 401.
func RevokeToken(ctx context.Context, st TokenStore, id string) (*TokenInfo, error) {
	t, err := st.RevokeToken(ctx, id)
	if err != nil {
		return nil, err
	}
	return &TokenInfo{t, t.State(time.Now())}, nil
}
