// cluster status: the members, their leases and links (GET /cluster).
#include "main/cli/commands.hpp"
#include "main/cli/output.hpp"
#include "model/json_value.hpp"

#include <cstdio>

namespace coapfleet::cli {

namespace {

int cluster_status(context& ctx) {
  auto a = ctx.call_raw(client::method::get, "cluster");
  if (!a.ok())
    return a.exit;
  if (ctx.options.json) {
    print_raw(a.raw.body);
    return exit_ok;
  }
  auto doc = model::json_document::parse(a.raw.body);
  auto c = doc.root();
  if (!c.is_object()) {
    print_raw(a.raw.body);
    return exit_ok;
  }
  auto term = terminal::detect();
  if (!c["clustered"].as_bool()) {
    std::printf("not clustered: one server on its own (start members with --member-id)\n");
    return exit_ok;
  }
  auto state = c["state"].as_string();
  std::printf("member %s  epoch %s  %s  links %s\n", c["member_id"].as_string().c_str(),
              c["epoch"].to_json().c_str(),
              term.paint(state == "active" ? colour::green : colour::red, state).c_str(),
              c["tls"].as_bool() ? "TLS" : "plain TCP");
  table t({"MEMBER", "COAP", "CLUSTER", "EPOCH", "LEASE", "LINK", "HEARTBEAT", "NODES", "JOBS"});
  for (auto m : c["members"].elements()) {
    bool live = m["live"].as_bool();
    std::string link = m["self"].as_bool() ? "self" : m["linked"].as_bool() ? "up" : "down";
    t.add({m["member_id"].as_string(), m["coap"].as_string(), m["cluster"].as_string(),
           m["epoch"].to_json(), term.paint(live ? colour::green : colour::red,
                                            live ? "live" : "lapsed"),
           link, live ? m["heartbeat_age_ms"].to_json() + " ms ago" : "-",
           m["nodes"].to_json(), m["jobs"].to_json()});
  }
  t.print(term);
  return exit_ok;
}

}  // namespace

void add_cluster_commands(CLI::App& app, context& ctx) {
  auto* cluster = app.add_subcommand("cluster", "Clustered main servers");
  cluster->require_subcommand(1);
  auto* status = cluster->add_subcommand(
    "status", "GET /cluster: the members as the server asked sees them, their leases and links");
  status->callback([&ctx] { ctx.action = [&ctx] { return cluster_status(ctx); }; });
}

}  // namespace coapfleet::cli
