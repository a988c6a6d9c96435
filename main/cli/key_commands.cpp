// key add|list|revoke|rotate: the server's pre-shared keys (POST/GET /keys;
// operators only). A new key is printed alone on a line, so that
// KEY=$(coapfleet key add node-7 --role node) works; --json prints the
// server's answer.
#include "main/cli/commands.hpp"
#include "main/cli/output.hpp"
#include "main/cli/time_text.hpp"
#include "model/json_builder.hpp"
#include "model/json_value.hpp"

#include <cstdio>
#include <memory>

namespace coapfleet::cli {

namespace {

using model::json_builder;

/// POST /keys with `body`; with --json the answer is printed here.
json_answer post(context& ctx, const std::string& body) {
  auto a = ctx.call(client::method::post, "keys", "", body);
  if (a.ok() && ctx.options.json)
    print_raw(a.raw.body);
  return a;
}

/// Prints the new key of an add or rotate (or the JSON answer).
int issue(context& ctx, const std::string& body) {
  auto a = post(ctx, body);
  if (!a.ok() || ctx.options.json)
    return a.exit;
  auto key = a.json()["key"].as_string();
  if (key.empty()) {
    std::fprintf(stderr, "coapfleet: the server's answer carries no key: %s\n",
                 a.raw.body.c_str());
    return exit_coap_error;
  }
  print_raw(key);
  return exit_ok;
}

int add(context& ctx, const std::string& id, const std::string& role) {
  return issue(ctx, json_builder()
                      .begin_object()
                      .member("action", "add")
                      .member("id", id)
                      .member("role", role)
                      .end_object()
                      .text());
}

int rotate(context& ctx, const std::string& id, long long grace) {
  return issue(ctx, json_builder()
                      .begin_object()
                      .member("action", "rotate")
                      .member("id", id)
                      .member("grace_seconds", grace)
                      .end_object()
                      .text());
}

int revoke(context& ctx, const std::string& id) {
  auto a = post(ctx, json_builder()
                       .begin_object()
                       .member("action", "revoke")
                       .member("id", id)
                       .end_object()
                       .text());
  if (!a.ok() || ctx.options.json)
    return a.exit;
  auto message = a.json()["message"].as_string();
  print_raw(message.empty() ? "keys of " + id + " revoked" : message);
  return exit_ok;
}

int list(context& ctx) {
  auto a = ctx.call(client::method::get, "keys");
  if (!a.ok())
    return a.exit;
  if (ctx.options.json) {
    print_raw(a.raw.body);
    return exit_ok;
  }
  table t({"ID", "ROLE", "CREATED", "EXPIRES"});
  for (model::json_value k : a.json()["keys"].elements()) {
    auto expires = k["expires_at"];
    t.add({k["id"].as_string(), k["role"].as_string(), relative_time(k["created_at"].as_string()),
           expires.is_string() ? expires.as_string() : "never"},
          {colour::none, colour::none, colour::none,
           expires.is_string() ? colour::yellow : colour::none});
  }
  if (t.empty()) {
    std::printf("no keys\n");
    return exit_ok;
  }
  t.print(terminal::detect());
  return exit_ok;
}

}  // namespace

void add_key_commands(CLI::App& app, context& ctx) {
  auto* key = app.add_subcommand(
    "key", "The server's pre-shared keys for DTLS (operators only; a key is shown once)");
  key->require_subcommand(1);

  struct key_args {
    std::string id, role;
    long long grace = 3600;
  };
  auto args = std::make_shared<key_args>();

  auto* add_cmd = key->add_subcommand("add", "A key for an identity without one; prints it");
  add_cmd->add_option("id", args->id, "The identity: a node id or an operator's name")
    ->required();
  add_cmd->add_option("--role", args->role, "What the identity may do")
    ->required()
    ->check(CLI::IsMember({"node", "operator", "reader"}));
  add_cmd->callback(
    [&ctx, args] { ctx.action = [&ctx, args] { return add(ctx, args->id, args->role); }; });

  auto* ls = key->add_subcommand("list", "Every valid key: id, role, created, expiry "
                                         "(never the keys themselves)");
  ls->callback([&ctx] { ctx.action = [&ctx] { return list(ctx); }; });

  auto* rv = key->add_subcommand("revoke", "Every key of an identity stops working at once");
  rv->add_option("id", args->id, "The identity")->required();
  rv->callback([&ctx, args] { ctx.action = [&ctx, args] { return revoke(ctx, args->id); }; });

  auto* rot = key->add_subcommand(
    "rotate", "A new key for an identity (same role), printed; the previous keys keep "
              "working for the grace period");
  rot->add_option("id", args->id, "The identity")->required();
  rot->add_option("--grace", args->grace, "Seconds the previous keys keep working (0: none)")
    ->capture_default_str()
    ->check(CLI::Range(0LL, 30LL * 86400));
  rot->callback([&ctx, args] {
    ctx.action = [&ctx, args] { return rotate(ctx, args->id, args->grace); };
  });
}

}  // namespace coapfleet::cli
