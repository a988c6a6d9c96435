// Value types of the fleet: nodes, health reports, update jobs.
// Pure C++: no I/O, no CAF, no libcoap. Optional numbers are NaN when absent
// (JSON null or missing), optional strings are empty; that keeps every type
// trivially inspectable for the actor system's message registry.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace coapfleet::model {

/// Milliseconds since the Unix epoch (UTC).
using millis = int64_t;

constexpr double absent = std::numeric_limits<double>::quiet_NaN();
inline bool present(double x) { return !std::isnan(x); }

// -- scalar attribute values (system_info) -----------------------------------

/// One scalar JSON value of a free-form attribute object (`system_info`).
struct scalar {
  enum kind_t : uint8_t { null_v, bool_v, number_v, string_v };
  uint8_t kind = null_v;
  bool flag = false;
  double number = 0;
  std::string text;

  static scalar of(std::string s) { scalar x; x.kind = string_v; x.text = std::move(s); return x; }
  static scalar of(double d) { scalar x; x.kind = number_v; x.number = d; return x; }
  static scalar of_bool(bool b) { scalar x; x.kind = bool_v; x.flag = b; return x; }
  friend bool operator==(const scalar& a, const scalar& b) {
    return a.kind == b.kind && a.flag == b.flag
           && (a.number == b.number || (std::isnan(a.number) && std::isnan(b.number)))
           && a.text == b.text;
  }
};

using attributes = std::vector<std::pair<std::string, scalar>>;

/// Names with text values, sorted by name, each name once: a node's labels,
/// its version inventory, a job's target_labels.
using string_map = std::vector<std::pair<std::string, std::string>>;

// -- nodes -----------------------------------------------------------------

enum class node_status : uint8_t { online, stale, offline };
const char* to_string(node_status s);

/// What a node sends with `POST /nodes` (after validation and defaults).
struct node_registration {
  std::string node_id;      ///< 1..64 of [A-Za-z0-9._-]
  std::string hostname;     ///< optional, empty when absent
  std::string ip_address;   ///< defaults to the request's source address
  uint16_t port = 5683;     ///< where the agent listens for notifications
  std::vector<std::string> services;
  std::vector<std::string> drivers;
  attributes system_info;
  std::string reported_status;  ///< what the node said (`status`), informative
  /// The ip_address a node claimed when it differs from the address its own
  /// registration came from: information only (it is notified where it is).
  std::string reported_ip_address;
  /// Labels the node gives itself ({"site": "berlin"}); merged with the
  /// ones it has (an operator's stay unless the node names them again).
  string_map labels;
  /// What the node runs: software name → version (see inventory_key).
  string_map inventory;
  bool inventory_given = false;  ///< sent (even empty): it replaces the known one
};

/// A node health report (`PUT /health`), also the agent's `GET /health`.
struct health_report {
  std::string node_id;
  std::string timestamp;          ///< as the node sent it, empty when absent
  bool overall_healthy = true;
  double cpu_percent = absent;    ///< 0..100
  double memory_percent = absent; ///< 0..100
  double disk_percent = absent;   ///< 0..100
  double temperature = absent;    ///< degrees Celsius
  double uptime_seconds = absent; ///< >= 0
  std::vector<std::pair<std::string, bool>> services_status;
  std::vector<std::string> error_messages;
};

/// Everything the server knows of one node: its registration, the latest
/// health report and what the server itself keeps (times, liveness).
struct node_record {
  node_registration reg;
  node_status status = node_status::online;
  millis registered_at = 0;
  millis last_seen = 0;
  bool has_health = false;
  health_report health;   ///< meaningful when has_health
  millis health_at = 0;   ///< when the latest health report arrived
};

// -- update jobs ---------------------------------------------------------------

/// Per node, per job. Order matters: the first six are a forward chain.
/// rolled_back: the install's health check failed and the agent restored
/// what was there before (a file job).
enum class node_update_state : uint8_t {
  pending, notified, downloading, downloaded, installing, succeeded,
  failed, timed_out, cancelled, skipped, rolled_back,
};
const char* to_string(node_update_state s);
bool from_string(const std::string& s, node_update_state& out);
bool is_terminal(node_update_state s);

