// nodes, node <id>, health: the fleet as the server sees it.
#include "main/cli/commands.hpp"
#include "model/targets.hpp"
#include "main/cli/output.hpp"
#include "main/cli/time_text.hpp"
#include "model/json_value.hpp"

#include <cstdio>
#include <iostream>

namespace coapfleet::cli {

namespace {

using model::json_value;

std::string percent(json_value health, const char* key) {
  auto v = health[key];
  if (!v.is_number())
    return "-";
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%.1f", v.as_number());
  return buf;
}

std::string address_of(json_value node) {
  auto ip = node["ip_address"].as_string();
  if (ip.empty())
    return "-";
  auto port = node["port"];
  auto host = ip.find(':') != std::string::npos ? "[" + ip + "]" : ip;
  return port.is_number() ? host + ":" + std::to_string(port.as_int()) : host;
}

/// "healthy", "unhealthy: <first error>", "unhealthy" or "-" (no report yet).
std::string health_of(json_value health) {
  auto ok = health["overall_healthy"];
  if (!ok.is_bool())
    return "-";
  if (ok.as_bool())
    return "healthy";
  auto errors = health["error_messages"].as_strings();
  return errors.empty() ? "unhealthy" : "unhealthy: " + errors.front();
}

/// Which nodes `coapfleet nodes` lists ("" each: every node).
struct node_filter {
  std::string status;  ///< online | stale | offline
  std::string health;  ///< healthy | unhealthy
};

/// The fleet's listing, read in pages of `page` nodes (GET /nodes?limit=&after=,
/// following `next`): a large fleet is never one answer. `each` gets every
/// node in id order; false when a request failed (its exit code in `exit`).
template <class Each>
bool read_nodes(context& ctx, const node_filter& filter, int& exit, Each&& each) {
  constexpr const char* page = "1000";
  std::string after;
  for (;;) {
    std::string query = std::string("limit=") + page;
    if (!filter.status.empty())
      query += "&status=" + filter.status;
    if (!filter.health.empty())
      query += "&health=" + filter.health;
    if (!after.empty())
      query += "&after=" + after;
    auto a = ctx.call(client::method::get, "nodes", query);
    if (!a.ok()) {
      exit = a.exit;
      return false;
    }
    for (json_value n : a.json()["nodes"].elements())
      each(n);
    auto next = a.json()["next"];
    if (!next.is_string() || next.as_string().empty() || next.as_string() == after)
      return true;
    after = next.as_string();
  }
}

int list_nodes(context& ctx, const node_filter& filter) {
  int exit = exit_ok;
  if (ctx.options.json) {
    // {"nodes":[...]} as GET /nodes has it, written as the pages come.
    std::string out = "{\"nodes\":[";
    bool first = true;
    bool ok = read_nodes(ctx, filter, exit, [&](json_value n) {
      out += first ? "" : ",";
      out += n.to_json();
      first = false;
    });
    if (!ok)
      return exit;
    print_raw(out + "]}");
    return exit_ok;
  }
  auto term = terminal::detect();
  table t({"NODE", "HOST", "ADDRESS", "STATUS", "LAST SEEN", "HEALTH", "CPU%", "MEM%"});
  bool ok = read_nodes(ctx, filter, exit, [&](json_value n) {
    auto health = n["health"];
    auto state = n["status"].as_string();
    auto h = health_of(health);
    t.add({n["node_id"].as_string(), n["hostname"].as_string(), address_of(n), state,
           relative_time(n["last_seen"].as_string()), h, percent(health, "cpu_percent"),
           percent(health, "memory_percent")},
          {colour::none, colour::none, colour::none, colour_of(state), colour::none,
           colour_of(h)});
  });
  if (!ok)
    return exit;
  if (t.empty()) {
    std::string which;
    if (!filter.status.empty())
      which += " with status " + filter.status;
    if (!filter.health.empty())
      which += (which.empty() ? " " : " and ") + filter.health;
    std::printf("no nodes%s\n", which.c_str());
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
  auto nodes = a.json()["nodes"];
  if (!nodes.is_array() || nodes.empty()) {
    std::cerr << "coapfleet: 4.04 Not Found: no such node: " << id << "\n";
    return exit_coap_error;
  }
  auto n = nodes.at(0);
  if (ctx.options.json) {
    print_raw(n.to_json());
    return exit_ok;
  }
  auto term = terminal::detect();
  auto state = n["status"].as_string();
  line(term, "Node", n["node_id"].as_string(), colour::bold);
  line(term, "Hostname", n["hostname"].as_string());
  line(term, "Address", address_of(n));
  line(term, "Status", state, colour_of(state));
  auto seen = n["last_seen"].as_string();
  line(term, "Last seen", seen.empty() ? "" : seen + " (" + relative_time(seen) + ")");
  line(term, "Registered", n["registered_at"].as_string());
  line(term, "Services", joined(n["services"].as_strings()));
  line(term, "Drivers", joined(n["drivers"].as_strings()));
  if (auto info = n["system_info"]; info.is_object()) {
    std::vector<std::string> parts;
    for (auto m : info.members())
      parts.push_back(std::string(m.name) + "="
                      + (m.value.is_string() ? m.value.as_string() : m.value.to_json()));
    line(term, "System", joined(parts, " "));
  }
  for (auto [title, field] : {std::pair{"Labels", "labels"}, std::pair{"Inventory", "inventory"}}) {
    std::vector<std::string> parts;
    if (auto m = n[field]; m.is_object())
      for (auto e : m.members())
        parts.push_back(std::string(e.name) + "=" + e.value.as_string());
    line(term, title, parts.empty() ? "-" : joined(parts, " "));
  }
  auto health = n["health"];
  auto h = health_of(health);
  auto reported = health["reported_at"].as_string();
  line(term, "Health", h + (reported.empty() ? "" : " (reported " + relative_time(reported) + ")"),
       colour_of(h));
  if (health.is_object()) {
    std::string temp = "-";
    if (auto t = health["temperature"]; t.is_number()) {
      char buf[16];
      std::snprintf(buf, sizeof(buf), "%.1f °C", t.as_number());
      temp = buf;
    }
    line(term, "  CPU", percent(health, "cpu_percent") + " %");
    line(term, "  Memory", percent(health, "memory_percent") + " %");
    line(term, "  Disk", percent(health, "disk_percent") + " %");
    line(term, "  Temperature", temp);
    if (auto services = health["services_status"]; services.is_object()) {
      std::vector<std::string> parts;
      for (auto m : services.members())
        parts.push_back(std::string(m.name) + (m.value.as_bool() ? " up" : " DOWN"));
      line(term, "  Services", joined(parts));
    }
    for (auto& e : health["error_messages"].as_strings())
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
  auto d = a.json();
  auto status = d["status"].as_string();
  line(term, "Fleet", status + " (at " + d["timestamp"].as_string() + ")", colour_of(status));
  char buf[256];
  std::snprintf(buf, sizeof(buf), "%lld total: %lld online, %lld stale, %lld offline",
                d["total_nodes"].as_int(), d["online_nodes"].as_int(), d["stale_nodes"].as_int(),
                d["offline_nodes"].as_int());
  line(term, "Nodes", buf);
  std::snprintf(buf, sizeof(buf), "%lld healthy, %lld unhealthy", d["healthy_nodes"].as_int(),
                d["unhealthy_nodes"].as_int());
  line(term, "Health", buf);
  if (auto server = d["server"]; server.is_object()) {
    std::vector<std::string> parts;
    if (auto cpu = server["cpu_percent"]; cpu.is_number()) {
      std::snprintf(buf, sizeof(buf), "cpu %.1f %%", cpu.as_number());
      parts.push_back(buf);
    }
    if (auto rss = server["memory_rss_bytes"]; rss.is_number())
      parts.push_back("memory " + human_bytes(rss.as_number()));
    if (auto db = server["database"].as_string(); !db.empty())
      parts.push_back("database " + db);
    if (auto up = server["uptime_seconds"]; up.is_number()) {
      std::snprintf(buf, sizeof(buf), "up %.0f s", up.as_number());
      parts.push_back(buf);
    }
    line(term, "Server", joined(parts));
  }
  table t({"UNHEALTHY NODE", "ERRORS"});
  for (json_value u : d["unhealthy"].elements()) {
    auto errors = u["error_messages"].as_strings();
    t.add({u["node_id"].as_string(), errors.empty() ? "-" : joined(errors, "; ")},
          {colour::none, colour::red});
  }
  if (!t.empty()) {
    std::printf("\n");
    t.print(term);
  }
  if (auto more = d["unhealthy_more"]; more.is_number() && more.as_int() > 0)
    std::printf("... and %lld more unhealthy nodes: coapfleet nodes --health unhealthy\n",
                static_cast<long long>(more.as_int()));
  return exit_ok;
}

}  // namespace

void add_fleet_commands(CLI::App& app, context& ctx) {
  auto* nodes = app.add_subcommand("nodes", "List the registered nodes");
  auto filter = std::make_shared<node_filter>();
  nodes->add_option("--status", filter->status, "Only nodes in this state")
    ->check(CLI::IsMember({"online", "stale", "offline"}));
  nodes->add_option("--health", filter->health,
                    "Only nodes whose latest report says this (a node that never reported "
                    "is neither)")
    ->check(CLI::IsMember({"healthy", "unhealthy"}));
  nodes->callback([&ctx, filter] {
    ctx.action = [&ctx, filter] { return list_nodes(ctx, *filter); };
  });

  // `node ID` shows a node; `node delete ID` and `node history ID` are
  // node_admin_commands.cpp's (words, not subcommands: a node id is free text).
  auto* node = app.add_subcommand(
    "node", "node ID: one node in detail (exit 3 if unknown); node delete ID: decommission; "
            "node history ID: its states in every job; node label ID KEY=VALUE... (KEY= "
            "removes a label)");
  auto words = std::make_shared<std::vector<std::string>>();
  auto limit = std::make_shared<long long>(50);
  node->add_option("words", *words, "ID, or delete ID, or history ID, or label ID KEY=VALUE...")
    ->required()
    ->expected(1, 1 + static_cast<int>(model::max_labels) + 1);
  node->add_option("--limit", *limit, "node history: entries to show")
    ->capture_default_str()
    ->check(CLI::Range(1LL, 100000LL));
  node->callback([&ctx, words, limit] {
    auto& w = *words;
    if (w.size() == 1) {
      ctx.action = [&ctx, words] { return show_node(ctx, words->front()); };
      return;
    }
    if (w[0] == "label") {
      if (w.size() < 3)
        throw CLI::ValidationError("node", "node label ID KEY=VALUE... (KEY= removes a label)");
      ctx.action = [&ctx, words] {
        return label_node(ctx, (*words)[1], {words->begin() + 2, words->end()});
      };
      return;
    }
    if (w.size() != 2 || (w[0] != "delete" && w[0] != "history"))
      throw CLI::ValidationError("node", "expected ID, delete ID, history ID or label ID KEY=VALUE");
    ctx.action = [&ctx, words, limit] {
      return (*words)[0] == "delete" ? delete_node(ctx, (*words)[1])
                                     : node_history(ctx, (*words)[1], *limit);
    };
  });

  auto* health = app.add_subcommand("health", "The fleet's health summary");
  health->callback([&ctx] { ctx.action = [&ctx] { return show_health(ctx); }; });
}

}  // namespace coapfleet::cli
