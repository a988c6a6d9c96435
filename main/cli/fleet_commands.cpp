// nodes, node <id>, health: the fleet as the server sees it.
#include "main/cli/commands.hpp"
#include "main/cli/json_util.hpp"
#include "main/cli/output.hpp"

#include <cstdio>
#include <iostream>

namespace coapfleet::cli {

namespace {

std::string percent(const rapidjson::Value* health, const char* key) {
  if (!health)
    return "-";
  auto v = num(*health, key);
  if (!v)
    return "-";
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%.1f", *v);
  return buf;
}

std::string address_of(const rapidjson::Value& node) {
  auto ip = str(node, "ip_address");
  if (ip.empty())
    return "-";
  auto port = num(node, "port");
  auto host = ip.find(':') != std::string::npos ? "[" + ip + "]" : ip;
  return port ? host + ":" + std::to_string(static_cast<long long>(*port)) : host;
}

/// "healthy", "unhealthy: <first error>", "unhealthy" or "-" (no report yet).
std::string health_of(const rapidjson::Value* health) {
  if (!health || !health->IsObject())
    return "-";
  auto* ok = member(*health, "overall_healthy");
  if (!ok || !ok->IsBool())
    return "-";
  if (ok->GetBool())
    return "healthy";
  auto errors = strings(*health, "error_messages");
  return errors.empty() ? "unhealthy" : "unhealthy: " + errors.front();
}

int list_nodes(context& ctx, const std::string& status) {
  auto a = ctx.call(client::method::get, "nodes", status.empty() ? "" : "status=" + status);
  if (!a.ok())
    return a.exit;
  if (ctx.options.json) {
    print_raw(a.raw.body);
    return exit_ok;
  }
  auto term = terminal::detect();
  table t({"NODE", "HOST", "ADDRESS", "STATUS", "LAST SEEN", "HEALTH", "CPU%", "MEM%"});
  if (auto* nodes = member(a.doc, "nodes"); nodes && nodes->IsArray())
    for (auto& n : nodes->GetArray()) {
      auto* health = member(n, "health");
      auto state = str(n, "status");
      auto h = health_of(health);
      t.add({str(n, "node_id"), str(n, "hostname"), address_of(n), state,
             relative_time(str(n, "last_seen")), h, percent(health, "cpu_percent"),
             percent(health, "memory_percent")},
            {colour::none, colour::none, colour::none, colour_of(state), colour::none,
             colour_of(h)});
    }
  if (t.empty()) {
    std::printf("no nodes%s\n", status.empty() ? "" : (" with status " + status).c_str());
    return exit_ok;
  }
  t.print(term);
  return exit_ok;
}

void line(const terminal& term, const char* label, const std::string& value,
          colour c = colour::none) {
  std::printf("%-13s %s\n", label, term.paint(c, value.empty() ? "-" : value).c_str());
}

std::string joined(const std::vector<std::string>& items, const char* sep = ", ") {
  std::string out;
  for (auto& i : items)
    out += (out.empty() ? "" : sep) + i;
  return out;
}

int show_node(context& ctx, const std::string& id) {
  auto a = ctx.call(client::method::get, "nodes", "node_id=" + id);
  if (!a.ok())
    return a.exit;
  auto* nodes = member(a.doc, "nodes");
  if (!nodes || !nodes->IsArray() || nodes->Empty()) {
    std::cerr << "coapfleet: 4.04 Not Found: no such node: " << id << "\n";
    return exit_coap_error;
  }
  auto& n = (*nodes)[0];
  if (ctx.options.json) {
    print_raw(to_json(n));
    return exit_ok;
  }
  auto term = terminal::detect();
  auto state = str(n, "status");
  line(term, "Node", str(n, "node_id"), colour::bold);
  line(term, "Hostname", str(n, "hostname"));
  line(term, "Address", address_of(n));
  line(term, "Status", state, colour_of(state));
  auto seen = str(n, "last_seen");
  line(term, "Last seen", seen.empty() ? "" : seen + " (" + relative_time(seen) + ")");
  line(term, "Registered", str(n, "registered_at"));
  line(term, "Services", joined(strings(n, "services")));
  line(term, "Drivers", joined(strings(n, "drivers")));
  if (auto* info = member(n, "system_info"); info && info->IsObject()) {
    std::vector<std::string> parts;
    for (auto& m : info->GetObject())
      parts.push_back(std::string(m.name.GetString()) + "="
                      + (m.value.IsString() ? m.value.GetString() : to_json(m.value)));
    line(term, "System", joined(parts, " "));
  }
  auto* health = member(n, "health");
  auto h = health_of(health);
  auto reported = health ? str(*health, "reported_at") : "";
  line(term, "Health", h + (reported.empty() ? "" : " (reported " + relative_time(reported) + ")"),
       colour_of(h));
  if (health && health->IsObject()) {
    std::string temp = "-";
    if (auto t = num(*health, "temperature")) {
      char buf[16];
      std::snprintf(buf, sizeof(buf), "%.1f °C", *t);
      temp = buf;
    }
    line(term, "  CPU", percent(health, "cpu_percent") + " %");
    line(term, "  Memory", percent(health, "memory_percent") + " %");
    line(term, "  Disk", percent(health, "disk_percent") + " %");
    line(term, "  Temperature", temp);
    if (auto* services = member(*health, "services_status"); services && services->IsObject()) {
      std::vector<std::string> parts;
      for (auto& m : services->GetObject())
        parts.push_back(std::string(m.name.GetString())
                        + (m.value.IsBool() && m.value.GetBool() ? " up" : " DOWN"));
      line(term, "  Services", joined(parts));
    }
    for (auto& e : strings(*health, "error_messages"))
      line(term, "  Error", e, colour::red);
  }
  return exit_ok;
}

int show_health(context& ctx) {
  auto a = ctx.call(client::method::get, "health");
  if (!a.ok())
    return a.exit;
  if (ctx.options.json) {
    print_raw(a.raw.body);
    return exit_ok;
  }
  auto term = terminal::detect();
  auto& d = a.doc;
  auto status = str(d, "status");
  line(term, "Fleet", status + " (at " + str(d, "timestamp") + ")", colour_of(status));
  char buf[256];
  std::snprintf(buf, sizeof(buf), "%lld total: %lld online, %lld stale, %lld offline",
                integer(d, "total_nodes"), integer(d, "online_nodes"), integer(d, "stale_nodes"),
                integer(d, "offline_nodes"));
  line(term, "Nodes", buf);
  std::snprintf(buf, sizeof(buf), "%lld healthy, %lld unhealthy", integer(d, "healthy_nodes"),
                integer(d, "unhealthy_nodes"));
  line(term, "Health", buf);
  if (auto* server = member(d, "server"); server && server->IsObject()) {
    std::vector<std::string> parts;
    if (auto cpu = num(*server, "cpu_percent")) {
      std::snprintf(buf, sizeof(buf), "cpu %.1f %%", *cpu);
      parts.push_back(buf);
    }
    if (auto rss = num(*server, "memory_rss_bytes"))
      parts.push_back("memory " + human_bytes(*rss));
    if (auto db = str(*server, "database"); !db.empty())
      parts.push_back("database " + db);
    if (auto up = num(*server, "uptime_seconds")) {
      std::snprintf(buf, sizeof(buf), "up %.0f s", *up);
      parts.push_back(buf);
    }
    line(term, "Server", joined(parts));
  }
  table t({"UNHEALTHY NODE", "ERRORS"});
  if (auto* bad = member(d, "unhealthy"); bad && bad->IsArray())
    for (auto& u : bad->GetArray()) {
      auto errors = strings(u, "error_messages");
      t.add({str(u, "node_id"), errors.empty() ? "-" : joined(errors, "; ")},
            {colour::none, colour::red});
    }
  if (!t.empty()) {
    std::printf("\n");
    t.print(term);
  }
  return exit_ok;
}

}  // namespace

void add_fleet_commands(CLI::App& app, context& ctx) {
  auto* nodes = app.add_subcommand("nodes", "List the registered nodes");
  auto status = std::make_shared<std::string>();
  nodes->add_option("--status", *status, "Only nodes in this state")
    ->check(CLI::IsMember({"online", "stale", "offline"}));
  nodes->callback([&ctx, status] { ctx.action = [&ctx, status] { return list_nodes(ctx, *status); }; });

  auto* node = app.add_subcommand("node", "Show one node in detail (exit 3 if unknown)");
  auto id = std::make_shared<std::string>();
  node->add_option("id", *id, "The node's id")->required();
  node->callback([&ctx, id] { ctx.action = [&ctx, id] { return show_node(ctx, *id); }; });

  auto* health = app.add_subcommand("health", "The fleet's health summary");
  health->callback([&ctx] { ctx.action = [&ctx] { return show_health(ctx); }; });
}

}  // namespace coapfleet::cli
