#!/usr/bin/env bash
# Validates the deployment files without a Docker engine: docker-compose.yml through
# Debian's docker-compose (`config` parses, interpolates and checks the file against the
# Compose schema), the Dockerfile by the rules we keep (multi-stage, the project's
# toolchain, non-root, health check through the binary).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v docker-compose >/dev/null 2>&1; then
  echo "check-deploy: installing Debian's docker-compose"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
  fi
fi
JWT_SECRET=check docker-compose -f docker-compose.yml config -q
services=$(JWT_SECRET=check docker-compose -f docker-compose.yml config --services | sort | tr '\n' ' ')
[ "$services" = "hoplink-1 hoplink-2 kafka postgres redis " ] || { echo "unexpected services: $services"; exit 1; }
if JWT_SECRET= docker-compose -f docker-compose.yml config -q 2>/dev/null; then
  echo "docker-compose.yml must refuse to start without JWT_SECRET"; exit 1
fi

fail() { echo "Dockerfile: $1"; exit 1; }
[ "$(grep -c '^FROM ' Dockerfile)" -ge 2 ] || fail "not multi-stage"
toolchain=$(sed -n 's/^channel = "\([0-9.]*\)".*/\1/p' rust-toolchain.toml)
toolchain=${toolchain%.0}
grep -q "^FROM rust:${toolchain}-" Dockerfile || fail "the build stage is not on Rust ${toolchain} (rust-toolchain.toml)"
grep -q '^USER [1-9]' Dockerfile || fail "the runtime does not run as a non-root user"
grep -q 'HEALTHCHECK .*' Dockerfile || fail "no HEALTHCHECK"
grep -q '"healthcheck"' Dockerfile || fail "the health check does not use 'hoplink healthcheck'"
grep -q -- '-p hoplink-server --bin hoplink' Dockerfile || fail "does not build the hoplink binary"
echo "check-deploy: docker-compose.yml and Dockerfile are valid"
