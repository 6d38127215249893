# Marketplace: `make demo` walks the three phases end to end on an embedded
# registry and index (docs/demo.md), `make test` runs everything CI runs.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GOBIN     := $(shell $(GO) env GOPATH)/bin
export PATH := $(GOBIN):$(PATH)

ORAS_VERSION        := v1.3.6
COSIGN_VERSION      := v2.6.5
REGISTRY_VERSION    := v3.1.2
STATICCHECK_VERSION := 2026.2.2
# The release above is module version v0.8.2: the proxy serves module versions only.
STATICCHECK_MODULE := v0.8.2
FUZZTIME            ?= 10s
# axe-core, the accessibility checker the catalog's browser test injects into
# every page (docs/index.md, "Web catalog"): from the npm registry, at this
# version and sha512 (the registry's dist.integrity), into AXE_DIR.
AXE_VERSION   := 4.14.1
AXE_INTEGRITY := sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==
AXE_DIR       := $(shell $(GO) env GOPATH)/share/axe-core
# Race detection doubles the run time of the registry tests on two cores
# and stays on: it is where concurrency bugs in transfers would show.
TESTFLAGS           ?= -race -count=1 -timeout 20m

.PHONY: build kms-plugins test unit lint tools demo-tools axe fuzz fuzz-short bench bench-harness demo clean

# build makes mkt and, beside it, mkt-server: the companion that mkt runs for
# its server commands (index serve, index token, dev up), so that mkt itself
# links neither the index service nor the embedded registry (docs/cli.md).
build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/mkt ./cmd/mkt
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/mkt-server ./cmd/mkt-server

# kms-plugins builds sigstore's KMS providers as plugin programs, one binary
# under the four names sigstore looks for on PATH (docs/signing.md, "KMS"):
# mkt itself does not link them.
KMS_SCHEMES := awskms gcpkms azurekms hashivault
kms-plugins:
	$(GO) build -o bin/sigstore-kms-awskms ./cmd/sigstore-kms
	@for s in $(filter-out awskms,$(KMS_SCHEMES)); do ln -f bin/sigstore-kms-awskms bin/sigstore-kms-$$s; done

# tools installs the stock peers the interop tests run, at pinned versions.
tools: demo-tools
	@registry --version 2>/dev/null | grep -q "$(REGISTRY_VERSION)" || $(GO) install github.com/distribution/distribution/v3/cmd/registry@$(REGISTRY_VERSION)
	@staticcheck -version 2>/dev/null | grep -q "$(STATICCHECK_VERSION)" || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_MODULE)
	@echo "tools: oras $(ORAS_VERSION), cosign $(COSIGN_VERSION), registry $(REGISTRY_VERSION), staticcheck $(STATICCHECK_VERSION) in $(GOBIN)"

# demo-tools installs the stock peers the demo checks with: oras (pulls a
# statement) and cosign (verify, verify-attestation, verify-blob).
demo-tools:
	@oras version 2>/dev/null | grep -q "$(ORAS_VERSION:v%=%)" || $(GO) install oras.land/oras/cmd/oras@$(ORAS_VERSION)
	@cosign version 2>/dev/null | grep -q "$(COSIGN_VERSION)" || $(GO) install github.com/sigstore/cosign/v2/cmd/cosign@$(COSIGN_VERSION)

# axe puts axe.min.js in AXE_DIR, where index's browser test looks for it
# (or set MKT_AXE to the file).
axe:
	@./scripts/fetch-axe.sh $(AXE_VERSION) $(AXE_INTEGRITY) $(AXE_DIR)

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	staticcheck ./...

unit:
	$(GO) test $(TESTFLAGS) ./...

# demo runs last: a step of the three phases that no longer holds fails CI.
test: tools axe lint unit fuzz-short demo

# Every fuzz target, with the number of inputs CI's short run feeds it (about 5-10 s each here).
# CI counts inputs (-fuzztime Nx) rather than seconds: Go 1.26's coordinator can fail a run that
# is stopped by a time budget with a bare "context deadline exceeded" and no crasher
# (go.dev/issue/75804, fixed in Go 1.27). `make fuzz FUZZTIME=10m` digs deeper, by time.
FUZZ_TARGETS := artifact:FuzzParseExtension:20000 artifact:FuzzParseConfig:5000 artifact:FuzzUnpack:3000 \
	signing:FuzzDecodeEnvelope:5000 signing:FuzzNormalizePredicate:5000 signing:FuzzFutureDated:5000 policy:FuzzParsePolicy:3000 \
	index:FuzzDecodeEnvelope:5000 index:FuzzEvidenceTag:5000 review:FuzzParseAdvisory:5000 review:FuzzParseManifest:5000 review:FuzzSecretScan:4000 index/catalog:FuzzTextMatches:20000 \
	index/billing:FuzzParseTerms:5000 index/billing:FuzzDecodeStatement:5000 \
	control:FuzzParse:5000 index:FuzzDecodeUsageEvents:5000 index/client:FuzzVerifySignature:5000 signing:FuzzVerifyPublisher:5000
fuzz-short fuzz:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; rest=$${t#*:}; fn=$${rest%%:*}; n=$${rest#*:}; \
		budget=$(if $(filter fuzz,$@),$(FUZZTIME),$${n}x); \
		echo "fuzz $$pkg $$fn for $$budget"; \
		$(GO) test ./$$pkg -run '^$$' -fuzz "^$$fn$$" -fuzztime $$budget || exit 1; done
# The snapshot catalog decoder (resolve/snapshot), added apart: recipes read
# FUZZ_TARGETS when they run.
FUZZ_TARGETS += resolve/snapshot:FuzzParseCatalog:5000
# The README renderer of the extension page (index/readme.go).
FUZZ_TARGETS += index:FuzzRenderReadme:5000

# Go benchmarks, then the harness that compares mkt with stock oras.
bench: build tools
	$(GO) test ./artifact -run '^$$' -bench . -benchmem -benchtime 3x
	$(GO) run ./bench -mkt bin/mkt
	$(GO) run ./bench -mkt bin/mkt -mode verify
	$(GO) run ./bench -mkt bin/mkt -mode install
	$(GO) run ./bench -mode index
	$(GO) run ./bench -mkt bin/mkt -mode ingest
	$(GO) test ./resolve -run '^$$' -bench . -benchmem
	$(GO) test ./resolve/snapshot -run '^$$' -bench . -benchmem -benchtime 3x

# The demo: every phase, checked step by step, under two minutes after the
# build (it prints its time). Needs only Go: demo-tools installs cosign and oras.
demo: build demo-tools
	./scripts/demo.sh

clean:
	rm -rf bin
