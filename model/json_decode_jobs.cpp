// Decoders of the jobs', updates' and the system's request bodies (see
// json_decode.cpp).
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <string_view>

#include "model/json.hpp"
#include "model/json_read.hpp"
#include "model/targets.hpp"

namespace coapfleet::model {

using namespace json_read;

namespace {

/// Retries of one node in one job: far more than any policy asks for.
constexpr int64_t max_attempt = 1000000;

void read_spec(reader& r, job_spec& s, bool core, bool server_fields) {
  if (core) {
    r.required_string("name", s.name);
    r.required_string("version", s.version);
    r.required_string("package_type", s.package_type);
  } else {
    r.optional_string("name", s.name);
    r.optional_string("version", s.version);
    r.optional_string("package_type", s.package_type);
  }
  r.optional_strings("target_nodes", s.target_nodes);
  r.optional_string_map("target_labels", s.target_labels, valid_target_key,
                        "a label key, system_info.arch, system_info.os or inventory.<name>",
                        valid_label_text, label_value_rule, max_labels);
  r.optional_strings("packages", s.packages);
  r.optional_string("artifact", s.artifact);
  r.optional_string("target_path", s.target_path);
  r.optional_string("mode", s.mode);
  // An operator may pin the artifact's SHA-256 (a signed job covers it);
  // the server sets it from its store and refuses a job whose pin differs.
  r.optional_string("artifact_sha256", s.artifact_sha256);
  if (server_fields)  // set by the server, never taken from an operator's request
    r.optional_int("artifact_size", s.artifact_size, 0, INT32_MAX);
  r.optional_string("script", s.script);
  r.optional_string("health_check", s.health_check);
  r.optional_string("description", s.description);
  r.optional_int("timeout_seconds", s.timeout_seconds, core ? 1 : 0, 86400);
  r.optional_int("node_timeout_seconds", s.node_timeout_seconds, core ? 1 : 0, 30 * 86400);
  r.optional_ints("waves", s.waves, 1, 100, 100);
  r.optional_int("success_threshold", s.success_threshold, 0, 100);
  r.optional_int("error_threshold", s.error_threshold, 0, 100);
  r.optional_int("soak_seconds", s.soak_seconds, 0, 30 * 86400);
  r.optional_int("max_parallel", s.max_parallel, 0, 1000000);
  r.optional_int("retries", s.retries, 0, 100);
  r.optional_int("retry_backoff_seconds", s.retry_backoff_seconds, 0, 86400);
  r.optional_string("window", s.window);
  r.optional_bool("dynamic", s.dynamic);
  r.optional_string("signature", s.signature);
}

}  // namespace

decoded<updates_request> decode_updates_request(std::string_view body) {
  Document doc;
  decoded<updates_request> d;
  if (!parse_object(body, doc, d.err))
    return d;
  reader r{doc};
  auto& q = d.value;
  std::string action = "create";
  r.optional_string("action", action);
  if (!r.ok()) {
    d.err = r.err;
    return d;
  }
  if (action == "create") {
    q.action = updates_action::create;
    read_spec(r, q.spec, true, false);
    // No target_nodes: every node, or with target_labels the matching ones.
    if (r.ok() && q.spec.target_nodes.empty() && q.spec.target_labels.empty()
        && r.present("target_nodes") == nullptr)
      q.spec.target_nodes = {"all"};
    if (r.ok())
      r.err = validate_job_spec(q.spec);
  } else if (action == "install" || action == "status" || action == "cancel"
             || action == "delete" || action == "retry" || action == "pause"
             || action == "resume" || action == "close") {
    q.action = action == "install"  ? updates_action::install
               : action == "status" ? updates_action::status
               : action == "cancel" ? updates_action::cancel
               : action == "retry"  ? updates_action::retry
               : action == "pause"  ? updates_action::pause
               : action == "resume" ? updates_action::resume
               : action == "close"  ? updates_action::close
                                    : updates_action::remove;
    r.required_nonempty("job_id", q.job_id);
    if (q.action == updates_action::cancel)
      r.optional_bool("force", q.force);
  } else if (action == "report") {
    q.action = updates_action::report;
    auto& rep = q.report;
    r.required_nonempty("job_id", rep.job_id);
    r.required_node_id(rep.node_id);
    std::string status;
    r.required_string("status", status);
    if (r.ok() && !from_string(status, rep.state))
      r.fail("field status must be one of pending, notified, downloading, downloaded, "
             "installing, succeeded, failed, timed_out, cancelled, skipped, rolled_back",
             "status");
    r.optional_int("progress", rep.progress, 0, 100);
    r.optional_int("result", rep.result, 0, 10);
    r.optional_string("error_message", rep.error_message);
    r.optional_int("attempt", rep.attempt, 1, max_attempt);
    rep.inventory_given = r.optional_string_map("inventory", rep.inventory, valid_inventory_name,
                                                inventory_name_rule, valid_version,
                                                version_rule, max_inventory);
  } else {
    r.fail("unknown action: " + action
             + " (expected create, install, status, report, pause, resume, cancel, retry, close, delete)",
           "action");
  }
  d.err = r.err;
  return d;
}

const char* to_string(system_action a) {
  switch (a) {
    case system_action::status: return "status";
    case system_action::restart: return "restart";
    case system_action::shutdown: return "shutdown";
  }
  return "unknown";
}

decoded<system_action> decode_system_request(std::string_view body) {
  Document doc;
  decoded<system_action> d;
  if (!parse_object(body, doc, d.err))
    return d;
  reader r{doc};
  std::string action;
  r.required_string("action", action);
  if (r.ok()) {
    if (action == "status")
      d.value = system_action::status;
    else if (action == "restart")
      d.value = system_action::restart;
    else if (action == "shutdown")
      d.value = system_action::shutdown;
    else
      r.fail("unknown action: " + action + " (expected status, restart, shutdown)", "action");
  }
  d.err = r.err;
  return d;
}

decoded<update_notification> decode_update_notification(std::string_view body) {
  Document doc;
  decoded<update_notification> d;
  if (!parse_object(body, doc, d.err))
    return d;
  reader r{doc};
  auto& n = d.value;
  // The ids only: whatever else a body says (a whole spec, as notifications
  // once carried) is never read; the agent fetches the spec from its server.
  std::string action = "install";
  r.optional_string("action", action);
  if (r.ok() && action != "install" && action != "cancel")
    r.fail("unknown action: " + action + " (expected install, cancel)", "action");
  n.cancel = action == "cancel";
  r.required_nonempty("job_id", n.job_id);
  r.required_node_id(n.node_id);
  r.optional_int("attempt", n.attempt, 1, max_attempt);
  r.optional_bool("force", n.force);
  r.optional_string("server", n.server);
  // Hints of what the job installs (a simulated node reports them in its
  // inventory); an agent runs only the spec it fetches.
  r.optional_string("name", n.name);
  r.optional_string("version", n.version);
  if (r.ok() && !valid_node_id(n.job_id))  // it becomes a URI path segment
    r.fail("field job_id must be 1..64 characters of A-Z a-z 0-9 . _ -", "job_id");
  d.err = r.err;
  return d;
}

decoded<update_notification> decode_node_job(std::string_view body) {
  Document doc;
  decoded<update_notification> d;
  if (!parse_object(body, doc, d.err))
    return d;
  reader r{doc};
  auto& n = d.value;
  r.required_nonempty("job_id", n.job_id);
  r.required_node_id(n.node_id);
  r.optional_int("attempt", n.attempt, 1, max_attempt);
  read_spec(r, n.spec, true, true);
  r.optional_string("server", n.server);
  if (r.ok()) {
    // The targets concern the server; an agent gets none or the server's own.
    auto spec = n.spec;
    if (spec.target_nodes.empty())
      spec.target_nodes = {"all"};
    r.err = validate_job_spec(spec);
  }
  d.err = r.err;
  return d;
}

decoded<campaign_state> decode_campaign_state(std::string_view json) {
  Document doc;
  decoded<campaign_state> d;
  if (!parse_object(json, doc, d.err))
    return d;
  reader r{doc};
  auto& c = d.value;
  r.optional_int("wave", c.wave, 0, 100);
  r.optional_bool("paused", c.paused);
  r.optional_string("pause_reason", c.pause_reason);
  r.optional_int("soak_until", c.soak_until, 0, INT64_MAX);
  r.optional_bool("closed", c.closed);
  r.optional_int("resumed_at", c.resumed_at, 0, INT64_MAX);
  r.optional_int("accepted_wave", c.accepted_wave, -1, 100);
  d.err = r.err;
  return d;
}

decoded<job_spec> decode_job_spec(std::string_view json) {
  Document doc;
  decoded<job_spec> d;
  if (!parse_object(json, doc, d.err))
    return d;
  reader r{doc};
  read_spec(r, d.value, false, true);
  d.err = r.err;
  return d;
}

}  // namespace coapfleet::model