enum class job_status : uint8_t {
  created, in_progress, completed, failed, partially_failed, cancelled,
};
const char* to_string(job_status s);
bool from_string(const std::string& s, job_status& out);

/// The CoAP ETag of an artifact: the first 8 bytes of its SHA-256 (given in
/// hex), never 0 (0 means "no ETag" to the transport).
uint64_t etag_of_sha256(const std::string& sha256_hex);

/// LwM2M object 5 update result codes.
enum class update_result : uint8_t {
  initial = 0, success = 1, not_enough_storage = 2, out_of_memory = 3,
  connection_lost = 4, integrity_check_failed = 5, unsupported_package_type = 6,
  invalid_uri = 7, update_failed = 8, unsupported_protocol = 9, cancelled = 10,
};

/// The body of a create request (`POST /updates` without action).
struct job_spec {
  std::string name;
  std::string version;
  std::string package_type;               ///< pip | apt | file | script
  std::vector<std::string> target_nodes;  ///< ["all"] or node ids
  /// Nodes whose labels all match (keys may also be system_info.arch,
  /// system_info.os or inventory.<name>), besides target_nodes.
  string_map target_labels;
  std::vector<std::string> packages;      ///< pip, apt
  std::string artifact;                   ///< file
  std::string target_path;                ///< file (absolute)
  std::string mode;                       ///< file, optional octal string "0644"
  std::string artifact_sha256;            ///< file: set by the server from its store
  int32_t artifact_size = 0;              ///< file: bytes, set by the server
  std::string script;                     ///< script
  /// Optional shell command run on the node after a successful install; a
  /// failure fails the install, and a file job then restores the previous
  /// file (the node reports rolled_back).
  std::string health_check;
  std::string description;                ///< optional free text
  int32_t timeout_seconds = 0;            ///< per-node install timeout, 0 = default
  /// How long the server waits for a node's final report from the start of
  /// its attempt before it is timed_out (0: from timeout_seconds, else the
  /// server's --job-timeout). No node is ever stuck.
  int32_t node_timeout_seconds = 0;
  // -- campaign (all optional; a job without them starts every node at once) --
  /// Cumulative percentages of the targets, increasing, ending at 100: wave
  /// i holds the nodes up to waves[i]% (in node id order). Empty: one wave.
  std::vector<int32_t> waves;
  /// Percent of a wave's nodes that must succeed before the next wave starts
  /// (0: every node of the wave has finished, whatever its outcome).
  int32_t success_threshold = 0;
  /// Percent of failed (or timed-out) nodes among those started at which the
  /// campaign pauses itself (0: never).
  int32_t error_threshold = 0;
  int32_t soak_seconds = 0;   ///< wait after a wave succeeded before the next starts
  int32_t max_parallel = 0;   ///< nodes installing at once (0: no limit)
  int32_t retries = 0;        ///< automatic retries of a failed or timed-out node
  /// Delay before the first automatic retry, doubled for each next one
  /// (0: 30 s; at most an hour).
  int32_t retry_backoff_seconds = 0;
  /// Daily maintenance window "HH:MM-HH:MM" (UTC; may cross midnight):
  /// outside it no node starts. Empty: always.
  std::string window;
  /// Stays open for nodes that match its targets later (late joiners) until
  /// an operator closes it.
  bool dynamic = false;
  /// Optional Ed25519 signature (128 lower-case hex digits) of
  /// signed_job_text(*this) by the operator's key (model/job_signature.hpp);
  /// agents with --verify-key run only jobs whose signature verifies.
  std::string signature;
};

/// One node's part in one job.
struct node_job_state {
  std::string node_id;
  node_update_state state = node_update_state::pending;
  int32_t progress = -1;       ///< 0..100, -1 unknown
  int32_t result = 0;          ///< update_result code
  std::string error_message;   ///< empty when none
  millis updated_at = 0;
  /// Which run of the job this is on the node: 1 at the trigger, one more
  /// at every retry. The agent's reports name it; reports of an earlier
  /// attempt change nothing.
  uint32_t attempt = 1;
  /// When this attempt started (trigger or retry): its timeout counts from
  /// here. 0: not started yet (its wave has not come, or it waits for room).
  millis started_at = 0;
  int32_t wave = 0;     ///< the campaign wave it belongs to
  millis retry_at = 0;  ///< failed: when its automatic retry starts (0: none)
};

