#!/usr/bin/env bash
# make demo: an embedded registry, every example pushed, one pulled back and
# inspected. Needs nothing but Go; everything runs on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
MKT=${MKT:-bin/mkt}
work=$(mktemp -d)
trap 'kill $registry_pid 2>/dev/null || true; rm -rf "$work"' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Starting an embedded CNCF distribution registry (mkt dev up)"
"$MKT" dev up --listen 127.0.0.1:0 --addr-file "$work/addr" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do [ -s "$work/addr" ] && break; sleep 0.05; done
host=$(cat "$work/addr")
echo "registry: http://$host"

step "Pushing one extension of each kind (mkt push)"
for dir in examples/*/; do
  name=$(awk '/^  name:/ {print $2; exit}' "$dir/extension.yaml")
  "$MKT" push --plain-http "$host/$name" "$dir"
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

printf '\nDemo finished: 4 extensions published, verified by digest, pulled and mirrored.\n'
