// Package artifact holds the Marketplace extension model and its OCI form.
//
// An extension is a directory with an extension.yaml at its root. LoadExtension
// parses and validates the descriptor; Pack turns the directory into a
// reproducible OCI artifact (one config blob holding the descriptor as JSON, one
// tar+gzip content layer); Push, Pull and Copy move artifacts between any OCI
// registries and OCI image layouts through oras-go targets, so the same calls
// work against distribution, Harbor, zot, GHCR or a directory on disk.
//
// The package never holds a whole artifact in memory: layers are staged in a
// temporary file on push and streamed through a digest check into the
// unpacker on pull, and a pull only becomes visible in its target directory
// once every byte has been verified and every entry accepted.
package artifact
