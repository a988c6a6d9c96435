// Encoders of the wire API's response bodies: one RapidJSON Writer each, no
// DOM, so that large listings (10,000 nodes) cost one pass over the records.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "model/json.hpp"
#include "model/rules.hpp"

namespace coapfleet::model {

namespace {

using buffer = rapidjson::StringBuffer;
using writer = rapidjson::Writer<buffer>;

/// Writes "YYYY-MM-DDTHH:MM:SSZ" into `out` (32 bytes), returns its length.
size_t format_time_into(millis t, char* out) {
  // Rounded towards minus infinity: -1 ms is still the previous second.
  auto secs = static_cast<time_t>(t >= 0 ? t / 1000 : -((-(t + 1)) / 1000) - 1);
  std::tm tm{};
  size_t n = gmtime_r(&secs, &tm) ? std::strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) : 0;
  if (n == 0) {
    std::strcpy(out, "1970-01-01T00:00:00Z");
    n = 20;
  }
  return n;
}

/// A point in time, written as format_time() text.
struct at {
  millis t;
};

// -- put: one JSON value per C++ type (no int64 overload: times go through `at`)

void put(writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}
void put(writer& w, const char* s) { put(w, std::string_view{s}); }
void put(writer& w, const std::string& s) { put(w, std::string_view{s}); }
void put(writer& w, bool b) { w.Bool(b); }
void put(writer& w, int32_t i) { w.Int(i); }
void put(writer& w, uint32_t u) { w.Uint(u); }
void put(writer& w, uint64_t u) { w.Uint64(u); }

/// Numbers that are absent (NaN) or infinite are written as null.
void put(writer& w, double x) {
  if (std::isfinite(x))
    w.Double(x);
  else
    w.Null();
}

void put(writer& w, at t) {
  char buf[32];
  auto n = format_time_into(t.t, buf);
  w.String(buf, static_cast<rapidjson::SizeType>(n));
}

void put(writer& w, const std::vector<std::string>& v) {
  w.StartArray();
  for (auto& s : v)
    put(w, s);
  w.EndArray();
}

void put(writer& w, const attributes& a) {
  w.StartObject();
  for (auto& [name, x] : a) {
    put(w, name);
    switch (x.kind) {
      case scalar::bool_v: w.Bool(x.flag); break;
      case scalar::number_v: put(w, x.number); break;
      case scalar::string_v: put(w, x.text); break;
      default: w.Null(); break;
    }
  }
  w.EndObject();
}

void key(writer& w, const char* k) {
  w.Key(k, static_cast<rapidjson::SizeType>(std::strlen(k)));
}

template <class V>
void member(writer& w, const char* k, const V& v) {
  key(w, k);
  put(w, v);
}

/// `"k": "s"`, or `"k": null` when s is empty.
void string_or_null(writer& w, const char* k, std::string_view s) {
  key(w, k);
  if (s.empty())
    w.Null();
  else
    put(w, s);
}

/// `"k": "s"` when s is not empty, else nothing.
void optional_member(writer& w, const char* k, std::string_view s) {
  if (!s.empty())
    member(w, k, s);
}

/// Runs `f(writer&)` and returns the text it wrote.
template <class F>
std::string write(F&& f, size_t reserve = 256) {
  buffer b{nullptr, reserve};
  writer w{b};
  f(w);
  return {b.GetString(), b.GetSize()};
}

void counts(writer& w, const job_counts& c) {
  w.StartObject();
  member(w, "total", c.total);
  for (int i = 0; i < 10; ++i)
    member(w, to_string(static_cast<node_update_state>(i)), c.by_state[i]);
  w.EndObject();
}

/// The members of a job spec, without the surrounding braces.
void spec_members(writer& w, const job_spec& s) {
  member(w, "name", s.name);
  member(w, "version", s.version);
  member(w, "package_type", s.package_type);
  member(w, "target_nodes", s.target_nodes);
  member(w, "packages", s.packages);
  optional_member(w, "artifact", s.artifact);
  optional_member(w, "target_path", s.target_path);
  optional_member(w, "mode", s.mode);
  optional_member(w, "artifact_sha256", s.artifact_sha256);
  if (s.artifact_size > 0)
    member(w, "artifact_size", s.artifact_size);
  optional_member(w, "script", s.script);
  optional_member(w, "description", s.description);
  if (s.timeout_seconds != 0)
    member(w, "timeout_seconds", s.timeout_seconds);
}

void node(writer& w, const node_record& n) {
  w.StartObject();
  member(w, "node_id", n.reg.node_id);
  member(w, "hostname", n.reg.hostname);
  member(w, "ip_address", n.reg.ip_address);
  member(w, "port", uint32_t{n.reg.port});
  member(w, "status", to_string(n.status));
  member(w, "last_seen", at{n.last_seen});
  member(w, "registered_at", at{n.registered_at});
  member(w, "services", n.reg.services);
  member(w, "drivers", n.reg.drivers);
  member(w, "system_info", n.reg.system_info);
  key(w, "health");
  if (n.has_health) {
    auto& h = n.health;
    w.StartObject();
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
    member(w, "reported_at", at{n.health_at});
    w.EndObject();
  } else {
    w.Null();
  }
  w.EndObject();
}

void job_summary(writer& w, const job_record& j) {
  w.StartObject();
  member(w, "job_id", j.job_id);
  member(w, "name", j.spec.name);
  member(w, "version", j.spec.version);
  member(w, "package_type", j.spec.package_type);
  member(w, "target_nodes", j.spec.target_nodes);
  member(w, "packages", j.spec.packages);
  optional_member(w, "artifact", j.spec.artifact);
  optional_member(w, "target_path", j.spec.target_path);
  optional_member(w, "script", j.spec.script);
  member(w, "status", to_string(j.status));
  member(w, "created_at", at{j.created_at});
  member(w, "updated_at", at{j.updated_at});
  key(w, "counts");
  counts(w, count_states(j.nodes));
  member(w, "progress", int32_t{job_progress(j.nodes)});
  w.EndObject();
}

/// "HH:MM:SS", with "Nd " in front once the server has run a day.
std::string uptime_human(double seconds) {
  auto s = std::isfinite(seconds) && seconds > 0 ? static_cast<unsigned long long>(seconds) : 0ULL;
  char buf[64];
  if (s >= 86400)
    std::snprintf(buf, sizeof buf, "%llud %02llu:%02llu:%02llu", s / 86400, s / 3600 % 24,
                  s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%02llu:%02llu:%02llu", s / 3600, s / 60 % 60, s % 60);
  return buf;
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
    w.EndObject();
  });
}

