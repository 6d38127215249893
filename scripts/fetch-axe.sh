#!/usr/bin/env bash
# fetch-axe.sh VERSION INTEGRITY DIR: puts axe-core's axe.min.js, at VERSION,
# in DIR (with DIR/version beside it), for the catalog's accessibility test
# (index/web_test.go, docs/index.md "Web catalog"). The tarball comes from the
# npm registry and must match INTEGRITY, the sha512 the Makefile pins, which
# must also be what the registry's metadata for VERSION says: a tarball or
# metadata changed under a published version fails here, not in the test.
set -euo pipefail
version=$1 integrity=$2 dir=$3
if [ -f "$dir/axe.min.js" ] && [ "$(cat "$dir/version" 2>/dev/null)" = "$version" ]; then
  exit 0
fi
registry=https://registry.npmjs.org/axe-core
published=$(curl -fsSL "$registry/$version" | jq -r .dist.integrity) ||
  { echo "fetch-axe: cannot read the npm registry's metadata for axe-core $version" >&2; exit 1; }
if [ "$published" != "$integrity" ]; then
  echo "fetch-axe: the registry says axe-core $version has integrity $published; the Makefile pins $integrity" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
curl -fsSL -o "$tmp/axe.tgz" "$registry/-/axe-core-$version.tgz" ||
  { echo "fetch-axe: cannot download axe-core $version from the npm registry" >&2; exit 1; }
got="sha512-$(openssl dgst -sha512 -binary "$tmp/axe.tgz" | base64 -w0)"
if [ "$got" != "$integrity" ]; then
  echo "fetch-axe: axe-core-$version.tgz has integrity $got, want $integrity" >&2
  exit 1
fi
tar -xzf "$tmp/axe.tgz" -C "$tmp" package/axe.min.js
mkdir -p "$dir"
mv "$tmp/package/axe.min.js" "$dir/axe.min.js"
echo "$version" >"$dir/version"
echo "axe-core $version in $dir/axe.min.js"
