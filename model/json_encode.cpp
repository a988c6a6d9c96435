// Encoders of the wire API's response bodies: one RapidJSON Writer each, no
// DOM, so that large listings (10,000 nodes) cost one pass over the records.
// This file: errors, health, nodes and the fleet; jobs and the system are in
// json_encode_jobs.cpp.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>

#include "model/json.hpp"
#include "model/json_write.hpp"
#include "model/rules.hpp"

namespace coapfleet::model {

using namespace json_write;

namespace {

/// The members of a health report (PUT /health's shape) without braces; the
/// node's id left out where the enclosing object names the node.
void health_members(writer& w, const health_report& h, bool with_node_id = true) {
  if (with_node_id)
    member(w, "node_id", h.node_id);
  string_or_null(w, "timestamp", h.timestamp);
  member(w, "overall_healthy", h.overall_healthy);
  member(w, "cpu_percent", h.cpu_percent);
  member(w, "memory_percent", h.memory_percent);
  member(w, "disk_percent", h.disk_percent);
  member(w, "temperature", h.temperature);
  member(w, "uptime_seconds", h.uptime_seconds);
  key(w, "services_status");
  w.StartObject();
  for (auto& [name, up] : h.services_status) {
    put(w, name);
    put(w, up);
  }
  w.EndObject();
  member(w, "error_messages", h.error_messages);
}

void node(writer& w, const node_record& n) {
  w.StartObject();
  member(w, "node_id", n.reg.node_id);
  member(w, "hostname", n.reg.hostname);
  member(w, "ip_address", n.reg.ip_address);
  optional_member(w, "reported_ip_address", n.reg.reported_ip_address);
  member(w, "port", uint32_t{n.reg.port});
  member(w, "status", to_string(n.status));
  member(w, "last_seen", at{n.last_seen});
  member(w, "registered_at", at{n.registered_at});
  member(w, "services", n.reg.services);
  member(w, "drivers", n.reg.drivers);
  member(w, "system_info", n.reg.system_info);
  member(w, "labels", n.reg.labels);
  member(w, "inventory", n.reg.inventory);
  key(w, "health");
  if (n.has_health) {
    w.StartObject();
    health_members(w, n.health, false);
    member(w, "reported_at", at{n.health_at});
    w.EndObject();
  } else {
    w.Null();
  }
  w.EndObject();
}

}  // namespace

std::string format_time(millis t) {
  char buf[32];
  auto n = format_time_into(t, buf);
  return {buf, n};
}

std::string encode_problem(const problem& p) {
  return write([&](writer& w) {
    w.StartObject();
    member(w, "error", p.error);
    optional_member(w, "field", p.field);
    w.EndObject();
  });
}

std::string encode_error(std::string_view error,
                         const std::vector<std::pair<std::string, std::string>>& extra) {
  return write([&](writer& w) {
    w.StartObject();
    member(w, "error", error);
    for (auto& [name, value] : extra) {
      put(w, name);
      put(w, value);
    }
    w.EndObject();
  });
}

std::string encode_health_report(const health_report& h) {
  return write([&](writer& w) {
    w.StartObject();
    health_members(w, h);
    w.EndObject();
  });
}

std::string encode_node_health(const node_record& n) {
  return write([&](writer& w) {
    w.StartObject();
    if (n.has_health) {
      health_members(w, n.health);
      member(w, "received_at", at{n.health_at});
    } else {
      member(w, "node_id", n.reg.node_id);
      key(w, "received_at");
      w.Null();
    }
    member(w, "node_status", to_string(n.status));
    w.EndObject();
  });
}

std::string encode_node_registration(const node_registration& r) {
  return write([&](writer& w) {
    w.StartObject();
    member(w, "node_id", r.node_id);
    member(w, "hostname", r.hostname);
    member(w, "ip_address", r.ip_address);
    member(w, "port", uint32_t{r.port});
    member(w, "services", r.services);
    member(w, "drivers", r.drivers);
    member(w, "system_info", r.system_info);
    optional_member(w, "status", r.reported_status);
    if (!r.labels.empty())
      member(w, "labels", r.labels);
    if (r.inventory_given)
      member(w, "inventory", r.inventory);
    w.EndObject();
  });
}

std::string encode_node(const node_record& n) {
  return write([&](writer& w) { node(w, n); }, 512);
}

std::string encode_node_changes(uint64_t from, uint64_t to, bool reset,
                                std::string_view nodes_array) {
  std::string out = "{\"from\":" + std::to_string(from) + ",\"to\":" + std::to_string(to)
                    + ",\"reset\":" + (reset ? "true" : "false") + ",\"nodes\":";
  out.append(nodes_array.data(), nodes_array.size());
  out += '}';
  return out;
}

std::string encode_nodes(const std::vector<node_record>& nodes) {
  return write(
    [&](writer& w) {
      w.StartObject();
      key(w, "nodes");
      w.StartArray();
      for (auto& n : nodes)
        node(w, n);
      w.EndArray();
      w.EndObject();
    },
    64 + nodes.size() * 512);
}

std::string encode_fleet_health(const fleet_health& h) {
  return write([&](writer& w) {
    w.StartObject();
    member(w, "status", h.status);
    member(w, "timestamp", at{h.timestamp});
    member(w, "total_nodes", h.total_nodes);
    member(w, "online_nodes", h.online_nodes);
    member(w, "stale_nodes", h.stale_nodes);
    member(w, "healthy_nodes", h.healthy_nodes);
    member(w, "unhealthy_nodes", h.unhealthy_nodes);
    member(w, "offline_nodes", h.offline_nodes);
    key(w, "unhealthy");
    w.StartArray();
    for (auto& u : h.unhealthy) {
      w.StartObject();
      member(w, "node_id", u.node_id);
      member(w, "error_messages", u.error_messages);
      w.EndObject();
    }
    w.EndArray();
    if (h.unhealthy_more > 0) {
      member(w, "unhealthy_more", h.unhealthy_more);
      member(w, "unhealthy_listing", "/nodes?health=unhealthy");
    }
    key(w, "server");
    w.StartObject();
    member(w, "cpu_percent", h.server.cpu_percent);
    member(w, "memory_rss_bytes", h.server.rss_bytes);
    member(w, "database", h.server.database);
    member(w, "uptime_seconds", h.server.uptime_seconds);
    w.EndObject();
    w.EndObject();
  });
}

std::string encode_attributes(const attributes& a) {
  return write([&](writer& w) { put(w, a); });
}

std::string encode_strings(const std::vector<std::string>& v) {
  return write([&](writer& w) { put(w, v); });
}

std::string encode_string_map(const string_map& m) {
  return write([&](writer& w) { put(w, m); });
}

std::string encode_node_labels(const std::string& node_id, const string_map& labels) {
  return write([&](writer& w) {
    w.StartObject();
    member(w, "message", "Labels updated");
    member(w, "node_id", node_id);
    member(w, "labels", labels);
    w.EndObject();
  });
}

std::string encode_deleted_job(const std::string& job_id) {
  return write([&](writer& w) {
    w.StartObject();
    member(w, "job_id", job_id);
    member(w, "deleted", true);
    w.EndObject();
  });
}

}  // namespace coapfleet::model