/// Where a campaign stands (a job's own state beside its nodes').
struct campaign_state {
  int32_t wave = 0;          ///< the newest wave started
  bool paused = false;
  std::string pause_reason;  ///< why (an operator, or a threshold)
  millis soak_until = 0;     ///< the next wave waits until then
  bool closed = false;       ///< a dynamic campaign takes no more late joiners
  /// An operator's resume overrides the automatic pause it ends: the error
  /// threshold counts the nodes started since `resumed_at`, and a wave up to
  /// `accepted_wave` that ended below the success threshold is passed.
  millis resumed_at = 0;
  int32_t accepted_wave = -1;
};

/// Counts of nodes per state, derived from the node states of a job.
struct job_counts {
  uint32_t total = 0;
  uint32_t by_state[11] = {};
  uint32_t finished() const;  ///< nodes in a terminal state
  uint32_t of(node_update_state s) const { return by_state[static_cast<int>(s)]; }
};

/// A job as stored and reported.
struct job_record {
  std::string job_id;
  job_spec spec;
  job_status status = job_status::created;
  millis created_at = 0;
  millis updated_at = 0;
  std::string error_message;         ///< job-level, empty when none
  std::vector<node_job_state> nodes; ///< sorted by node_id once triggered
  campaign_state campaign;
};

/// An agent's step report (`POST /updates {"action":"report"}`).
struct update_report {
  std::string job_id;
  std::string node_id;
  node_update_state state = node_update_state::pending;
  int32_t progress = -1;
  int32_t result = -1;  ///< -1 absent
  std::string error_message;
  uint32_t attempt = 0;  ///< the attempt it is about; 0 absent (the current one)
  /// The node's inventory after the step (a success carries it: the node
  /// counts as succeeded only when it names the job's version).
  string_map inventory;
  bool inventory_given = false;
};

/// A job as an agent holds it. `POST /updates/available` carries the ids
/// (and the server hint) only: the spec is never read from a notification;
/// the agent fetches it from its server (`GET /updates/<job>/spec`) over its
/// own session, and journals it here.
struct update_notification {
  std::string job_id;
  std::string node_id;
  job_spec spec;       ///< as fetched from the server; empty in a notification
  std::string server;  ///< optional hint where to report; empty = sender
  uint32_t attempt = 1;  ///< the node's attempt of the job (a retry is another run)
  /// What the server asks: install (a notification), or cancel the job on
  /// the node: queued work is dropped; running work is stopped only when
  /// `force` (otherwise it runs to its end and reports what happened).
  bool cancel = false;
  bool force = false;
  /// Hints of what the job installs (its name and version), for a node
  /// that reports them in its inventory without running anything (the
  /// simulator); an agent runs only the spec it fetches.
  std::string name;
  std::string version;
};

/// The key of one run of a job on a node in the agent's journal: the job id,
/// with "#<attempt>" after it for a retry.
inline std::string run_key(const std::string& job_id, uint32_t attempt) {
  return attempt <= 1 ? job_id : job_id + "#" + std::to_string(attempt);
}

/// An artifact in the server's store.
struct artifact_info {
  std::string name;
  int64_t size = 0;
  std::string sha256;  ///< lower-case hex
  millis uploaded_at = 0;
  uint64_t etag() const { return etag_of_sha256(sha256); }  ///< the first 8 bytes of the SHA-256
};

/// What the agent tells about its node in GET /system.
struct agent_system_info {
  std::string node_id;
  std::string hostname;
  std::string os;
  std::string arch;
  std::string kernel;
  uint32_t cpus = 0;
  uint64_t memory_total_bytes = 0;
  double uptime_seconds = 0;
  std::string agent_version;
  std::string server;  ///< coap://host:port it reports to
  bool registered = false;
  std::string current_job;  ///< empty when idle
  uint32_t queued_jobs = 0;
};

