// JSON codec of the wire API (RapidJSON inside, never in this interface).
// Decoders validate completely and name the field at fault; encoders produce
// the exact shapes of the API contract (DESIGN.md §4).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "model/access.hpp"
#include "model/types.hpp"

namespace coapfleet::model {

/// What is wrong with a request body: a message and, where one is at fault,
/// the field's name. Encoded as {"error": ..., "field": ...}.
struct problem {
  std::string error;
  std::string field;
  bool empty() const { return error.empty(); }
};

template <class T>
struct decoded {
  T value{};
  problem err;
  bool ok() const { return err.empty(); }
};

// -- requests ------------------------------------------------------------------

/// `POST /nodes`. `source_address` is the request's peer address, used when
/// the body has no `ip_address`.
/// `POST /nodes`: a registration (no action, or "register"), or an
/// operator's {"action":"label","node_id","labels":{...}} (null or "" removes one).
struct nodes_request {
  bool label = false;
  node_registration reg;  ///< register
  std::string node_id;    ///< label
  string_map labels;      ///< label: the changes
};
decoded<nodes_request> decode_nodes_request(std::string_view body,
                                            const std::string& source_address);
decoded<node_registration> decode_node_registration(std::string_view body,
                                                    const std::string& source_address);

/// Where a JSON text comes from. A peer's body (request or answer) must not
/// repeat a member name anywhere (4.00 "duplicate key" naming it); what the
/// server stored itself is read as written, since versions before that rule
/// kept repeated names in health reports and attributes.
enum class json_source : uint8_t { peer, store };

/// `PUT /health` (and the agent's health sample; persistence reads stored
/// reports with json_source::store).
decoded<health_report> decode_health_report(std::string_view body,
                                            json_source from = json_source::peer);

enum class updates_action : uint8_t {
  create, install, status, report, cancel, remove, retry, pause, resume, close,
};

/// `POST /updates`: one of create (no action or "create"), install, status,
/// report, cancel, delete (`remove`). Only the members that belong to the action are filled.
struct updates_request {
  updates_action action = updates_action::create;
  job_spec spec;         ///< create
  std::string job_id;    ///< install, status, cancel, retry, delete
  bool force = false;    ///< cancel: also stop the installs that run
  update_report report;  ///< report
};
decoded<updates_request> decode_updates_request(std::string_view body);

/// Validates a job spec's fields per package_type (also used on stored specs).
problem validate_job_spec(const job_spec& spec);

enum class system_action : uint8_t { status, restart, shutdown };
const char* to_string(system_action a);
decoded<system_action> decode_system_request(std::string_view body);

/// `POST /keys`: {"action":"add","id","role"}, {"action":"list"},
/// {"action":"revoke","id"}, {"action":"rotate","id","grace_seconds"?}.
/// Ids must be valid identities, roles node, operator or reader.
decoded<key_request> decode_keys_request(std::string_view body);

/// The agent's `POST /updates/available`: job_id, node_id and the optional
/// server hint. Nothing else is read (the spec stays empty): the agent
/// fetches the spec from its server.
decoded<update_notification> decode_update_notification(std::string_view body);
/// A job for one node with its spec: the server's answer to `GET
/// /updates/<job>/spec` and the agent's journal entries. The spec is validated.
decoded<update_notification> decode_node_job(std::string_view body);

/// True for 1..64 characters of [A-Za-z0-9._-].
bool valid_node_id(std::string_view id);

/// An artifact's name (in PUT /artifacts/<name>, a file job's "artifact" and
/// the store's directory): 1..128 characters of [A-Za-z0-9._+-], the first
/// neither '.' nor '-'. So a name is never "." or "..", never hidden, never
/// read as an option, and never one of the store's own files (in .store/).
bool valid_artifact_name(std::string_view name);
/// The rule above in words, for error messages.
extern const char* const artifact_name_rule;

// -- responses -------------------------------------------------------------------

/// ISO 8601 UTC with seconds, e.g. "2025-09-17T10:00:00Z".
std::string format_time(millis t);

std::string encode_problem(const problem& p);
/// {"error": error} plus extra string fields (name, value) pairs.
std::string encode_error(std::string_view error,
                         const std::vector<std::pair<std::string, std::string>>& extra = {});

/// {"message": message} plus extra string fields (success answers).
std::string encode_message(std::string_view message,
                           const std::vector<std::pair<std::string, std::string>>& extra = {});

std::string encode_health_report(const health_report& h);
std::string encode_node_registration(const node_registration& r);

/// One node as `GET /nodes` lists it: the registration plus `status`,
/// `last_seen`, `registered_at` and, when known, `health`.
std::string encode_node(const node_record& n);
/// {"nodes":[...]}
std::string encode_nodes(const std::vector<node_record>& nodes);
/// /nodes/changes: {"from":F,"to":T,"reset":R,"nodes":<nodes_array>}, where
/// `nodes_array` is a JSON array of encode_node objects (the reader's).
std::string encode_node_changes(uint64_t from, uint64_t to, bool reset,
                                std::string_view nodes_array);
/// `/nodes/<id>/health`: the node's latest report as it sent it (the shape
/// of PUT /health) plus `received_at` (null before the first report) and
/// `node_status`.
std::string encode_node_health(const node_record& n);

/// Fleet health for `GET /health`.
struct unhealthy_node {
  std::string node_id;
  std::vector<std::string> error_messages;
};
struct server_stats {
  double cpu_percent = absent;  ///< of one core, since the previous sample
  uint64_t rss_bytes = 0;
  std::string database;         ///< "connected" / "error: ..."
  double uptime_seconds = 0;
};
struct fleet_health {
  std::string status;  ///< healthy | degraded | unhealthy | unknown
  millis timestamp = 0;
  uint32_t total_nodes = 0, online_nodes = 0, stale_nodes = 0, healthy_nodes = 0,
           unhealthy_nodes = 0, offline_nodes = 0;
  std::vector<unhealthy_node> unhealthy;  ///< the first by node id, at most the server's limit
  uint32_t unhealthy_more = 0;  ///< unhealthy nodes not listed (GET /nodes?health=unhealthy)
  server_stats server;
};
std::string encode_fleet_health(const fleet_health& h);

/// {"job_id", "status":"created", "message"}
std::string encode_job_created(const job_record& j);
/// {"success":true, "message":"Update job <id> triggered successfully", "job_id", ...}
std::string encode_job_triggered(const job_record& j);
/// {"job_id","status","node_statuses":{...},"error_message":null|"...",
///  "counts":{...},"progress":n,"nodes":[{node_id,status,progress,result,error_message,updated_at}],...}
std::string encode_job_status(const job_record& j);
/// One job as `GET /updates` lists it.
std::string encode_job_summary(const job_record& j);
/// {"job_id","deleted":true}: a job gone, as `GET /updates/changes` lists it.
std::string encode_deleted_job(const std::string& job_id);
/// {"updates":[...]}
std::string encode_jobs(const std::vector<job_record>& jobs);

std::string encode_update_report(const update_report& r);  // agent → server
/// `POST /updates/available`: {"job_id","node_id"} (+ "server"), never the spec.
std::string encode_update_notification(const update_notification& n);
/// {"job_id","node_id", spec members (with artifact_sha256, signature)}: `GET
/// /updates/<job>/spec` and the agent's journal.
std::string encode_node_job(const update_notification& n);

/// `GET /system` of the main server.
struct system_info {
  millis timestamp = 0;
  double uptime_seconds = 0;
  std::string version;
  std::vector<std::string> available_actions;  ///< empty when actions are disabled
};
std::string encode_system_info(const system_info& s);

/// `POST /system {"action":"status"}`.
struct system_status {
  millis timestamp = 0;
  std::string database;  ///< "connected" or "disconnected"
  double uptime_seconds = 0;
  uint32_t nodes = 0;
  uint32_t jobs = 0;
};
std::string encode_system_status(const system_status& s);

/// The agent's `GET /system`.
std::string encode_agent_system_info(const agent_system_info& s);

/// {"name","size","sha256","uploaded_at"} of `PUT`/`GET /artifacts`.
std::string encode_artifact(const artifact_info& a);
/// {"artifacts":[...]}
std::string encode_artifacts(const std::vector<artifact_info>& all);
/// The artifact store's metadata file (uploaded_at in milliseconds).
std::string encode_artifact_meta(const artifact_info& a);
/// Reads it back into `a` (size, sha256, uploaded_at); false when invalid.
bool decode_artifact_meta(std::string_view json, artifact_info& a);

/// A new key (`POST /keys` add and rotate): {"id","role","key"}, plus
/// "grace_seconds" (how long the previous keys keep working) when >= 0.
std::string encode_key_issued(const key_entry& k, int64_t grace_seconds = -1);
/// `GET /keys`: {"keys":[{"id","role","created_at","expires_at"}]}, times as
/// format_time() text, expires_at null for a key without expiry. Never secrets.
std::string encode_keys(const std::vector<key_info>& keys);

/// Encodes a job spec as a JSON object (persistence keeps specs this way).
std::string encode_job_spec(const job_spec& s);
decoded<job_spec> decode_job_spec(std::string_view json);
/// A job's campaign state as the store keeps it (JSON).
std::string encode_campaign_state(const campaign_state& c);
decoded<campaign_state> decode_campaign_state(std::string_view json);
/// Attribute objects and string lists as JSON text (persistence: read as
/// stored, see json_source).
std::string encode_attributes(const attributes& a);
decoded<attributes> decode_attributes(std::string_view json);
std::string encode_strings(const std::vector<std::string>& v);
decoded<std::vector<std::string>> decode_strings(std::string_view json);
std::string encode_string_map(const string_map& m);
/// {"message": "Labels updated", "node_id": ..., "labels": {...}}
std::string encode_node_labels(const std::string& node_id, const string_map& labels);  ///< {"name": "value", ...}
decoded<string_map> decode_string_map(std::string_view json);  ///< sorted by name

}  // namespace coapfleet::model
