package artifact

import "errors"

// Sentinel errors, wrapped with context where they occur and tested with
// errors.Is. The CLI maps them to messages and exit codes in one place.
var (
	// ErrInvalidExtension: extension.yaml (or the config blob) breaks the model.
	ErrInvalidExtension = errors.New("invalid extension")
	// ErrNotExtension: the artifact is not a Marketplace extension.
	ErrNotExtension = errors.New("not a marketplace extension")
	// ErrVersionExists: the version tag already names other content.
	ErrVersionExists = errors.New("version already published with different content")
	// ErrUnsafeContent: a layer holds an entry or a size the unpacker refuses.
	ErrUnsafeContent = errors.New("unsafe content")
	// ErrDigestMismatch: fetched bytes do not hash to the digest that named them.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrTargetNotEmpty: the pull target already holds files.
	ErrTargetNotEmpty = errors.New("target directory is not empty")
)
