// `coapfleet-server --db PATH keys add|list|revoke|rotate`: the keys in the
// server's database, managed without the server (and while one runs on the
// same database: SQLite WAL, a busy timeout; the server sees each change
// within a second through the key version).
#pragma once

#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

namespace coapfleet::server {

/// What the command line asked of `keys`.
struct keys_command {
  CLI::App* app = nullptr;  ///< the `keys` subcommand (parsed() says whether it was given)
  std::string action;       ///< add, list, revoke, rotate
  std::string id;
  std::string role;
  int64_t grace_seconds = 3600;
};

/// Adds the `keys` subcommand and its own subcommands to `app`.
void add_keys_command(CLI::App& app, keys_command& cmd);

/// Runs it on the database at `db`: the exit code (0 done, 1 database
/// error, 2 bad argument, 3 refused: a key exists / no key to revoke or rotate).
/// Only a new key goes to standard output (add, rotate) or the listing;
/// every message goes to standard error. Secrets are never printed otherwise.
int run_keys_command(const keys_command& cmd, const std::string& db);

}  // namespace coapfleet::server
