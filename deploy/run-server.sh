#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a running main server:
# installs dependencies, builds, and runs coapfleet-server with its embedded
# defaults (SQLite file coapfleet.db in the current directory, udp port 5683).
# Extra arguments go to the server, e.g. deploy/run-server.sh --log-level debug
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/deploy/install-deps.sh"
"$root/deploy/build.sh"
exec "${BUILD_DIR:-$root/build}/coapfleet-server" "$@"
