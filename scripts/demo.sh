#!/usr/bin/env bash
# make demo: the three phases of docs/phases.md end to end on an embedded
# registry and index (mkt dev up --config), with real commands only, and a
# check after every step: keys, publish and sign, the pipeline's review,
# reviewers' approvals, promotion, stock cosign verify, Factory's install
# with a policy and a lockfile, usage, a closed and verified statement, a
# yank, the kill switch and an audit. docs/demo.md describes each step.
# Needs Go, bin/mkt and bin/mkt-server (make build), and stock cosign and
# oras on PATH (make demo-tools). Everything runs on 127.0.0.1; any step
# that does not hold stops the demo with exit 1 and says why.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
MKT=${MKT:-$root/bin/mkt}
GO=${GO:-go}
export PATH="$($GO env GOPATH)/bin:$PATH"
for tool in cosign oras; do
  command -v "$tool" >/dev/null || { echo "demo: stock $tool is not on PATH: run make demo-tools (or make demo)" >&2; exit 1; }
done
[ -x "$MKT" ] && [ -x "$(dirname "$MKT")/mkt-server" ] || { echo "demo: $MKT and mkt-server beside it are needed: run make build" >&2; exit 1; }

work=$(mktemp -d)
dev_pid=
cleanup() {
  if [ -n "$dev_pid" ]; then kill "$dev_pid" 2>/dev/null || true; wait "$dev_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
"$GO" build -C "$root" -o "$work/demohelper" ./scripts/demohelper
helper=$work/demohelper
# This month, the last one that can be closed now, and a month from now.
read -r now_period last_period in_30_days < <("$helper" dates)
cd "$work"
# The demo's own caches and keys: nothing of the user's is read or written
# (HOME is cosign's and oras's: set after Go has found its caches).
export MKT_CACHE_DIR=$work/cache HOME=$work/home DOCKER_CONFIG=$work/home/.docker
mkdir -p "$HOME" "$DOCKER_CONFIG"
export COSIGN_PASSWORD=demo-password
start=$(date +%s)

# ---------------------------------------------------------------- helpers
n=0
step() { n=$((n + 1)); printf '\n\033[1m%2d. %s\033[0m\n' "$n" "$*"; }
ok() { printf '    \033[32mok\033[0m %s\n' "$*"; }
fail() {
  printf '\n\033[31mDEMO FAILED at step %d: %s\033[0m\n' "$n" "$*" >&2
  for f in out err; do [ -s "$work/$f" ] && { echo "--- last command's std$f:" >&2; tail -n 40 "$work/$f" >&2; }; done
  [ -s "$work/dev.log" ] && { echo "--- mkt dev up's log (last lines):" >&2; tail -n 20 "$work/dev.log" >&2; }
  if [ -n "${DEMO_KEEP:-}" ]; then # keep the services and files to look into
    trap - EXIT
    echo "DEMO_KEEP: files in $work, registry http://${reg:-?}, index ${index:-?} (mkt dev up is pid ${dev_pid:-none})" >&2
  fi
  exit 1
}
# show prints a command as a person would type it: paths relative to the
# demo's directory, the registry as $REG and the index as $INDEX.
show() {
  local s="" a
  for a in "$@"; do
    case $a in *[[:space:]]*) s+=" '$a'" ;; *) s+=" $a" ;; esac
  done
  s=${s# }
  s=${s//$MKT/mkt}
  s=${s//$work\//}
  s=${s//$root\//}
  [ -n "${reg:-}" ] && s=${s//$reg/\$REG}
  [ -n "${index:-}" ] && s=${s//$index/\$INDEX}
  [[ $s == install* ]] && s="MKT_INDEX_TOKEN=\$GLOBEX_TOKEN mkt $s --policy factory-policy.yaml --factory-version 2.4.0 -o extensions --lockfile ${lock:-extensions.lock}"
  printf '    $ %s\n' "$s"
}
# run runs a command that must succeed; its stdout is in $work/out.
run() {
  show "$@"
  local rc=0
  "$@" >"$work/out" 2>"$work/err" || rc=$?
  [ "$rc" = 0 ] || fail "\`$(show "$@" | sed 's/^ *\$ //')\` exited $rc"
}
# refuse runs a command that must fail, with want in its output.
refuse() {
  local want=$1; shift
  show "$@"
  if "$@" >"$work/out" 2>"$work/err"; then fail "this was accepted; it must be refused ($want)"; fi
  grep -q -- "$want" "$work/out" "$work/err" || fail "refused, but not for \"$want\""
  # What it said, in one line: the error, or the first failed check.
  local why
  why=$(cat "$work/out" "$work/err" | grep -m1 -E '^ *FAIL ') ||
    why=$(cat "$work/out" "$work/err" | grep -m1 -E '^(mkt: |Error: )') || true
  why=$(echo "$why" | sed -E "s#$reg#\$REG#g; s/^ +//; s/ +/ /g" | cut -c1-150)
  [ -n "$why" ] && printf '      refused: %s\n' "$why"
  return 0
}
mkt() { "$MKT" --plain-http "$@"; }
gone() { # what mkt audit says must go, and why
  sed -n '/^GO/{p;n;p;}' "$work/out" | sed -E "s#$reg#\$REG#g; s/^ */        /" | cut -c1-150
}
field() { "$helper" json "$1" <"$work/out"; }
expect() { # expect PATH WANT: the JSON field PATH of the last output is WANT
  local got
  got=$(field "$1") || fail "the answer has no $1"
  [ "$got" = "$2" ] || fail "$1 is $got, want $2"
}
# wait_for DESCRIPTION COMMAND...: polls until COMMAND succeeds, for at
# most 20 s: the index ingests a push, signature or attestation within a
# second of the registry's notification.
wait_for() {
  local what=$1; shift
  for _ in $(seq 200); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  fail "waited 20 s for $what"
}
# search_as TOKEN NAME: the index's entry for NAME as TOKEN sees it, in $work/search.
search_as() {
  MKT_INDEX_TOKEN=$1 "$MKT" search "$2" --index "$index" --format json >"$work/search" 2>/dev/null
}
listed() { # listed TOKEN NAME QUARANTINED: NAME is listed to TOKEN, quarantined or not
  search_as "$1" "$2" || return 1
  local i total
  total=$("$helper" json items.length <"$work/search") || return 1
  for ((i = 0; i < total; i++)); do
    [ "$("$helper" json "items.$i.name" <"$work/search")" = "$2" ] || continue
    [ "$("$helper" json "items.$i.quarantined" <"$work/search")" = "$3" ] && return 0
  done
  return 1
}
hidden() { # hidden TOKEN NAME: NAME is not listed to TOKEN at all
  search_as "$1" "$2" || return 1
  ! grep -q "\"name\": *\"$2\"" "$work/search"
}
stage_policy() { # the example stage policy, with the example host made the embedded registry's
  sed "s#registry.example.com#$reg#g" "$root/examples/phases/$1/$1-policy.yaml" >"$1-policy.yaml"
}

cat <<'EOF'
Marketplace demo: an extension's way through the three phases (docs/phases.md),
from a publisher's push to a customer's Factory, and a bad day at the end.
Each step says what happens, shows the commands, and checks the outcome.
EOF

# ------------------------------------------------------------------ setup
step "Everyone makes a signing key: the teams and publishers, the review pipeline, the reviewers and the operator (mkt key generate)"
mkdir keys
# Every key the three example stage policies name (keys/NAME.pub).
roles=$(grep -ho 'keys/[a-z0-9-]*\.pub' "$root"/examples/phases/*/*-policy.yaml | sed 's#keys/##; s#\.pub##' | sort -u | tr '\n' ' ')
for k in $roles; do
  "$MKT" key generate --output-prefix "keys/$k" >/dev/null 2>"$work/err" || fail "mkt key generate keys/$k"
done
show "$MKT" key generate --output-prefix keys/NAME
printf '      (NAME: %s)\n' "$roles"
for k in $roles; do [ -s "keys/$k.key" ] && [ -s "keys/$k.pub" ] || fail "keys/$k.key or .pub is missing"; done
ok "$(echo $roles | wc -w) key pairs in keys/ (cosign's formats, encrypted with COSIGN_PASSWORD)"

step "The operator verifies publisher acme: its namespace, tenant and key, signed with the operator's key (mkt publisher verify)"
run "$MKT" publisher verify acme --tenant acme --tier verified --publisher-key keys/acme.pub --key keys/operator.key -o acme.publisher.json
grep -q '"payloadType"' acme.publisher.json || fail "acme.publisher.json is no DSSE envelope"
ok "acme.publisher.json: the index shows acme as verified only if this verifies with the operator's key"

step "The operator starts an embedded registry and an index with the three stages: internal, enterprise and public (mkt dev up --config)"
# The stage policies name the registry's host, so it is chosen first; if
# something takes the port in between, another is tried.
for attempt in 1 2 3 4 5; do
  reg=127.0.0.1:$("$helper" freeport)
  for s in internal enterprise public; do
    stage_policy "$s"
    # The index obeys the operator's kill switch in every stage: it reads
    # the list when the registry notifies its push, and every minute.
    printf 'controlList:\n  ref: %s/connectsoft/control:latest\n  keys: [keys/operator.pub]\n' "$reg" >>"$s-policy.yaml"
  done
  cat >index.yaml <<EOF
# The three phases of examples/phases in one index: each source joins a stage,
# whose policy a version must pass to leave quarantine.
store: sqlite://$work/index.db
operator: connectsoft
operatorKeys: [keys/operator.pub]
stages:
  - {name: internal, policy: internal-policy.yaml}
  - {name: enterprise, policy: enterprise-policy.yaml}
  - {name: public, policy: public-policy.yaml}
sources:
  - {name: internal-incoming, registry: "$reg", plainHTTP: true, repositories: ["internal-incoming/**"], tenant: connectsoft, visibility: internal, stage: internal}
  - {name: contoso-incoming, registry: "$reg", plainHTTP: true, repositories: ["enterprise-incoming/**"], tenant: contoso, visibility: private, stage: enterprise}
  - {name: acme, registry: "$reg", plainHTTP: true, repositories: ["public-incoming/acme/**"], tenant: acme, visibility: public, stage: public}
publishers:
  - {name: connectsoft, tenant: connectsoft, repositories: ["$reg/internal-incoming/connectsoft/**"], tier: official}
  - {name: contoso-crm, tenant: contoso, repositories: ["$reg/enterprise-incoming/contoso-crm/**"], tier: verified}
  - {name: acme, tenant: acme, repositories: ["$reg/public-incoming/acme/**"], keys: [keys/acme.pub], tier: verified, verification: acme.publisher.json}
EOF
  rm -f addr index
  "$MKT" dev up --config index.yaml --listen "$reg" --index-listen 127.0.0.1:0 --addr-file addr --index-addr-file index >"$work/dev.log" 2>&1 &
  dev_pid=$!
  for _ in $(seq 300); do
    { [ -s addr ] && [ -s index ]; } && break
    kill -0 "$dev_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -s addr ] && [ -s index ] && break
  wait "$dev_pid" 2>/dev/null || true
  dev_pid=
  grep -q "address already in use" "$work/dev.log" || fail "mkt dev up did not start: $(tail -n 5 "$work/dev.log")"
done
[ -n "$dev_pid" ] || fail "mkt dev up found no free port in 5 attempts"
index=$(cat index)
show "$MKT" dev up --config index.yaml --listen "$reg" --index-listen 127.0.0.1:0 "&"
ok "registry \$REG = http://$reg, index \$INDEX = $index, stages internal, enterprise and public"

step "The operator makes API tokens: its own (admin and reviewer), acme's (publisher) and Globex's, a customer (mkt index token create)"
token() { # token TENANT ROLES: the new token
  "$MKT" index token create --config index.yaml --tenant "$1" --roles "$2" 2>"$work/err" | tail -n 1
}
show "$MKT" index token create --config index.yaml --tenant connectsoft --roles admin,reviewer
operator_token=$(token connectsoft admin,reviewer) || fail "no operator token"
acme_token=$(token acme publisher) || fail "no acme token"
globex_token=$(token globex reader) || fail "no globex token"
contoso_token=$(token contoso reader) || fail "no contoso token"
[ -n "$operator_token" ] && [ -n "$acme_token" ] && [ -n "$globex_token" ] && [ -n "$contoso_token" ] || fail "a token is empty"
ok "4 tokens, each shown once"

step "The operator publishes the kill switch, an empty control list signed with its key, which Factory's policy names (mkt control push)"
cat >control.yaml <<EOF
apiVersion: marketplace.connectsoft.io/v1
kind: ControlList
sequence: 1
expires: $in_30_days
entries: []
EOF
run mkt control push control.yaml "$reg/connectsoft/control:latest" --key keys/operator.key
run cosign verify --key keys/operator.pub --insecure-ignore-tlog=true --allow-http-registry "$reg/connectsoft/control:latest"
ok "control list 1 pushed; stock cosign verifies its signature"

# --------------------------------------------------------- phase 1
step "Phase 1, internal catalog: the platform team pushes connectsoft/go-service and signs it; the index holds it in quarantine"
int=$reg/internal-incoming/connectsoft/go-service
run mkt push "$int" "$root/examples/service-template"
run mkt sign "$int:2.0.0" --key keys/platform-team.key
wait_for "the index to ingest connectsoft/go-service" listed "$operator_token" connectsoft/go-service true
hidden "$globex_token" connectsoft/go-service || fail "another tenant sees an internal extension"
ok "quarantined: the operator's tenant sees it, marked quarantined; Globex does not see it at all"

step "The pipeline reviews it and signs its review (mkt review check --attest); the internal policy needs no person, so the quarantine lifts"
run mkt review check "$int:2.0.0" --stage internal --policy internal-policy.yaml --attest --key keys/pipeline.key
wait_for "the index to lift go-service's quarantine" listed "$operator_token" connectsoft/go-service false
ok "passed the internal stage's policy: released to the operator's teams"

step "It is promoted to the internal stage's registry, with its signature and review (mkt promote)"
run mkt promote "$int:2.0.0" --to internal --registry "$reg/internal" --policy internal-policy.yaml --factory-version 2.4.0 --format json
expect promoted true
ok "copied to $(field destination | sed "s#$reg#\$REG#")"

# --------------------------------------------------------- phase 2
step "Phase 2, enterprise marketplace: Contoso's CRM team publishes contoso-crm/accounts; its pipeline passes it, but it waits for a security reviewer"
run "$MKT" init accounts --kind Connector --name contoso-crm/accounts --license MIT --version 1.0.0
ent=$reg/enterprise-incoming/contoso-crm/accounts
run mkt push "$ent" accounts
run mkt sign "$ent:1.0.0" --key keys/crm-team.key
run mkt review check "$ent:1.0.0" --stage enterprise --policy enterprise-policy.yaml --attest --key keys/pipeline.key
wait_for "the index to ingest contoso-crm/accounts" listed "$contoso_token" contoso-crm/accounts true
hidden "$globex_token" contoso-crm/accounts || fail "Globex sees Contoso's private extension"
refuse "needed distinct keys" mkt promote "$ent:1.0.0" --to enterprise --registry "$reg/enterprise" --policy enterprise-policy.yaml --factory-version 2.4.0
ok "quarantined, private to Contoso; promotion refused: no security reviewer has approved"

step "A Contoso security reviewer approves it (mkt review approve); the quarantine lifts and it is promoted"
run mkt review approve "$ent:1.0.0" --key keys/security-1.key --stage enterprise --reviewer security-1 --notes "read the code"
wait_for "the index to lift accounts' quarantine" listed "$contoso_token" contoso-crm/accounts false
run mkt promote "$ent:1.0.0" --to enterprise --registry "$reg/enterprise" --policy enterprise-policy.yaml --factory-version 2.4.0 --format json
expect promoted true
ok "released to Contoso's teams and copied to $(field destination | sed "s#$reg#\$REG#")"

# --------------------------------------------------------- phase 3
step "Phase 3, public marketplace: verified publisher acme pushes acme/http and acme/salesforce (which needs acme/http) and signs them"
pub=$reg/public-incoming/acme
run mkt push "$pub/http" "$root/examples/http-module"
run mkt push "$pub/salesforce" "$root/examples/salesforce-connector"
run mkt sign "$pub/http:1.2.3" --key keys/acme.key
run mkt sign "$pub/salesforce:1.4.2" --key keys/acme.key
# A version is immutable: the same content again is a no-op, other content is refused.
run mkt push "$pub/http" "$root/examples/http-module"
cp -r "$root/examples/http-module" changed && echo "# changed" >>changed/README.md
refuse "versions are immutable" mkt push "$pub/http" changed
wait_for "the index to ingest acme/salesforce" listed "$acme_token" acme/salesforce true
hidden "" acme/salesforce || fail "an anonymous caller sees a quarantined version"
ok "quarantined: acme sees both, marked quarantined; anyone else sees nothing yet; 1.2.3 cannot be pushed with other content"

step "The operator's lab certifies them on Factory 2.4.0, and the pipeline reviews them (mkt attest --type compatibility, mkt review check --attest)"
for x in http-module:http:1.2.3 salesforce-connector:salesforce:1.4.2; do
  IFS=: read -r dir name version <<<"$x"
  range=$(sed -n 's/^ *factory: *"\(.*\)"$/\1/p' "$root/examples/$dir/extension.yaml")
  printf '{"constraint": "%s", "tested": [{"factory": "2.4.0", "result": "passed"}]}\n' "$range" >"compat-$name.json"
  run mkt attest "$pub/$name:$version" --key keys/operator.key --type compatibility --predicate "compat-$name.json"
  run mkt review check "$pub/$name:$version" --stage public --policy public-policy.yaml --attest --key keys/pipeline.key
done
refuse "needed distinct keys" mkt promote "$pub/salesforce:1.4.2" --to public --registry "$reg/public" --policy public-policy.yaml --factory-version 2.4.0
ok "the pipeline approved both; promotion still refused: two of three curators must approve"

step "Two curators approve each; acme signs its terms (0.10 EUR a pull or install, 20% to the platform) and the operator countersigns the agreement (mkt review approve, mkt attest --type terms)"
cat >terms.json <<'EOF'
{"license": "Apache-2.0", "agreementId": "AGR-2026-17", "effectiveDate": "2026-01-01T00:00:00Z",
 "pricing": {"model": "usage", "price": 0.10, "currency": "EUR"}, "revenueShare": {"publisher": 80, "platform": 20}}
EOF
for ref in "$pub/http:1.2.3" "$pub/salesforce:1.4.2"; do
  for who in curator-1 curator-2; do
    run mkt review approve "$ref" --key "keys/$who.key" --stage public --reviewer "$who" --notes "read the code"
  done
  run mkt attest "$ref" --key keys/acme.key --type terms --predicate terms.json
  run mkt attest "$ref" --key keys/operator.key --type terms --predicate terms.json
done
wait_for "the index to release acme/salesforce" listed "" acme/salesforce false
wait_for "the index to release acme/http" listed "" acme/http false
ok "both passed the public stage's policy: listed to everyone"

step "They are promoted to the public registry with every signature and attestation (mkt promote)"
for x in http:1.2.3 salesforce:1.4.2; do
  run mkt promote "$pub/$x" --to public --registry "$reg/public" --policy public-policy.yaml --factory-version 2.4.0 --format json
  expect promoted true
done
ok "copied to \$REG/public/acme/http:1.2.3 and \$REG/public/acme/salesforce:1.4.2"

step "Anyone checks the promoted artifact with stock cosign: acme's signature, and the curators' reviews (cosign verify, cosign verify-attestation)"
sf=$reg/public/acme/salesforce:1.4.2
run cosign verify --key keys/acme.pub --insecure-ignore-tlog=true --allow-http-registry "$sf"
for who in pipeline curator-1 curator-2; do
  run cosign verify-attestation --key "keys/$who.pub" --type https://connectsoft.io/marketplace/review/v1 \
    --insecure-ignore-tlog=true --allow-http-registry "$sf"
  grep -q payload "$work/out" || fail "cosign verify-attestation printed no attestation"
done
refuse "no matching" cosign verify --key keys/crm-team.pub --insecure-ignore-tlog=true --allow-http-registry "$sf"
ok "stock cosign accepts acme's signature and three reviews, and refuses another key"

# --------------------------------------------------------- Factory
step "Globex's Factory installs acme/salesforce with the public policy and the kill switch, through the index, and writes a lockfile (mkt install)"
# Factory's policy: the public stage's, the operator's kill switch, and
# yanked versions refused even when a lockfile pins them (production
# Factory stops using a yanked version at once).
sed 's/lifecycle: {allowDeprecated: true,/lifecycle: {allowDeprecated: true, refusePinnedYanked: true,/' public-policy.yaml >factory-policy.yaml
grep -q 'refusePinnedYanked: true' factory-policy.yaml || fail "factory-policy.yaml does not refuse pinned yanked versions"
install() { # install [ARGS]: Globex's Factory, into extensions/ with the lockfile $lock
  MKT_INDEX_TOKEN=$globex_token mkt install "$@" --policy factory-policy.yaml --factory-version 2.4.0 -o extensions --lockfile "${lock:-extensions.lock}"
}
run install acme/salesforce --index "$index"
[ -s extensions/acme/salesforce/extension.yaml ] && [ -s extensions/acme/http/extension.yaml ] || fail "acme/salesforce or acme/http is not in extensions/"
grep -q '"acme/http"' extensions.lock && grep -q '"acme/salesforce"' extensions.lock || fail "the lockfile lacks acme/http or acme/salesforce"
ok "installed acme/salesforce 1.4.2 and its dependency acme/http 1.2.3; extensions.lock pins both digests"

step "The index counted the usage: the registry's pulls and Factory's install report (mkt usage, with acme's publisher token)"
usage_counted() {
  MKT_INDEX_TOKEN=$acme_token "$MKT" usage --index "$index" --name acme/salesforce --granularity month --format json >"$work/out" 2>"$work/err" || return 1
  local i rows installs=0 pulls=0
  rows=$(field rows.length) || return 1
  for ((i = 0; i < rows; i++)); do
    installs=$((installs + $(field "rows.$i.installs"))); pulls=$((pulls + $(field "rows.$i.pulls")))
  done
  [ "$installs" -ge 1 ] && [ "$pulls" -ge 1 ]
}
wait_for "the index to count acme/salesforce's pull and install" usage_counted
show env MKT_INDEX_TOKEN=\$ACME_TOKEN "$MKT" usage --index "$index" --name acme/salesforce --granularity month
MKT_INDEX_TOKEN=$acme_token "$MKT" usage --index "$index" --name acme/salesforce --granularity month 2>/dev/null | sed 's/^/    /'
ok "Globex's install and the pulls are counted for acme/salesforce"

step "The operator closes acme's statement of last month: frozen, signed with its key and pushed (mkt index statements --close)"
run mkt index statements --config index.yaml --period "$last_period" --publisher acme --close --key keys/operator.key --to "$reg/connectsoft/statements" --format json
expect items.0.publisher acme
expect items.0.statement.status closed
ok "acme's statement of $last_period is closed and pushed to \$REG/connectsoft/statements:acme-$last_period"

step "acme pulls its statement with stock oras and verifies the operator's signature with stock cosign (oras pull, cosign verify-blob)"
mkdir statement && cd statement
run oras pull --plain-http "$reg/connectsoft/statements:acme-$last_period"
run cosign verify-blob --key ../keys/operator.pub --signature statement.json.sig --insecure-ignore-tlog=true statement.json
grep -q "Verified OK" "$work/out" "$work/err" || fail "cosign verify-blob did not say Verified OK"
sed 's/"status": "closed"/"status": "open"/' statement.json >forged.json
cmp -s statement.json forged.json && fail "the forged copy is the statement itself"
refuse "invalid signature" cosign verify-blob --key ../keys/operator.pub --signature statement.json.sig --insecure-ignore-tlog=true forged.json
cd ..
ok "the statement verifies with the operator's public key; a copy with one word changed does not"

step "A Factory of Globex's, offline since last month, reports 3 installs of then: the closed statement stays as signed, and this month's bills them as an adjustment (mkt index statements)"
show "   (Factory, through index/client: 3 installs of acme/salesforce 1.4.2, dated $last_period)"
digest=$(sed -n 's/.*"reference": *"[^"]*salesforce@\(sha256:[0-9a-f]*\)".*/\1/p' extensions.lock)
[ -n "$digest" ] || fail "no digest of acme/salesforce in extensions.lock"
MKT_INDEX_TOKEN=$globex_token "$helper" late-installs --index "$index" --period "$last_period" --name acme/salesforce --version 1.4.2 --digest "$digest" --quantity 3 ||
  fail "the install report was refused"
run mkt index statements --config index.yaml --period "$now_period" --publisher acme
sed 's/^/    /' "$work/out"
grep -q "adjustment of $last_period" "$work/out" || fail "this month's statement has no adjustment of $last_period"
grep -q "EUR" "$work/out" || fail "this month's statement prices nothing in EUR"
ok "this month's preview prices Globex's usage at 0.10 EUR a unit, 20% to the platform, and carries the late installs"

# --------------------------------------------------------- a bad day
step "acme yanks acme/http 1.2.3 (mkt yank); the yank reaches the index and a fresh install refuses it"
run mkt yank "$pub/http:1.2.3" --key keys/acme.key --reason "CVE-2026-7: leaks tokens in retries"
# The yanked version stays released, marked yanked, for everyone who saw
# it (its dependents' owners find it and its impact); resolution refuses it.
yanked_in_index() {
  "$helper" get "$index/api/v1/extensions/acme/http" >"$work/out" && [ "$(field versions.0.lifecycle)" = yanked ] &&
    listed "" acme/http false
}
wait_for "the index to take the yank" yanked_in_index
lock=fresh.lock refuse "yanked" install acme/salesforce --index "$index"
ok "the index shows acme/http 1.2.3 yanked to everyone; a fresh install of acme/salesforce, which needs it, is refused"

step "Globex's --locked install refuses the yanked digest it pinned (its policy sets refusePinnedYanked), and mkt audit reports the yank (mkt install --locked, mkt audit)"
refuse "yanked" install --locked --index "$index"
refuse "yanked" mkt audit extensions --policy factory-policy.yaml --lockfile extensions.lock
gone
grep -q '^GO *acme/http@1.2.3' "$work/out" || fail "mkt audit does not say acme/http 1.2.3 must go"
grep -q '^GO *acme/salesforce' "$work/out" && fail "mkt audit says acme/salesforce must go before anything blocked it"
ok "a yank stops the locked install under Factory's policy, and audit says acme/http must go"

step "The operator's kill switch blocks acme/salesforce 1.4.2 by digest (mkt control add, mkt control push)"
run mkt control add control.yaml "$pub/salesforce:1.4.2" --reason "steals tokens (demo)"
sed 's/^sequence: 1$/sequence: 2/' control.yaml >control.next && mv control.next control.yaml
run mkt control push control.yaml "$reg/connectsoft/control:latest" --key keys/operator.key
run mkt control show "$reg/connectsoft/control:latest" --key keys/operator.pub --format json
expect list.sequence 2
expect verified true
ok "control list 2 blocks acme/salesforce's manifest, layer and content digests"

step "The block reaches the index, which lists acme/salesforce 1.4.2 to no one but acme, and mkt audit finds it on Globex's disk (mkt search, mkt audit)"
wait_for "the index to hide the blocked version" hidden "" acme/salesforce
hidden "$globex_token" acme/salesforce || fail "Globex still finds the blocked acme/salesforce"
refuse "steals tokens" mkt audit extensions --policy factory-policy.yaml --lockfile extensions.lock
gone
grep -q '^GO *acme/salesforce@1.4.2' "$work/out" || fail "mkt audit does not say acme/salesforce 1.4.2 must go"
ok "the blocked version is gone from the catalog and refused everywhere, pinned or not; the audit names it for removal"

elapsed=$(($(date +%s) - start))
printf '\n\033[1mDemo passed in %d s\033[0m: three phases walked, %d steps, each checked.\n' "$elapsed" "$n"