// -- inspect (for the actor system's message registry; pure templates) ---------

/// A double as its IEEE-754 bits for an inspector. The actor system's
/// serializer (CAF 0.17) packs a double arithmetically: NaN (an absent
/// number) arrives as -1.0 on the other member, and an infinity never ends
/// the packing. The bits cross unchanged.
struct double_bits {
  double* x;
};
template <class F> auto inspect(F& f, double_bits& b) {
  uint64_t bits;
  std::memcpy(&bits, b.x, sizeof bits);
  struct write_back {  // after the inspector has read (or written) the bits
    double* x;
    uint64_t* bits;
    ~write_back() { std::memcpy(x, bits, sizeof *bits); }
  } back{b.x, &bits};
  return f(bits);
}

template <class F> auto inspect(F& f, scalar& x) {
  double_bits number{&x.number};
  return f(x.kind, x.flag, number, x.text);
}
template <class F> auto inspect(F& f, node_registration& x) {
  return f(x.node_id, x.hostname, x.ip_address, x.port, x.services, x.drivers,
           x.system_info, x.reported_status, x.reported_ip_address, x.labels, x.inventory,
           x.inventory_given);
}
template <class F> auto inspect(F& f, health_report& x) {
  double_bits cpu{&x.cpu_percent}, memory{&x.memory_percent}, disk{&x.disk_percent},
    temperature{&x.temperature}, uptime{&x.uptime_seconds};
  return f(x.node_id, x.timestamp, x.overall_healthy, cpu, memory, disk, temperature, uptime,
           x.services_status, x.error_messages);
}
template <class F> auto inspect(F& f, node_record& x) {
  return f(x.reg, x.status, x.registered_at, x.last_seen, x.has_health, x.health,
           x.health_at);
}
template <class F> auto inspect(F& f, job_spec& x) {
  return f(x.name, x.version, x.package_type, x.target_nodes, x.target_labels, x.packages, x.artifact,
           x.target_path, x.mode, x.artifact_sha256, x.artifact_size, x.script, x.health_check,
           x.description,
           x.timeout_seconds, x.node_timeout_seconds, x.waves, x.success_threshold,
           x.error_threshold, x.soak_seconds, x.max_parallel, x.retries, x.retry_backoff_seconds,
           x.window, x.dynamic, x.signature);
}
template <class F> auto inspect(F& f, node_job_state& x) {
  return f(x.node_id, x.state, x.progress, x.result, x.error_message, x.updated_at, x.attempt,
           x.started_at, x.wave, x.retry_at);
}
template <class F> auto inspect(F& f, campaign_state& x) {
  return f(x.wave, x.paused, x.pause_reason, x.soak_until, x.closed, x.resumed_at,
           x.accepted_wave);
}
template <class F> auto inspect(F& f, job_counts& x) { return f(x.total, x.by_state); }
template <class F> auto inspect(F& f, job_record& x) {
  return f(x.job_id, x.spec, x.status, x.created_at, x.updated_at, x.error_message, x.nodes,
           x.campaign);
}
template <class F> auto inspect(F& f, update_report& x) {
  return f(x.job_id, x.node_id, x.state, x.progress, x.result, x.error_message, x.attempt,
           x.inventory, x.inventory_given);
}
template <class F> auto inspect(F& f, update_notification& x) {
  return f(x.job_id, x.node_id, x.spec, x.server, x.attempt, x.cancel, x.force, x.name,
           x.version);
}
template <class F> auto inspect(F& f, agent_system_info& x) {
  return f(x.node_id, x.hostname, x.os, x.arch, x.kernel, x.cpus, x.memory_total_bytes,
           x.uptime_seconds, x.agent_version, x.server, x.registered, x.current_job,
           x.queued_jobs);
}
template <class F> auto inspect(F& f, artifact_info& x) {
  return f(x.name, x.size, x.sha256, x.uploaded_at);
}

}  // namespace coapfleet::model
