#include "server_keys.hpp"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <vector>

#include "actors/server/keys.hpp"
#include "actors/server/persistence.hpp"
#include "common/clock.hpp"
#include "model/access.hpp"
#include "model/json.hpp"
#include "store/store.hpp"

namespace coapfleet::server {

namespace {

constexpr int exit_done = 0, exit_database = 1, exit_usage = 2, exit_refused = 3;

void say(const std::string& text) {
  std::fprintf(stderr, "coapfleet-server keys: %s\n", text.c_str());
}

/// The "what" of an application error (make_api_error's first context element).
std::string what_of(const caf::error& err) {
  auto& ctx = err.context();
  if (ctx.match_elements<std::string, std::string, std::string, std::string>())
    return ctx.get_as<std::string>(0);
  return caf::to_string(err);
}

int fail(const caf::error& err) {
  say(what_of(err));
  auto code = static_cast<api_errc>(err.code());
  if (code == api_errc::bad_request)
    return exit_usage;
  if (code == api_errc::conflict || code == api_errc::not_found)
    return exit_refused;
  return exit_database;
}

int outcome(store& db, store::key_outcome o, const std::string& id) {
  if (auto err = key_error(o, id, db.last_error()))
    return fail(err);
  return exit_done;
}

void print_key(const std::string& secret) {
  std::fwrite(secret.data(), 1, secret.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

int add(store& db, const keys_command& cmd) {
  model::role r = model::role::anonymous;
  model::from_string(cmd.role, r);
  if (auto err = check_new_key(cmd.id, r))
    return fail(err);
  model::key_entry k{cmd.id, r, new_key_secret(), now_millis(), 0};
  if (k.secret.empty()) {
    say("no random bytes for a new key (getrandom failed)");
    return exit_database;
  }
  if (int rc = outcome(db, db.add_key(k), k.id); rc != exit_done)
    return rc;
  print_key(k.secret);
  say("added a key for " + k.id + " (" + cmd.role + ") to " + db.path()
      + "; a running server uses it within a second");
  return exit_done;
}

int list(store& db) {
  std::vector<model::key_info> keys;
  if (!db.list_keys(now_millis(), keys)) {
    say(db.last_error());
    return exit_database;
  }
  if (keys.empty()) {
    std::printf("no keys\n");
    return exit_done;
  }
  std::vector<std::vector<std::string>> rows{{"ID", "ROLE", "CREATED", "EXPIRES"}};
  for (auto& k : keys)
    rows.push_back({k.id, model::to_string(k.r), model::format_time(k.created_at),
                    k.expires_at == 0 ? "never" : model::format_time(k.expires_at)});
  std::vector<size_t> width(4, 0);
  for (auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i)
      width[i] = std::max(width[i], row[i].size());
  for (auto& row : rows)
    std::printf("%-*s  %-*s  %-*s  %s\n", static_cast<int>(width[0]), row[0].c_str(),
                static_cast<int>(width[1]), row[1].c_str(), static_cast<int>(width[2]),
                row[2].c_str(), row[3].c_str());
  std::fflush(stdout);
  return exit_done;
}

int revoke(store& db, const keys_command& cmd) {
  if (auto err = check_identity(cmd.id))
    return fail(err);
  uint32_t removed = 0;
  if (int rc = outcome(db, db.revoke_keys(cmd.id, removed), cmd.id); rc != exit_done)
    return rc;
  say("revoked " + std::to_string(removed) + (removed == 1 ? " key" : " keys") + " of "
      + cmd.id);
  return exit_done;
}

int rotate(store& db, const keys_command& cmd) {
  if (auto err = check_identity(cmd.id))
    return fail(err);
  if (auto err = check_grace(cmd.grace_seconds))
    return fail(err);
  model::key_entry fresh{cmd.id, model::role::node, new_key_secret(), now_millis(), 0};
  if (fresh.secret.empty()) {
    say("no random bytes for a new key (getrandom failed)");
    return exit_database;
  }
  auto old_expire_at = fresh.created_at + cmd.grace_seconds * 1000;
  if (int rc = outcome(db, db.rotate_key(fresh, old_expire_at), cmd.id); rc != exit_done)
    return rc;
  print_key(fresh.secret);
  say("rotated the key of " + cmd.id + " (" + model::to_string(fresh.r) + ")"
      + "; the previous keys work until " + model::format_time(old_expire_at));
  return exit_done;
}

}  // namespace

void add_keys_command(CLI::App& app, keys_command& cmd) {
  cmd.app = app.add_subcommand(
    "keys", "Manage the pre-shared keys (DTLS PSK) in the database given by --db, "
            "also while a server runs on it; then exit");
  cmd.app->require_subcommand(1);
  cmd.app->fallthrough();  // --db may follow: keys list --db PATH
  cmd.app->footer(
    "Exit codes: 0 done, 1 database error, 2 bad argument, 3 refused (the identity already\n"
    "has a key / has none). A new key is printed alone on standard output, messages go to\n"
    "standard error. The key text is the PSK: coap-client-openssl -u ID -k KEY coaps://...");
  auto* add = cmd.app->add_subcommand("add", "Add a key for an identity that has none; "
                                             "prints the key");
  add->add_option("id", cmd.id, "The identity: a node id or an operator's name")->required();
  add->add_option("--role", cmd.role, "What the identity may do")
    ->required()
    ->check(CLI::IsMember({"node", "operator", "reader"}));
  add->callback([&cmd] { cmd.action = "add"; });
  auto* ls = cmd.app->add_subcommand("list", "The valid keys: id, role, created, expiry "
                                             "(never the keys themselves)");
  ls->callback([&cmd] { cmd.action = "list"; });
  auto* rv = cmd.app->add_subcommand("revoke", "Delete every key of an identity at once");
  rv->add_option("id", cmd.id, "The identity")->required();
  rv->callback([&cmd] { cmd.action = "revoke"; });
  auto* rot = cmd.app->add_subcommand(
    "rotate", "A new key for an identity (same role), printed; its previous keys keep "
              "working for the grace period");
  rot->add_option("id", cmd.id, "The identity")->required();
  rot->add_option("--grace", cmd.grace_seconds,
                  "Seconds the previous keys keep working (0: they stop now)")
    ->capture_default_str()
    ->check(CLI::Range(int64_t{0}, model::max_grace_seconds));
  rot->callback([&cmd] { cmd.action = "rotate"; });
}

int run_keys_command(const keys_command& cmd, const std::string& db_path) {
  std::string error;
  auto db = store::open(db_path, error);
  if (!db) {
    say("cannot open the database: " + error);
    return exit_database;
  }
  // A running server may be committing: wait for its write lock a while.
  db->set_busy_timeout(10000);
  if (cmd.action == "add")
    return add(*db, cmd);
  if (cmd.action == "list")
    return list(*db);
  if (cmd.action == "revoke")
    return revoke(*db, cmd);
  if (cmd.action == "rotate")
    return rotate(*db, cmd);
  say("unknown action " + cmd.action);
  return exit_usage;
}

}  // namespace coapfleet::server
