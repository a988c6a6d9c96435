// Encoders of the jobs' and the system's bodies (see json_encode.cpp).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>

#include <iterator>

#include "model/json.hpp"
#include "model/json_write.hpp"
#include "model/campaign.hpp"
#include "model/rules.hpp"

namespace coapfleet::model {

using namespace json_write;

namespace {

void counts(writer& w, const job_counts& c) {
  w.StartObject();
  member(w, "total", c.total);
  for (size_t i = 0; i < std::size(c.by_state); ++i)
    member(w, to_string(static_cast<node_update_state>(i)), c.by_state[i]);
  w.EndObject();
}

/// The members of a job spec, without the surrounding braces.
void spec_members(writer& w, const job_spec& s) {
  member(w, "name", s.name);
  member(w, "version", s.version);
  member(w, "package_type", s.package_type);
  member(w, "target_nodes", s.target_nodes);
  if (!s.target_labels.empty())
    member(w, "target_labels", s.target_labels);
  member(w, "packages", s.packages);
  optional_member(w, "artifact", s.artifact);
  optional_member(w, "target_path", s.target_path);
  optional_member(w, "mode", s.mode);
  optional_member(w, "artifact_sha256", s.artifact_sha256);
  if (s.artifact_size > 0)
    member(w, "artifact_size", s.artifact_size);
  optional_member(w, "script", s.script);
  optional_member(w, "health_check", s.health_check);
  optional_member(w, "description", s.description);
  auto nonzero = [&](const char* name, int32_t v) {
    if (v != 0)
      member(w, name, v);
  };
  nonzero("timeout_seconds", s.timeout_seconds);
  nonzero("node_timeout_seconds", s.node_timeout_seconds);
  if (!s.waves.empty()) {
    key(w, "waves");
    w.StartArray();
    for (auto p : s.waves)
      w.Int(p);
    w.EndArray();
  }
  nonzero("success_threshold", s.success_threshold);
  nonzero("error_threshold", s.error_threshold);
  nonzero("soak_seconds", s.soak_seconds);
  nonzero("max_parallel", s.max_parallel);
  nonzero("retries", s.retries);
  nonzero("retry_backoff_seconds", s.retry_backoff_seconds);
  optional_member(w, "window", s.window);
  if (s.dynamic)
    member(w, "dynamic", true);
  optional_member(w, "signature", s.signature);
}

void job_summary(writer& w, const job_record& j) {
  w.StartObject();
  member(w, "job_id", j.job_id);
  member(w, "name", j.spec.name);
  member(w, "version", j.spec.version);
  member(w, "package_type", j.spec.package_type);
  member(w, "target_nodes", j.spec.target_nodes);
  if (!j.spec.target_labels.empty())
    member(w, "target_labels", j.spec.target_labels);
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
  if (is_campaign(j)) {
    member(w, "wave", j.campaign.wave);
    member(w, "paused", j.campaign.paused);
  }
  w.EndObject();
}

/// Where a job's campaign stands: its waves, thresholds and pause.
void campaign_members(writer& w, const job_record& j) {
  key(w, "campaign");
  w.StartObject();
  auto& s = j.spec;
  auto& c = j.campaign;
  member(w, "wave", c.wave);
  member(w, "paused", c.paused);
  string_or_null(w, "pause_reason", c.pause_reason);
  key(w, "soak_until");
  if (c.soak_until > 0)
    put(w, at{c.soak_until});
  else
    w.Null();
  member(w, "success_threshold", s.success_threshold);
  member(w, "error_threshold", s.error_threshold);
  member(w, "soak_seconds", s.soak_seconds);
  member(w, "max_parallel", s.max_parallel);
  member(w, "retries", s.retries);
  string_or_null(w, "window", s.window);
  member(w, "dynamic", s.dynamic);
  if (s.dynamic)
    member(w, "open", !c.closed);
  key(w, "waves");
  w.StartArray();
  for (auto& wave : summarize_waves(j)) {
    w.StartObject();
    member(w, "index", wave.index);
    member(w, "percent", wave.percent);
    member(w, "nodes", wave.nodes);
    member(w, "started", wave.started);
    member(w, "succeeded", wave.succeeded);
    member(w, "failed", wave.failed);
    member(w, "state", wave.state);
    w.EndObject();
  }
  w.EndArray();
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
  // Small jobs' status fits one datagram (observers with clients that do not
  // reassemble notifications): the campaign's members only for campaigns.
  bool campaign = is_campaign(j);
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
        member(w, "attempt", n.attempt);
        if (campaign)
          member(w, "wave", n.wave);
        if (n.started_at > 0)  // absent: not started (its wave has not come)
          member(w, "started_at", at{n.started_at});
        if (n.retry_at > 0)
          member(w, "retry_at", at{n.retry_at});
        member(w, "updated_at", at{n.updated_at});
        w.EndObject();
      }
      w.EndArray();
      if (campaign)
        campaign_members(w, j);
      member(w, "created_at", at{j.created_at});
      member(w, "updated_at", at{j.updated_at});
      w.EndObject();
    },
    512 + j.nodes.size() * 200);
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
    if (r.attempt > 0)
      member(w, "attempt", r.attempt);
    if (r.inventory_given)
      member(w, "inventory", r.inventory);
    w.EndObject();
  });
}

std::string encode_update_notification(const update_notification& n) {
  return write([&](writer& w) {
    w.StartObject();
    if (n.cancel)
      member(w, "action", "cancel");
    member(w, "job_id", n.job_id);
    member(w, "node_id", n.node_id);
    if (n.attempt > 1)
      member(w, "attempt", n.attempt);
    if (n.cancel && n.force)
      member(w, "force", true);
    if (!n.cancel && !n.name.empty()) {  // hints (the agent fetches the spec)
      member(w, "name", n.name);
      member(w, "version", n.version);
    }
    optional_member(w, "server", n.server);
    w.EndObject();
  });
}

std::string encode_node_job(const update_notification& n) {
  return write([&](writer& w) {
    w.StartObject();
    member(w, "job_id", n.job_id);
    member(w, "node_id", n.node_id);
    if (n.attempt > 1)
      member(w, "attempt", n.attempt);
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
    member(w, "keys", "/keys");
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

std::string encode_campaign_state(const campaign_state& c) {
  return write([&](writer& w) {
    w.StartObject();
    member(w, "wave", c.wave);
    member(w, "paused", c.paused);
    optional_member(w, "pause_reason", c.pause_reason);
    if (c.soak_until > 0)
      member(w, "soak_until", static_cast<uint64_t>(c.soak_until));
    if (c.closed)
      member(w, "closed", true);
    if (c.resumed_at > 0)
      member(w, "resumed_at", static_cast<uint64_t>(c.resumed_at));
    if (c.accepted_wave >= 0)
      member(w, "accepted_wave", c.accepted_wave);
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

}  // namespace coapfleet::model
