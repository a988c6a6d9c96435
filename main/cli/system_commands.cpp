// system status|restart|shutdown, test, discover: the server itself.
#include "main/cli/commands.hpp"
#include "main/cli/link_format.hpp"
#include "main/cli/output.hpp"
#include "model/json_builder.hpp"
#include "model/json_value.hpp"

#include <cstdio>
#include <memory>

namespace coapfleet::cli {

namespace {

using model::json_builder;
using model::json_value;

std::string scalar_text(json_value v) {
  if (v.is_string())
    return v.as_string();
  if (v.is_null())
    return "-";
  return v.to_json();
}

int system_action(context& ctx, const std::string& action) {
  auto body = json_builder().begin_object().member("action", action).end_object().text();
  auto a = ctx.call_raw(client::method::post, "system", "", body);
  if (!a.ok())
    return a.exit;
  if (ctx.options.json) {
    print_raw(a.raw.body);
    return exit_ok;
  }
  auto doc = model::json_document::parse(a.raw.body);
  auto answer = doc.root();
  if (!answer.is_object()) {
    // restart / shutdown may answer with plain text
    print_raw(a.raw.body.empty() ? action + " requested" : a.raw.body);
    return exit_ok;
  }
  if (action != "status") {
    auto message = answer["message"].as_string();
    print_raw(message.empty() ? action + " requested" : message);
    return exit_ok;
  }
  auto term = terminal::detect();
  for (auto m : answer.members()) {
    std::string key(m.name);
    if (key == "action")
      continue;
    std::string value;
    colour c = colour::none;
    if (m.value.is_object()) {
      for (auto inner : m.value.members())
        value += (value.empty() ? "" : "  ") + std::string(inner.name) + "="
                 + scalar_text(inner.value);
    } else {
      value = scalar_text(m.value);
      c = colour_of(value);
    }
    std::printf("%-10s %s\n", key.c_str(), term.paint(c, value).c_str());
  }
  return exit_ok;
}

int test(context& ctx) {
  auto a = ctx.call_raw(client::method::get, "test");
  if (!a.ok())
    return a.exit;
  if (ctx.options.json)
    print_raw(json_builder()
                .begin_object()
                .member("code", a.raw.code_text())
                .member("text", a.raw.body)
                .end_object()
                .text());
  else
    print_raw(a.raw.body);
  return exit_ok;
}

int discover(context& ctx, const std::string& rt) {
  auto a = ctx.call_raw(client::method::get, ".well-known/core", rt.empty() ? "" : "rt=" + rt);
  if (!a.ok())
    return a.exit;
  auto links = parse_link_format(a.raw.body);
  if (ctx.options.json) {
    // link-format is not JSON: the same links as a JSON array (RFC 6690 names)
    json_builder w;
    w.begin_array();
    for (auto& l : links) {
      w.begin_object().member("path", l.target);
      for (auto& [k, v] : l.attributes) {
        if (v.empty() && k == "obs")
          w.member(k, true);
        else
          w.member(k, v);
      }
      w.end_object();
    }
    w.end_array();
    print_raw(w.text());
    return exit_ok;
  }
  if (links.empty()) {
    std::printf("no resources%s\n", rt.empty() ? "" : (" with rt=" + rt).c_str());
    return exit_ok;
  }
  table t({"PATH", "RT", "IF", "CT", "OBS"});
  for (auto& l : links)
    t.add({l.target, l.get("rt"), l.get("if"), l.get("ct"), l.has("obs") ? "yes" : "-"});
  t.print(terminal::detect());
  return exit_ok;
}

}  // namespace

void add_system_commands(CLI::App& app, context& ctx) {
  auto* system = app.add_subcommand("system", "The server process: status, restart, shutdown");
  system->require_subcommand(1);
  for (auto* action : {"status", "restart", "shutdown"}) {
    std::string help = std::string("POST /system {\"action\":\"") + action + "\"}";
    auto* sub = system->add_subcommand(action, help);
    sub->callback([&ctx, action] {
      ctx.action = [&ctx, action] { return system_action(ctx, action); };
    });
  }

  auto* t = app.add_subcommand("test", "GET /test: is the server there?");
  t->callback([&ctx] { ctx.action = [&ctx] { return test(ctx); }; });

  auto* d = app.add_subcommand("discover", "The server's resources (GET /.well-known/core)");
  auto rt = std::make_shared<std::string>();
  d->add_option("--rt", *rt, "Only resources of this resource type (e.g. coapfleet.nodes)");
  d->callback([&ctx, rt] { ctx.action = [&ctx, rt] { return discover(ctx, *rt); }; });
}

}  // namespace coapfleet::cli