std::string encode_node(const node_record& n) {
  return write([&](writer& w) { node(w, n); }, 512);
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

std::string encode_job_created(const job_record& j) {
  return write([&](writer& w) {
    w.StartObject();
    member(w, "job_id", j.job_id);
    member(w, "status", "created");
    member(w, "message", "Update request created successfully");
    w.EndObject();
  });
}

std::string encode_job_triggered(const job_record& j) {
  return write([&](writer& w) {
    w.StartObject();
    member(w, "success", true);
    member(w, "message", "Update job " + j.job_id + " triggered successfully");
    member(w, "job_id", j.job_id);
    member(w, "status", to_string(j.status));
    // Counts, not the node list: this answer travels as a separate response,
    // which must fit one datagram for coap-client 4.3.1 to read it.
    auto c = count_states(j.nodes);
    member(w, "targets", c.total);
    member(w, "skipped", c.of(node_update_state::skipped));
    w.EndObject();
  });
}

std::string encode_job_status(const job_record& j) {
  return write(
    [&](writer& w) {
      w.StartObject();
      member(w, "job_id", j.job_id);
      member(w, "name", j.spec.name);
      member(w, "version", j.spec.version);
      member(w, "package_type", j.spec.package_type);
      member(w, "status", to_string(j.status));
      key(w, "node_statuses");
      w.StartObject();
      for (auto& n : j.nodes) {
        put(w, n.node_id);
        put(w, to_string(n.state));
      }
      w.EndObject();
      string_or_null(w, "error_message", j.error_message);
      key(w, "counts");
      counts(w, count_states(j.nodes));
      member(w, "progress", int32_t{job_progress(j.nodes)});
      key(w, "nodes");
      w.StartArray();
      for (auto& n : j.nodes) {
        w.StartObject();
        member(w, "node_id", n.node_id);
        member(w, "status", to_string(n.state));
        key(w, "progress");
        if (n.progress < 0)
          w.Null();
        else
          w.Int(n.progress);
        member(w, "result", n.result);
        string_or_null(w, "error_message", n.error_message);
        member(w, "updated_at", at{n.updated_at});
        w.EndObject();
      }
      w.EndArray();
      member(w, "created_at", at{j.created_at});
      member(w, "updated_at", at{j.updated_at});
      w.EndObject();
    },
    256 + j.nodes.size() * 160);
}

std::string encode_job_summary(const job_record& j) {
  return write([&](writer& w) { job_summary(w, j); });
}

std::string encode_jobs(const std::vector<job_record>& jobs) {
  return write(
    [&](writer& w) {
      w.StartObject();
      key(w, "updates");
      w.StartArray();
      for (auto& j : jobs)
        job_summary(w, j);
      w.EndArray();
      w.EndObject();
    },
    64 + jobs.size() * 512);
}

std::string encode_update_report(const update_report& r) {
  return write([&](writer& w) {
    w.StartObject();
    member(w, "action", "report");
    member(w, "job_id", r.job_id);
    member(w, "node_id", r.node_id);
    member(w, "status", to_string(r.state));
    if (r.progress >= 0)
      member(w, "progress", r.progress);
    if (r.result >= 0)
      member(w, "result", r.result);
    optional_member(w, "error_message", r.error_message);
    w.EndObject();
  });
}

std::string encode_update_notification(const update_notification& n) {
  return write([&](writer& w) {
    w.StartObject();
    member(w, "job_id", n.job_id);
    member(w, "node_id", n.node_id);
    spec_members(w, n.spec);
    optional_member(w, "server", n.server);
    w.EndObject();
  });
}

std::string encode_system_info(const system_info& s) {
  return write([&](writer& w) {
    w.StartObject();
    member(w, "status", "running");
    member(w, "timestamp", at{s.timestamp});
    member(w, "uptime", s.uptime_seconds);
    member(w, "uptime_human", uptime_human(s.uptime_seconds));
    member(w, "version", s.version);
    key(w, "endpoints");
    w.StartObject();
    member(w, "health", "/health");
    member(w, "nodes", "/nodes");
    member(w, "updates", "/updates");
    member(w, "system", "/system");
    member(w, "test", "/test");
    member(w, "artifacts", "/artifacts");
    member(w, "discovery", "/.well-known/core");
    w.EndObject();
    member(w, "available_actions", s.available_actions);
    w.EndObject();
  });
}

std::string encode_system_status(const system_status& s) {
  return write([&](writer& w) {
    w.StartObject();
    member(w, "status", "running");
    member(w, "timestamp", at{s.timestamp});
    key(w, "services");
    w.StartObject();
    member(w, "main_server", "running");
    member(w, "database", s.database);
    w.EndObject();
    member(w, "action", "status");
    member(w, "uptime", s.uptime_seconds);
    member(w, "nodes", s.nodes);
    member(w, "jobs", s.jobs);
    w.EndObject();
  });
}

std::string encode_job_spec(const job_spec& s) {
  return write([&](writer& w) {
    w.StartObject();
    spec_members(w, s);
    w.EndObject();
  });
}

std::string encode_attributes(const attributes& a) {
  return write([&](writer& w) { put(w, a); });
}

std::string encode_strings(const std::vector<std::string>& v) {
  return write([&](writer& w) { put(w, v); });
}

}  // namespace coapfleet::model
