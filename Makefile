SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO ?= go
export GO
FUZZTIME ?= 30s
TEST_TIMEOUT ?= 20m

# Integration test environment used by `make test`.
OMSG_PYTHON ?= /usr/bin/python3
MESSAGING_RABBIT_URL ?= rabbit://guest:guest@127.0.0.1:5672/

CACHE := .cache
BIN := $(CACHE)/bin
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := $(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)

.PHONY: help list
help list: ## Print the targets and what they do
	@echo 'usage: make <target> [FUZZTIME=30s] [TEST_TIMEOUT=20m]'
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+( [a-zA-Z_-]+)*:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: setup
setup: ## Install and start what the tests need (RabbitMQ, Python oslo.messaging, gcc)
	@bash scripts/setup.sh

.PHONY: test
test: setup ## Run every test, with the Python interop and RabbitMQ integration tests
	@OMSG_PYTHON='$(OMSG_PYTHON)' MESSAGING_RABBIT_URL='$(MESSAGING_RABBIT_URL)' \
		TEST_TIMEOUT='$(TEST_TIMEOUT)' bash scripts/test.sh

.PHONY: test-short
test-short: ## Run the tests without integration tests (memory driver only)
	env -u OMSG_PYTHON -u MESSAGING_RABBIT_URL $(GO) test -race -shuffle=on ./...

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 30s)
	@bash scripts/fuzz.sh '$(FUZZTIME)'

.PHONY: check
check: ## Run all static checks (gofmt, go vet, golangci-lint, go mod tidy) and report every failure
	@$(MAKE) --no-print-directory -k fmt-check vet lint tidy-check

.PHONY: fmt-check
fmt-check: ## Fail if any Go file is not gofmt-formatted
	@files=$$(find . -type d \( -name .git -o -name .cache \) -prune -o -type f -name '*.go' -print | xargs -r gofmt -l); \
	if [[ -n "$$files" ]]; then echo "gofmt: these files need formatting (run gofmt -w):"; echo "$$files"; exit 1; fi

.PHONY: vet
vet: ## Run go vet
	$(GO) vet ./...

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint (installed into .cache/bin on first use)
	$(GOLANGCI_LINT) run ./...

.PHONY: tidy-check
tidy-check: ## Fail if go.mod or go.sum is not tidy
	$(GO) mod tidy -diff

$(GOLANGCI_LINT):
	@echo "installing golangci-lint $(GOLANGCI_LINT_VERSION) into $(BIN)" >&2
	@mkdir -p $(BIN)
	GOBIN='$(abspath $(BIN))' $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	@mv $(BIN)/golangci-lint $@

.PHONY: lint-tool
lint-tool: $(GOLANGCI_LINT) ## Install the pinned golangci-lint and print its version
	@$(GOLANGCI_LINT) version

.PHONY: cover
cover: ## Run the tests (no integration) with coverage; profile in .cache/cover.out
	@mkdir -p $(CACHE)
	env -u OMSG_PYTHON -u MESSAGING_RABBIT_URL $(GO) test -race -covermode=atomic -coverpkg=./... -coverprofile=$(CACHE)/cover.out ./...
	$(GO) tool cover -func=$(CACHE)/cover.out | tail -n 1
	@echo "HTML report: $(GO) tool cover -html=$(CACHE)/cover.out"

.PHONY: build
build: ## Build every package and the omsg command (./omsg)
	$(GO) build ./...
	$(GO) build -o omsg ./cmd/omsg

.PHONY: demo
demo: ## Run the omsg demo
	$(GO) run ./cmd/omsg demo

.PHONY: clean
clean: ## Remove build and test outputs (keeps the installed tools)
	rm -f omsg $(CACHE)/test.log $(CACHE)/cover.out $(CACHE)/rabbitmq-start.log
