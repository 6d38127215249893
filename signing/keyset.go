package signing

import "context"

// LoadKeys opens every public key refs names (see LoadKey), in order. It
// is the one loop over --key flags that inspect, verify and pull share; the
// first key that does not load fails it, named in the error.
func LoadKeys(ctx context.Context, refs []string) ([]*Key, error) {
	keys := make([]*Key, 0, len(refs))
	for _, r := range refs {
		k, err := LoadKey(ctx, r)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}
