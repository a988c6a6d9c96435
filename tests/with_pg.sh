#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL (deploy/pg.sh, no fsync) whose
# database URI is in COAPFLEET_TEST_PG; stops and removes it afterwards.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d /tmp/coapfleet-pg.XXXXXX)
cleanup() { "$here/deploy/pg.sh" stop "$dir" || true; rm -rf "$dir"; }
trap cleanup EXIT
COAPFLEET_TEST_PG=$("$here/deploy/pg.sh" start "$dir" --no-fsync)
export COAPFLEET_TEST_PG
"$@"
