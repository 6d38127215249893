#!/usr/bin/env bash
# make demo: an embedded registry, every example pushed, one pulled back and
# inspected. Needs nothing but Go; everything runs on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
MKT=${MKT:-bin/mkt}
work=$(mktemp -d)
trap 'kill $registry_pid 2>/dev/null || true; rm -rf "$work"' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Starting an embedded CNCF distribution registry and index (mkt dev up)"
"$MKT" dev up --listen 127.0.0.1:0 --index-listen 127.0.0.1:0 --addr-file "$work/addr" --index-addr-file "$work/index" \
  --dev-dir "$work/dev" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 200); do [ -s "$work/addr" ] && [ -s "$work/index" ] && break; sleep 0.05; done
host=$(cat "$work/addr")
index=$(cat "$work/index")
echo "registry: http://$host"
echo "index:    $index (the registry notifies it of every push)"
for _ in $(seq 200); do [ -s "$work/dev/dev.key" ] && break; sleep 0.05; done
echo "dev key:  $work/dev/dev.key (the dev index's policy requires a signature by it)"

step "Pushing one extension of each kind (mkt push)"
for dir in $(dirname examples/*/extension.yaml); do
  name=$(awk '/^  name:/ {print $2; exit}' "$dir/extension.yaml")
  "$MKT" push --plain-http "$host/$name" "$dir"
done

step "Signing each of them with the dev key (mkt sign), right after the push"
for dir in $(dirname examples/*/extension.yaml); do
  name=$(awk '/^  name:/ {print $2; exit}' "$dir/extension.yaml")
  version=$(awk '/^  version:/ {print $2; exit}' "$dir/extension.yaml")
  COSIGN_PASSWORD= "$MKT" sign --plain-http "$host/$name:$version" --key "$work/dev/dev.key"
done

step "Pushing the same version again is a no-op; other content under it is refused"
"$MKT" push --plain-http "$host/acme/salesforce" examples/salesforce-connector
cp -r examples/salesforce-connector "$work/changed"
echo "# changed" >> "$work/changed/README.md"
if "$MKT" push --plain-http "$host/acme/salesforce" "$work/changed"; then
  echo "demo: a moved version tag was accepted" >&2; exit 1
fi

step "Inspecting acme/salesforce:1.4.2 (mkt inspect)"
"$MKT" inspect --plain-http "$host/acme/salesforce:1.4.2"

step "Pulling it back into a fresh directory (mkt pull)"
"$MKT" pull --plain-http "$host/acme/salesforce:1.4.2" -o "$work/salesforce"
(cd "$work/salesforce" && find . -type f | sort | xargs ls -l | awk '{print "  " $1, $5, $NF}')

step "Mirroring it to an OCI layout for air-gapped transfer (mkt copy)"
"$MKT" copy --plain-http "$host/acme/salesforce:1.4.2" "$work/airgap:1.4.2" --to-oci-layout

step "The same as JSON, for scripts (--format json)"
"$MKT" push --plain-http "$host/acme/http" examples/http-module --format json

step "Searching the index (mkt search), compatible with Factory 2.4.0"
# Wait until all four are shown signed: the index ingests each signature push within a second.
for _ in $(seq 100); do
  signed=$("$MKT" search --index "$index" --format json 2>/dev/null | grep -io '"signed": *true' | wc -l)
  [ "$signed" -ge 4 ] && break; sleep 0.1
done
[ "$signed" -ge 4 ] || { echo "demo: the index shows $signed of 4 extensions signed after 10 s" >&2; exit 1; }
"$MKT" search --index "$index" --factory 2.4.0

step "Resolving acme/salesforce and its dependencies through the index (mkt resolve --index --explain)"
"$MKT" resolve acme/salesforce --plain-http --index "$index" --factory-version 2.4.0 --explain

printf '\nDemo finished: 4 extensions published, signed, indexed within a second of the push, searched, resolved, pulled and mirrored.\n'
