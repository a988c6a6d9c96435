// Every actor's typed interface in one place: read this file to know the
// whole system's contracts. Mains and the transport include this header,
// never another actor's implementation.
//
//   transport (libcoap thread + companion) ──► gateway ──► registry ──► node actors
//                                                     ├──► job supervisor ──► job actors
//                                                     ├──► system actor
//                                                     └──► artifact store
//   owners ──(changed: resource, urgency)──► transport (keeps representations fresh)
//   everything that persists ──► persistence (the only user of the store)
//   gateway ──► keys ──(keys: the valid key table)──► transport
//   gateway ──► cluster (actors/cluster_interface.hpp) ◄──middleman──► other members
//
// It includes only CAF, the standard library, model/ and common/ (checked by
// cmake/check_layering.cmake).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "model/access.hpp"
#include "model/audit.hpp"
#include "model/history.hpp"
#include "model/json.hpp"
#include "model/persistence.hpp"
#include "model/queries.hpp"
#include "model/types.hpp"

namespace coapfleet {

/// Who sent a request: address and port as the transport saw them, and the
/// authenticated identity once DTLS exists (empty until then).
struct peer {
  std::string address;
  uint16_t port = 0;
  std::string identity;  ///< DTLS identity (PSK identity, certificate CN/SAN); empty on plain CoAP
  /// What the transport established: the identity's role over DTLS; over
  /// plain CoAP `trusted` from a --plain-trusted network, else what
  /// --plain-access grants. Anonymous unless the transport says otherwise.
  model::role role = model::role::anonymous;
  bool secure = false;  ///< came over DTLS
  model::principal principal() const { return {role, identity, secure}; }
};
template <class F> auto inspect(F& f, peer& x) {
  return f(x.address, x.port, x.identity, x.role, x.secure);
}

/// Immutable bytes shared between threads without copying (an artifact's
/// contents, mapped from its file).
class shared_bytes {
public:
  virtual ~shared_bytes() = default;
  virtual const uint8_t* data() const = 0;
  virtual size_t size() const = 0;
};

/// What the transport does once an answer has left.
enum class after_reply : uint8_t { nothing, shutdown, restart };

/// A CoAP answer as the transport sends it. `code` is class*100+detail
/// (205 = 2.05). `after` asks the transport to stop the process once the
/// response has left.
struct coap_reply {
  uint16_t code = 205;
  uint16_t content_format = 50;  ///< 50 application/json, 0 text/plain, 42 octet-stream
  std::string payload;
  uint32_t max_age = UINT32_MAX;  ///< UINT32_MAX: no Max-Age option
  after_reply after = after_reply::nothing;
  uint64_t etag = 0;              ///< 0: no ETag option
  /// A large immutable body shared instead of `payload` (artifact contents);
  /// local only, never serialized.
  std::shared_ptr<const shared_bytes> shared_body;
  /// >= 0: `payload` is block `block2_num` (of 16 << block2_szx bytes) of a
  /// body the transport serves a block at a time (a listing read from a
  /// snapshot); `block2_more` when more follow. Local only.
  int32_t block2_num = -1;
  uint8_t block2_szx = 6;
  bool block2_more = false;
};
template <class F> auto inspect(F& f, coap_reply& x) {
  return f(x.code, x.content_format, x.payload, x.max_age, x.after, x.etag);
}

/// The method of a request this process sends (CoAP's request codes).
enum class request_method : uint8_t { get = 1, post = 2, put = 3, del = 4 };

/// A request this process sends as a CoAP client (agent → server reports,
/// server → agent notifications, block-by-block artifact downloads).
struct client_request {
  request_method method = request_method::post;
  std::string host;            ///< IP literal
  uint16_t port = 5683;
  std::string path;            ///< "updates/available", "artifacts/fw.bin"
  std::string query;           ///< without '?', may be empty
  std::string payload;
  uint16_t content_format = 50;
  int32_t block2_num = -1;     ///< >= 0: ask for this block only (manual block-wise)
  uint8_t block2_szx = 6;      ///< block size 2^(szx+4): 6 = 1024 bytes
};
template <class F> auto inspect(F& f, client_request& x) {
  return f(x.method, x.host, x.port, x.path, x.query, x.payload, x.content_format,
           x.block2_num, x.block2_szx);
}

/// Its answer. code 0: no answer (timeout, unreachable); `error` says why.
struct client_response {
  uint16_t code = 0;           ///< class*100+detail, e.g. 204
  std::string payload;
  std::string error;
  std::string etag;            ///< raw ETag option bytes, if any
  int32_t block2_num = -1;     ///< the block this answer carries (manual block-wise)
  bool block2_more = false;
  uint8_t block2_szx = 6;
  int64_t size2 = -1;          ///< total body size when the server said so
  int64_t max_age = -1;        ///< Max-Age option in seconds, -1 when absent
};
template <class F> auto inspect(F& f, client_response& x) {
  return f(x.code, x.payload, x.error, x.etag, x.block2_num, x.block2_more, x.block2_szx,
           x.size2, x.max_age);
}

using model::artifact_info;

/// An artifact with its contents, for serving.
struct artifact_blob {
  artifact_info info;
  std::shared_ptr<const shared_bytes> bytes;  ///< local only
};
template <class F> auto inspect(F& f, artifact_blob& x) { return f(x.info); }

/// An unfinished job naming an artifact, and the version (SHA-256) it pinned.
struct artifact_pin {
  std::string job_id;
  std::string sha256;
};
template <class F> auto inspect(F& f, artifact_pin& x) { return f(x.job_id, x.sha256); }

/// An upload: the whole body (reassembled from Block1 by the transport), and
/// the unfinished jobs naming it: other content under that name is refused
/// while they need theirs.
struct artifact_upload {
  std::string name;
  std::string body;
  std::vector<artifact_pin> pins;
};
template <class F> auto inspect(F& f, artifact_upload& x) { return f(x.name, x.body, x.pins); }

/// A resource whose representation the transport serves and observers
/// follow: its kind, and the node or job it belongs to (empty for fleet-wide ones).
enum class resource_kind : uint8_t {
  health,       ///< GET /health
  nodes,        ///< GET /nodes (filters are cut from it)
  updates,      ///< GET /updates
  job_status,   ///< /updates/<id>/status, and POST /updates {"action":"status"}
  node_health,  ///< /nodes/<id>/health
  node_changes, ///< /nodes/changes: the nodes changed since its previous copy
  job_changes,  ///< /updates/changes: the jobs changed since its previous copy
  system,       ///< GET /system
  artifacts,    ///< GET /artifacts
};
const char* to_string(resource_kind k);

struct resource {
  resource_kind kind = resource_kind::health;
  std::string id;  ///< node or job id for node_health and job_status
  friend bool operator==(const resource& a, const resource& b) {
    return a.kind == b.kind && a.id == b.id;
  }
};
template <class F> auto inspect(F& f, resource& x) { return f(x.kind, x.id); }
/// "health", "nodes", "updates/<id>/status", "nodes/<id>/health", ...: the URI path.
std::string path_of(const resource& r);

/// How soon a change must show. `control`: a change an acknowledgement
/// depends on (a registration, a job step): the transport refreshes the
/// representation at once and sends no acknowledgement that was answered
/// after the change before the new representation is there (read your
/// writes). `telemetry`: health reports and liveness, refreshed at most every
/// publish interval.
enum class urgency : uint8_t { telemetry, control };

/// A registration's outcome.
struct registered {
  std::string node_id;
  bool created = false;  ///< false: re-registration of a known node
};
template <class F> auto inspect(F& f, registered& x) { return f(x.node_id, x.created); }

/// What a node actor tells the registry whenever the node changed (a report,
/// a re-registration, its liveness): what `GET /health` counts. (GET /nodes
/// is read from the database by the reader.)
struct node_summary {
  std::string node_id;
  model::node_status status = model::node_status::online;  ///< the registry's to set
  bool healthy = true;
  bool has_health = false;
  std::vector<std::string> error_messages;
  model::millis last_seen = 0;  ///< when the node was last heard from
  model::millis health_at = 0;  ///< when the report behind the health fields came (0: unknown)
};
template <class F> auto inspect(F& f, node_summary& x) {
  return f(x.node_id, x.status, x.healthy, x.has_health, x.error_messages, x.last_seen,
           x.health_at);
}

/// Part of a whole GET /nodes listing read from a snapshot (the reader's):
/// `bytes` continue the listing's body; `last` when it is complete. A
/// listing that cannot be read has `error` set (then nothing else counts).
struct listing_chunk {
  uint64_t stream = 0;  ///< the reader's id of the snapshot
  std::string bytes;
  bool last = false;
  std::string error;
};
template <class F> auto inspect(F& f, listing_chunk& x) {
  return f(x.stream, x.bytes, x.last, x.error);
}

/// The nodes changed since the previous copy of /nodes/changes (the
/// registry's, rendered by the reader): copy `to` follows copy `from`; with
/// `reset` more changed than it keeps (the listing is to be read again).
struct node_changes {
  uint64_t from = 0;
  uint64_t to = 0;
  bool reset = false;
  std::vector<std::string> ids;  ///< sorted
};
template <class F> auto inspect(F& f, node_changes& x) {
  return f(x.from, x.to, x.reset, x.ids);
}

/// A job target as the registry resolves it when a job is triggered.
struct job_target {
  std::string node_id;
  std::string ip_address;
  uint16_t port = 5683;
  model::node_status status = model::node_status::online;
  /// Labels, inventory, arch and os: filled in for late joiners only (the
  /// registry matched a trigger's targets itself).
  model::node_traits traits;
};
template <class F> auto inspect(F& f, job_target& x) {
  return f(x.node_id, x.ip_address, x.port, x.status, x.traits);
}

// What crosses to the persistence actor (model/persistence.hpp).
using model::drop_job;
using model::loaded_state;
using model::put_health;
using model::put_job;
using model::put_job_status;
using model::put_node;
using model::put_node_state;
using model::write_batch;
using model::write_op;

// -- the cluster, within a member and between members (job_cluster.cpp) ---------------
/// A live member with a link: its job supervisor and its registry.
struct member_peer {
  std::string member_id;
  caf::actor jobs;
  caf::actor nodes;  ///< its registry (null from a member that did not say)
};
template <class F> auto inspect(F& f, member_peer& x) {
  return f(x.member_id, x.jobs, x.nodes);
}

/// What the membership actor tells the job supervisor and the registry
/// every heartbeat.
struct cluster_view {
  std::string me;                 ///< this member ("": not clustered)
  bool active = false;            ///< its lease holds (false: fenced)
  std::vector<std::string> live;  ///< the live members (by the store), sorted, `me` included
  std::vector<member_peer> peers; ///< the other live members with a link
};
template <class F> auto inspect(F& f, cluster_view& x) {
  return f(x.me, x.active, x.live, x.peers);
}

/// The jobs a member claimed (store::claim_jobs), loaded, and how many of
/// its share another live member still holds.
struct job_claim {
  std::vector<model::job_record> claimed;
  uint32_t waiting = 0;
  std::vector<std::string> known;  ///< every stored job's id, sorted
};
template <class F> auto inspect(F& f, job_claim& x) { return f(x.claimed, x.waiting, x.known); }

/// A job as GET /updates lists it, with what orders the listing.
struct job_part {
  std::string job_id;
  model::millis created_at = 0;
  std::string summary;  ///< JSON
};
template <class F> auto inspect(F& f, job_part& x) {
  return f(x.job_id, x.created_at, x.summary);
}

/// Counts for `POST /system {"action":"status"}`.
struct fleet_counts {
  uint32_t nodes = 0;
  uint32_t jobs = 0;
};
template <class F> auto inspect(F& f, fleet_counts& x) { return f(x.nodes, x.jobs); }

namespace model {
template <class F> auto inspect(F& f, key_entry& x) {
  return f(x.id, x.r, x.secret, x.created_at, x.expires_at);
}
template <class F> auto inspect(F& f, key_table& x) { return f(x.version, x.keys); }
template <class F> auto inspect(F& f, key_info& x) {
  return f(x.id, x.r, x.created_at, x.expires_at);
}
template <class F> auto inspect(F& f, key_request& x) {
  return f(x.action, x.id, x.r, x.grace_seconds);
}
template <class F> auto inspect(F& f, audit_record& x) {
  return f(x.seq, x.at, x.identity, x.r, x.secure, x.address, x.port, x.action, x.target,
           x.outcome, x.detail);
}
template <class F> auto inspect(F& f, audit_query& x) { return f(x.before, x.limit); }
template <class F> auto inspect(F& f, audit_page& x) { return f(x.records, x.next); }
template <class F> auto inspect(F& f, history_entry& x) {
  return f(x.seq, x.node_id, x.job_id, x.attempt, x.state, x.result, x.error_message, x.at);
}
template <class F> auto inspect(F& f, history_query& x) {
  return f(x.by_job, x.id, x.before, x.limit);
}
template <class F> auto inspect(F& f, history_page& x) { return f(x.entries, x.next); }
template <class F> auto inspect(F& f, unhealthy_node& x) { return f(x.node_id, x.error_messages); }
template <class F> auto inspect(F& f, server_stats& x) {
  return f(x.cpu_percent, x.rss_bytes, x.database, x.uptime_seconds);
}
template <class F> auto inspect(F& f, fleet_health& x) {
  return f(x.status, x.timestamp, x.total_nodes, x.online_nodes, x.stale_nodes,
           x.healthy_nodes, x.unhealthy_nodes, x.offline_nodes, x.unhealthy, x.unhealthy_more,
           x.server);
}
template <class F> auto inspect(F& f, system_info& x) {
  return f(x.timestamp, x.uptime_seconds, x.version, x.available_actions);
}
template <class F> auto inspect(F& f, system_status& x) {
  return f(x.timestamp, x.database, x.uptime_seconds, x.nodes, x.jobs);
}
}  // namespace model

using model::agent_system_info;

// -- errors: values up to the edge, where the transport maps them to CoAP ------

/// Error codes of the application; the transport maps each to a CoAP code.
enum class api_errc : uint8_t {
  bad_request = 1,  ///< 4.00
  unauthorized,     ///< 4.01
  forbidden,        ///< 4.03
  not_found,        ///< 4.04
  conflict,         ///< 4.09
  too_large,        ///< 4.13
  internal,         ///< 5.00
  unavailable,      ///< 5.03
  too_many,         ///< 4.29 (detail "retry_after_seconds": the Max-Age)
};
constexpr caf::atom_value api_category = caf::atom("coapfleet");

}  // namespace coapfleet

CAF_ERROR_CODE_ENUM(coapfleet::api_errc, "coapfleet")

namespace coapfleet {

/// An application error: what went wrong, and the request field at fault.
/// The context message holds (what, field, detail_key, detail_value).
inline caf::error make_api_error(api_errc code, std::string what, std::string field = {},
                                 std::string key = {}, std::string value = {}) {
  return caf::make_error(code, std::move(what), std::move(field), std::move(key),
                         std::move(value));
}

}  // namespace coapfleet

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(coapfleet::write_batch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(coapfleet::model::put_health)

// -- type IDs ---------------------------------------------------------------------

CAF_BEGIN_TYPE_ID_BLOCK(coapfleet, caf::first_custom_type_id)
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::peer))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::coap_reply))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::client_request))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::client_response))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::registered))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::node_summary))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::job_target))
  CAF_ADD_TYPE_ID(coapfleet, (std::vector<coapfleet::job_target>))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::loaded_state))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::fleet_counts))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::artifact_info))
  CAF_ADD_TYPE_ID(coapfleet, (std::vector<coapfleet::artifact_info>))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::artifact_blob))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::artifact_upload))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::agent_system_info))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::model::node_registration))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::model::string_map))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::model::health_report))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::model::node_record))
  CAF_ADD_TYPE_ID(coapfleet, (std::vector<coapfleet::model::node_record>))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::model::job_spec))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::model::job_record))
  CAF_ADD_TYPE_ID(coapfleet, (std::vector<coapfleet::model::job_record>))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::model::update_report))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::model::update_notification))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::model::fleet_health))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::model::system_info))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::model::system_status))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::model::nodes_query))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::listing_chunk))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::node_changes))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::model::key_table))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::model::role))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::model::key_entry))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::model::key_info))
  CAF_ADD_TYPE_ID(coapfleet, (std::vector<coapfleet::model::key_info>))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::model::key_request))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::model::system_action))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::model::audit_record))
  CAF_ADD_TYPE_ID(coapfleet, (std::vector<coapfleet::model::audit_record>))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::model::audit_query))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::model::audit_page))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::model::history_entry))
  CAF_ADD_TYPE_ID(coapfleet, (std::vector<coapfleet::model::history_entry>))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::model::history_query))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::model::history_page))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::resource))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::resource_kind))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::urgency))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::after_reply))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::request_method))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::member_peer))
  CAF_ADD_TYPE_ID(coapfleet, (std::vector<coapfleet::member_peer>))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::cluster_view))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::job_claim))
  CAF_ADD_TYPE_ID(coapfleet, (coapfleet::job_part))
  CAF_ADD_TYPE_ID(coapfleet, (std::vector<coapfleet::job_part>))
CAF_END_TYPE_ID_BLOCK(coapfleet)

// -- atoms (at most 10 characters) --------------------------------------------------

namespace coapfleet::atom {
using create = caf::atom_constant<caf::atom("create")>;
using install = caf::atom_constant<caf::atom("install")>;
using status = caf::atom_constant<caf::atom("status")>;
using report = caf::atom_constant<caf::atom("report")>;
using cancel = caf::atom_constant<caf::atom("cancel")>;
using list = caf::atom_constant<caf::atom("list")>;
using keys = caf::atom_constant<caf::atom("keys")>;
using revoke = caf::atom_constant<caf::atom("revoke")>;
using rotate = caf::atom_constant<caf::atom("rotate")>;
using version = caf::atom_constant<caf::atom("version")>;
using listing = caf::atom_constant<caf::atom("listing")>;
using get = caf::atom_constant<caf::atom("get")>;
using enroll = caf::atom_constant<caf::atom("enroll")>;      ///< register a node
using health = caf::atom_constant<caf::atom("health")>;
using summary = caf::atom_constant<caf::atom("summary")>;
using resolve = caf::atom_constant<caf::atom("resolve")>;
using label = caf::atom_constant<caf::atom("label")>;
using inventory = caf::atom_constant<caf::atom("inventory")>;
using route = caf::atom_constant<caf::atom("route")>;
using unroute = caf::atom_constant<caf::atom("unroute")>;
using trim = caf::atom_constant<caf::atom("trim")>;
using changes = caf::atom_constant<caf::atom("changes")>;
using sync = caf::atom_constant<caf::atom("sync")>;
using notify = caf::atom_constant<caf::atom("notify")>;
using notified = caf::atom_constant<caf::atom("notified")>;
using tick = caf::atom_constant<caf::atom("tick")>;
using deadline = caf::atom_constant<caf::atom("deadline")>;
using write = caf::atom_constant<caf::atom("write")>;
using commit = caf::atom_constant<caf::atom("commit")>;
using load = caf::atom_constant<caf::atom("load")>;
using ping = caf::atom_constant<caf::atom("ping")>;
using flush = caf::atom_constant<caf::atom("flush")>;
using count = caf::atom_constant<caf::atom("count")>;
using info = caf::atom_constant<caf::atom("info")>;
using action = caf::atom_constant<caf::atom("action")>;
using reply = caf::atom_constant<caf::atom("reply")>;
using resume = caf::atom_constant<caf::atom("resume")>;
using artifact = caf::atom_constant<caf::atom("artifact")>;
using upload = caf::atom_constant<caf::atom("upload")>;
using uses = caf::atom_constant<caf::atom("uses")>;
using request = caf::atom_constant<caf::atom("request")>;
using changed = caf::atom_constant<caf::atom("changed")>;
using observe = caf::atom_constant<caf::atom("observe")>;
using forget = caf::atom_constant<caf::atom("forget")>;
using absorbed = caf::atom_constant<caf::atom("absorbed")>;
using remove = caf::atom_constant<caf::atom("remove")>;
using response = caf::atom_constant<caf::atom("response")>;
using ok = caf::atom_constant<caf::atom("ok")>;  ///< a reply that carries nothing else
using node = caf::atom_constant<caf::atom("node")>;
using job = caf::atom_constant<caf::atom("job")>;
using audit = caf::atom_constant<caf::atom("audit")>;
using open = caf::atom_constant<caf::atom("open")>;
using more = caf::atom_constant<caf::atom("more")>;
using close = caf::atom_constant<caf::atom("close")>;
using retry = caf::atom_constant<caf::atom("retry")>;
using stop = caf::atom_constant<caf::atom("stop")>;
using history = caf::atom_constant<caf::atom("history")>;
using fence = caf::atom_constant<caf::atom("fence")>;      ///< a member's lease (cluster)
using cluster = caf::atom_constant<caf::atom("cluster")>;  ///< GET /cluster
using join = caf::atom_constant<caf::atom("join")>;        ///< a member introduces itself
using claim = caf::atom_constant<caf::atom("claim")>;      ///< a member takes its jobs
using refresh = caf::atom_constant<caf::atom("refresh")>;  ///< re-read the shared store
using watch = caf::atom_constant<caf::atom("watch")>;      ///< relay a node's changes (cluster)
}  // namespace coapfleet::atom

namespace coapfleet {

// -- persistence ---------------------------------------------------------------------

/// The persistence actor: owns the SQLite store; group-commits writes.
using persistence_actor = caf::typed_actor<
  /// Reads everything stored (once, at start-up).
  caf::replies_to<atom::load>::with<loaded_state>,
  /// One node's or job's record as stored, after committing everything
  /// pending (a supervisor restarts a dead child from it); not_found if absent.
  caf::replies_to<atom::load, atom::node, std::string>::with<model::node_record>,
  caf::replies_to<atom::load, atom::job, std::string>::with<model::job_record>,
  /// Every node's brief (no jobs), after committing what is pending: a
  /// cluster member's registry reads what the other members wrote.
  caf::replies_to<atom::load, atom::node>::with<loaded_state>,
  /// Durable writes: answers once they are committed (fsync'd), with an
  /// error when the transaction failed (then none of them happened).
  caf::replies_to<atom::write, write_batch>::with<atom::ok>,
  /// Telemetry: the latest health of a node; committed within the flush
  /// interval (at most one second), never acknowledged.
  caf::reacts_to<atom::health, model::put_health>,
  /// True when the database answered a query just now.
  caf::replies_to<atom::ping>::with<bool>,
  /// Commits everything pending and checkpoints the WAL (before a stop).
  caf::replies_to<atom::flush>::with<atom::ok>,
  /// Commits everything pending (health too) and answers: what was sent to
  /// it before is in the database for the reader (/nodes/changes).
  caf::replies_to<atom::sync>::with<atom::ok>,
  /// A cluster member's lease after each join (store::set_fence): every
  /// later commit checks it, and fails with unavailable once it lapsed.
  caf::replies_to<atom::fence, std::string, uint64_t>::with<atom::ok>,
  /// A member's claim of its jobs (store::claim_jobs: me, live members,
  /// jobs it runs), after committing what is pending: the jobs it took,
  /// loaded. Fenced like every commit.
  caf::replies_to<atom::claim, std::string, std::vector<std::string>,
                  std::vector<std::string>>::with<job_claim>,
  /// Internal: run the group commit now / the health flush timer fired.
  caf::reacts_to<atom::commit>, caf::reacts_to<atom::tick>,
  // Keys (for the keys actor). Each change is a transaction of its own,
  // outside the group commit (a refused change must not roll back other
  // writes), that bumps the key version; answered once committed.
  /// Adds a key (valid from its created_at, "now"): conflict when its
  /// identity has a valid key.
  caf::replies_to<atom::keys, atom::create, model::key_entry>::with<atom::ok>,
  /// Deletes every key of an identity: how many; not_found when it had none.
  caf::replies_to<atom::keys, atom::revoke, std::string>::with<uint32_t>,
  /// Rotates at the new key's created_at: the identity's valid keys expire at
  /// the given time, the new key (answered with its role, the newest valid
  /// key's) is added; not_found when the identity has no valid key.
  caf::replies_to<atom::keys, atom::rotate, model::key_entry, model::millis>::with<model::key_entry>,
  /// The keys valid at the given time, without secrets (sorted by id, newest first).
  caf::replies_to<atom::keys, atom::list, model::millis>::with<std::vector<model::key_info>>,
  /// The keys valid at the given time with their key version.
  caf::replies_to<atom::keys, atom::load, model::millis>::with<model::key_table>,
  /// The stored key version (changes with every key change, whichever process made it).
  caf::replies_to<atom::keys, atom::version>::with<uint64_t>,
  // Audit. Records of answered actions travel in write batches (model::put_audit)
  // and are durable before the action is acknowledged; the records of each
  // commit (with their seq) go to the transport, which serves GET /audit.
  /// A refused request's record, best effort: never acknowledged, committed
  /// with the next commit or within the health flush interval.
  caf::reacts_to<atom::audit, model::audit_record>,
  /// A page of the audit log (GET /audit beyond what the transport holds).
  caf::replies_to<atom::audit, model::audit_query>::with<model::audit_page>,
  /// A page of node-state history (after committing what is pending).
  caf::replies_to<atom::history, model::history_query>::with<model::history_page>,
  /// Drops history older than the configured age (hourly).
  caf::reacts_to<atom::trim>>;

// -- artifacts -------------------------------------------------------------------------

/// The artifact store: files beside the database, written atomically, with
/// their SHA-256; the only code that touches that directory. In a cluster
/// the files are this member's copies of the artifacts in the shared store.
using artifact_store_actor = caf::typed_actor<
  /// Stores an upload (replacing a previous version atomically).
  caf::replies_to<atom::upload, artifact_upload>::with<artifact_info>,
  /// An artifact's contents for serving (mapped, shared); not_found if absent.
  caf::replies_to<atom::get, std::string>::with<artifact_blob>,
  /// An artifact's description; not_found if absent.
  caf::replies_to<atom::info, std::string>::with<artifact_info>,
  /// Every artifact, sorted by name.
  caf::replies_to<atom::list>::with<std::vector<artifact_info>>,
  /// Deletes an artifact (its file and description); not_found if absent.
  caf::replies_to<atom::remove, std::string>::with<atom::ok>,
  /// Brings the copies in step with the shared store (its own timer).
  caf::reacts_to<atom::refresh>>;

// -- nodes ------------------------------------------------------------------------------

/// One actor per registered node: its registration, latest health and liveness.
using node_actor = caf::typed_actor<
  /// A health report (hot path, never answered: the transport already did).
  caf::reacts_to<atom::health, model::health_report, model::millis>,
  /// A re-registration: new registration data, heard of at the given time;
  /// answers with the node's new summary.
  caf::replies_to<atom::enroll, model::node_registration, model::millis>::with<node_summary>,
  /// The node's full record (liveness computed now; read from the store
  /// when first asked for).
  caf::replies_to<atom::get>::with<model::node_record>,
  /// From the registry: the node went quiet and the transport routes
  /// nothing more here; the actor ends.
  caf::reacts_to<atom::close>>;

/// The node registry: registration, the node directory, fleet-wide views.
using registry_actor = caf::typed_actor<
  /// `POST /nodes`: upsert; answers when the registration is durable.
  caf::replies_to<atom::enroll, model::node_registration, peer>::with<registered>,
  /// From the job supervisor: it hears (atom::enroll, job_target) whenever
  /// a node registers (new or again) or comes back online (late joiners).
  caf::reacts_to<atom::observe, caf::actor>,
  /// Decommission: the node's registration and health go (durable before
  /// the answer), its actor is closed, its observers get 4.04; not_found
  /// for an unknown node.
  caf::replies_to<atom::remove, std::string>::with<atom::ok>,
  /// One node's record as its actor has it now (`GET /nodes/<id>/health`);
  /// not_found for an unknown node.
  caf::replies_to<atom::get, std::string>::with<model::node_record>,
  /// From the transport: a health report of a node it has no route for
  /// (request `id`). The registry starts the node's actor, hands it the
  /// report, routes the transport to it, and answers with (health, id,
  /// answer): 2.04, or 4.04 for an unknown node.
  caf::reacts_to<atom::health, uint64_t, model::health_report, model::millis>,
  /// From the transport: it routes nothing more to the node's actor (the
  /// registry asked, see transport_actor); the actor can be closed.
  caf::reacts_to<atom::unroute, std::string>,
  /// From the transport: a copy of /nodes/changes is wanted for request
  /// `id`: the nodes changed since the previous one go back as (changes,
  /// id, node_changes), and the next copy starts from there.
  caf::reacts_to<atom::changes, uint64_t>,
  /// `GET /health`: the fleet's health (the transport fills in timestamp, uptime and
  /// the process's statistics when it serves it).
  caf::replies_to<atom::health>::with<model::fleet_health>,
  /// From node actors: liveness or health changed.
  caf::reacts_to<atom::summary, node_summary>,
  /// Its own timers: telemetry changes of GET /nodes announced since, and
  /// the liveness deadlines that are due (one timer for the whole fleet).
  caf::reacts_to<atom::tick>,
  caf::reacts_to<atom::deadline>,
  /// Its own timer after many node actors were closed: the freed memory
  /// goes back to the system.
  caf::reacts_to<atom::trim>,
  /// From job actors: resolve target_nodes (["all"] or ids); unknown ids are
  /// not_found naming them (4.04 with field target_nodes).
  caf::replies_to<atom::resolve, std::vector<std::string>>::with<std::vector<job_target>>,
  /// The same with `known_only`: unknown ids are left out (a campaign
  /// starting nodes, some of which may have been deleted meanwhile).
  caf::replies_to<atom::resolve, std::vector<std::string>, bool>::with<std::vector<job_target>>,
  /// From job actors at a trigger: the nodes a spec targets (its
  /// target_nodes and target_labels, model::targeted); unknown listed ids
  /// are not_found naming them.
  caf::replies_to<atom::resolve, model::job_spec>::with<std::vector<job_target>>,
  /// An operator's labels for a node (an empty value removes one): the
  /// labels it has now, once durable. A node that starts to match a running
  /// dynamic campaign joins it.
  caf::replies_to<atom::label, std::string, model::string_map>::with<model::string_map>,
  /// A node's version inventory as its agent reports it with a success: it
  /// replaces the known one, durable before the answer.
  caf::replies_to<atom::inventory, std::string, model::string_map>::with<atom::ok>,
  /// Number of registered nodes.
  caf::replies_to<atom::count>::with<uint32_t>,
  /// Number of nodes served here (their actors are active here).
  caf::replies_to<atom::count, atom::node>::with<uint32_t>,
  /// Internal (cluster): read the nodes other members serve from the store.
  caf::reacts_to<atom::refresh>,
  /// Cluster: the live members and their registries (every heartbeat).
  /// Each node is owned by one live member (model::owner_of): its actor
  /// runs there; registrations, reports without a route, reads, label
  /// and inventory changes and deletions of a node another member owns
  /// are handed to that member's registry (once: a request from another
  /// member is served where it arrives). Actors of nodes this member no
  /// longer owns are closed; a fenced member owns none.
  caf::reacts_to<atom::cluster, cluster_view>,
  /// From another member's registry: a report of a node this member owns
  /// (its sender had no route for it); answered 2.04, or 4.04 for a node
  /// not registered.
  caf::replies_to<atom::health, model::health_report, model::millis>::with<coap_reply>,
  /// From the transport: /nodes/<id>/health has observers here (true: the
  /// first came; false: the last left). Every change of the node (a
  /// report, a registration, labels, inventory, liveness, a deletion) is
  /// then announced to the transport as (changed, node_health id), also
  /// one its owner took on another member (it relays them, see watch).
  caf::reacts_to<atom::observe, std::string, bool>,
  /// From another member's registry: it has observers of the node's health
  /// (true) or no longer (false); the owner relays the node's changes to it
  /// as (changed, id) while it owns the node. A member re-sends its watches
  /// to the new owners when ownership moves.
  caf::reacts_to<atom::watch, std::string, bool>,
  /// From the owner's registry: a node watched here changed.
  caf::reacts_to<atom::changed, std::string>>;

// -- update jobs ----------------------------------------------------------------------

/// One actor per job: its targets, node states, status and deadline.
using job_actor = caf::typed_actor<
  /// Trigger: resolve targets, mark them pending, persist, answer, notify agents.
  caf::replies_to<atom::install, peer>::with<model::job_record>,
  /// Current state.
  caf::replies_to<atom::get>::with<model::job_record>,
  /// The job as `GET /updates` lists it (JSON), encoded once per change: a
  /// listing costs each job its summary, not a copy of its node states.
  caf::replies_to<atom::listing>::with<std::string>,
  /// An agent's step report; answers when durable.
  caf::replies_to<atom::report, model::update_report>::with<atom::ok>,
  /// Cancel: the job is cancelled and every node that has not finished is
  /// told so (queued work dropped; running work stopped when `force`); a
  /// node becomes cancelled only on its agent's report. A cancelled job may
  /// be cancelled again with force.
  caf::replies_to<atom::cancel, bool /*force*/, peer>::with<model::job_record>,
  /// Retry: failed, timed-out and skipped nodes get another attempt (the
  /// campaign starts them).
  caf::replies_to<atom::retry, peer>::with<model::job_record>,
  /// A campaign action: "pause", "resume" (a running job), "close" (a
  /// dynamic one stops taking late joiners).
  caf::replies_to<atom::action, std::string, peer>::with<model::job_record>,
  /// The campaign's timer armed for `at`: a soak ended, the window opened, a
  /// retry is due (a timer superseded by another is ignored).
  caf::reacts_to<atom::tick, model::millis>,
  /// A node registered or came back online: a running job starts it again
  /// if it skipped it; a dynamic campaign takes it if it matches.
  caf::reacts_to<atom::enroll, job_target>,
  /// A node was deleted: its unfinished entry becomes skipped.
  caf::reacts_to<atom::forget, std::string>,
  /// From the transport: the agent took the cancel (true) or not.
  caf::reacts_to<atom::cancel, std::string, bool, std::string>,
  /// Delete the job from the store unless it is running (then a bad_request);
  /// afterwards the actor answers not_found until its supervisor ends it.
  caf::replies_to<atom::remove, peer>::with<atom::ok>,
  /// From the transport: the agent answered the notification (true) or not.
  caf::reacts_to<atom::notified, std::string, bool, std::string>,
  /// The job's install deadline passed.
  caf::reacts_to<atom::deadline>,
  /// After a restart: re-notify nodes that were never reached.
  caf::reacts_to<atom::resume>>;

/// The update-job supervisor: creates jobs, owns the job directory, routes.
using job_supervisor_actor = caf::typed_actor<
  caf::replies_to<atom::create, model::job_spec, peer>::with<model::job_record>,
  caf::replies_to<atom::install, std::string, peer>::with<model::job_record>,
  caf::replies_to<atom::status, std::string>::with<model::job_record>,
  caf::replies_to<atom::report, model::update_report, peer>::with<atom::ok>,
  caf::replies_to<atom::cancel, std::string, bool /*force*/, peer>::with<model::job_record>,
  caf::replies_to<atom::retry, std::string, peer>::with<model::job_record>,
  /// From the registry: a node registered or came back online (handed to
  /// every job that may take it).
  caf::reacts_to<atom::enroll, job_target>,
  /// A node was deleted: every job skips its unfinished entry.
  caf::reacts_to<atom::forget, std::string>,
  /// A campaign action on job `id`: pause, resume, close.
  caf::replies_to<atom::action, std::string, std::string, peer>::with<model::job_record>,
  /// Deletes a job that is not running (its observers get 4.04).
  caf::replies_to<atom::remove, std::string, peer>::with<atom::ok>,
  /// Every job's record, oldest first.
  caf::replies_to<atom::list>::with<std::vector<model::job_record>>,
  /// `GET /updates`: the body, every job's summary oldest first.
  caf::replies_to<atom::listing>::with<std::string>,
  /// From a job actor: its job changed (noted for /updates/changes).
  caf::reacts_to<atom::changed, std::string>,
  /// `GET /updates/changes`: the jobs changed since the previous copy (each
  /// as GET /updates lists it, a deleted one as {"job_id","deleted":true}).
  caf::replies_to<atom::changes>::with<std::string>,
  /// The jobs not yet finished (created or in progress) naming an artifact.
  caf::replies_to<atom::uses, std::string>::with<std::vector<model::job_record>>,
  caf::replies_to<atom::count>::with<uint32_t>,
  /// From the membership actor, every heartbeat: the live members. The
  /// supervisor runs the jobs rendezvous hashing gives this member (taking
  /// them over through the store, actors/server/job_cluster.cpp), hands
  /// the others' requests to their members, and stops every job when
  /// fenced.
  caf::reacts_to<atom::cluster, cluster_view>,
  /// The jobs this member runs, as GET /updates lists them (another
  /// member's fleet-wide listing).
  caf::replies_to<atom::listing, atom::cluster>::with<std::vector<job_part>>,
  /// From another member: the named jobs among those this member runs, as
  /// GET /updates lists them (the others left out): that member's copy of
  /// /updates/changes.
  caf::replies_to<atom::listing, std::vector<std::string>>::with<std::vector<job_part>>,
  /// From another member's supervisor: a job it runs changed (false) or was
  /// deleted (true). Observers here hear of it, and /updates/changes here
  /// lists it.
  caf::reacts_to<atom::changed, std::string, bool>>;

// -- system ---------------------------------------------------------------------------

/// The system actor: `GET /system`, `POST /system` actions.
using system_actor = caf::typed_actor<
  caf::replies_to<atom::info>::with<model::system_info>,
  caf::replies_to<atom::status>::with<model::system_status>,
  /// restart / shutdown: answers when allowed; the transport stops the
  /// process after the response has left. forbidden when disabled.
  caf::replies_to<atom::action, model::system_action, peer>::with<atom::ok>>;

// -- keys ------------------------------------------------------------------------------

/// The keys actor: the identities' pre-shared keys (stored through the
/// persistence actor). It hands the valid ones to the transport at start,
/// after each change it makes, and within a second of a change made by
/// `coapfleet-server keys` in another process or of a rotated key's expiry.
using keys_actor = caf::typed_actor<
  /// Adds a key for an identity without one: the new key with its secret
  /// (the only answer that carries it). bad_request for a bad id or role,
  /// conflict when the identity has a valid key.
  caf::replies_to<atom::create, std::string, model::role>::with<model::key_entry>,
  /// The valid keys, without secrets, sorted by id, newest first.
  caf::replies_to<atom::list>::with<std::vector<model::key_info>>,
  /// Revokes every key of an identity at once: how many went; not_found
  /// when it had none.
  caf::replies_to<atom::revoke, std::string>::with<uint32_t>,
  /// Rotates an identity's key: a new key with the same role (answered with
  /// its secret); the previous keys keep working for the grace period (in
  /// seconds, 0..model::max_grace_seconds). not_found without a valid key.
  caf::replies_to<atom::rotate, std::string, int64_t>::with<model::key_entry>,
  /// Check timer: reloads when the stored key version changed or a rotated
  /// key's grace period ended.
  caf::reacts_to<atom::tick>>;

// -- transport ----------------------------------------------------------------------------

/// What the server's transport (an actor_companion on the libcoap thread)
/// accepts. It serves every read from the representations it holds (asking
/// the gateway for a fresh one after a change) and never waits for an actor.
using transport_actor = caf::typed_actor<
  /// A node actor is active for node_id: PUT /health for it is routed there
  /// (a report for a node without a route goes to the registry).
  caf::reacts_to<atom::route, std::string, node_actor>,
  /// The node went quiet: drop its route, then tell the registry (unroute, id).
  caf::reacts_to<atom::unroute, std::string>,
  /// The registry's answer to a PUT /health it was handed (request `id`).
  caf::reacts_to<atom::health, uint64_t, coap_reply>,
  /// The nodes changed for copy `id` of /nodes/changes (the reader renders them).
  caf::reacts_to<atom::changes, uint64_t, node_changes>,
  /// Send POST /updates/available to an agent and tell `job` how it went
  /// with (notified, node_id, ok, detail).
  caf::reacts_to<atom::notify, job_actor, std::string /*ip*/, uint16_t /*port*/,
                 model::update_notification>,
  /// The answer to request `id` (from the gateway): a CoAP answer, or a
  /// representation the transport completes when it serves it.
  caf::reacts_to<atom::reply, uint64_t, coap_reply>,
  caf::reacts_to<atom::reply, uint64_t, model::fleet_health>,  ///< timestamp, uptime, server stats filled when served
  caf::reacts_to<atom::reply, uint64_t, model::system_info>,   ///< timestamp and uptime filled when served
  /// GET /nodes from the reader: a page (or one node) for request `id`;
  /// the first chunk of a whole listing for request `id`; later chunks.
  caf::reacts_to<atom::listing, uint64_t, coap_reply>,
  caf::reacts_to<atom::listing, uint64_t, listing_chunk>,
  caf::reacts_to<atom::more, listing_chunk>,
  /// An artifact exists (or was replaced): serve /artifacts/<name> from
  /// these contents (the store's mapping of its file).
  caf::reacts_to<atom::artifact, artifact_blob>,
  /// An artifact was deleted: GET /artifacts/<name> answers 4.04.
  caf::reacts_to<atom::remove, std::string>,
  /// A job exists: serve (and let clients observe) /updates/<id>/status.
  caf::reacts_to<atom::route, std::string, job_actor>,
  /// A job was deleted: its resources go, observers get 4.04.
  caf::reacts_to<atom::forget, std::string>,
  /// A resource went (a deleted node's health): its observers get 4.04.
  caf::reacts_to<atom::forget, resource>,
  /// A resource's representation changed (see urgency).
  caf::reacts_to<atom::changed, resource, urgency>,
  /// The valid keys (from the keys actor, at start and after every change,
  /// also one made by `coapfleet-server keys` while the server runs): DTLS
  /// handshakes use them from now on, and GET /keys lists them (never a secret).
  caf::reacts_to<atom::keys, model::key_table>,
  /// The newest audit records (newest first; at start, from the persistence
  /// actor): GET /audit is cut from them; `next` 0 when that is all there is.
  caf::reacts_to<atom::audit, model::audit_page>,
  /// Audit records just committed (oldest first), before the actions they
  /// record are acknowledged.
  caf::reacts_to<atom::audit, std::vector<model::audit_record>>,
  /// The persistence actor has taken this many health reports so far (a
  /// running count): the reports answered but not yet taken are the
  /// backlog the transport sheds PUT /health on.
  caf::reacts_to<atom::absorbed, uint64_t>>;

/// The reader (actors/server/reader.hpp): GET /nodes read from the database,
/// on connections of its own; its answers go to the transport.
using reader_actor = caf::typed_actor<
  /// A page, or the nodes a filter leaves, as (listing, id, coap_reply).
  caf::reacts_to<atom::list, uint64_t, model::nodes_query, model::millis>,
  /// A whole listing (status filter optional) from a snapshot taken now:
  /// (listing, id, listing_chunk) with its first chunk ...
  caf::reacts_to<atom::open, uint64_t, model::nodes_query, model::millis>,  ///< its status, health
  /// ... and (more, listing_chunk) with the next one of that stream.
  caf::reacts_to<atom::more, uint64_t>,
  /// The stream is no longer read.
  caf::reacts_to<atom::close, uint64_t>,
  /// The whole listing as one body, for observers: (reply, id, coap_reply).
  caf::reacts_to<atom::get, uint64_t, model::millis>,
  /// A copy of /nodes/changes: those nodes as GET /nodes has them, as
  /// (reply, id, coap_reply).
  caf::reacts_to<atom::changes, uint64_t, node_changes, model::millis>,
  caf::reacts_to<atom::tick>>;

/// The server's gateway: turns a typed request of the transport into a
/// request to the owning actor and the typed answer (or error) into a
/// coap_reply; renders representations. Every answer goes to the transport
/// as (reply, id, ...).
using gateway_actor = caf::typed_actor<
  caf::reacts_to<atom::enroll, uint64_t, model::node_registration, peer>,  ///< POST /nodes
  caf::reacts_to<atom::create, uint64_t, model::job_spec, peer>,           ///< POST /updates
  caf::reacts_to<atom::install, uint64_t, std::string, peer>,
  caf::reacts_to<atom::report, uint64_t, model::update_report, peer>,
  caf::reacts_to<atom::cancel, uint64_t, std::string, bool /*force*/, peer>,
  caf::reacts_to<atom::retry, uint64_t, std::string, peer>,
  /// POST /updates {"action": "pause" | "resume" | "close", "job_id"}
  caf::reacts_to<atom::action, uint64_t, std::string, std::string, peer>,
  caf::reacts_to<atom::remove, uint64_t, std::string, peer>,  ///< delete a job
  /// DELETE /nodes/<id>: decommission (access::manage_nodes): the node goes,
  /// its unfinished job entries become skipped, its keys are revoked.
  caf::reacts_to<atom::forget, uint64_t, std::string, peer>,
  /// `POST /nodes {"action":"label"}`: an operator's labels for a node.
  caf::reacts_to<atom::label, uint64_t, std::string, model::string_map, peer>,
  /// GET /updates/<job>/spec[?node_id=]: the job's spec for one of its target
  /// nodes (the node's id from the query, else the sender's node identity):
  /// a node reads only its own (4.03 otherwise), a job without a part for
  /// the node is 4.03 to that node and 4.04 to anyone else.
  caf::reacts_to<atom::job, uint64_t, std::string, std::string, peer>,
  /// POST /system: status (answered with the database's state now), restart, shutdown.
  caf::reacts_to<atom::action, uint64_t, model::system_action, peer>,
  /// GET /cluster: the members as this member sees them (access::read_fleet).
  caf::reacts_to<atom::cluster, uint64_t, peer>,
  caf::reacts_to<atom::upload, uint64_t, artifact_upload, peer>,  ///< PUT /artifacts/<name>
  /// DELETE /artifacts/<name> (access::manage_artifacts): 4.09 while an
  /// unfinished job names it.
  caf::reacts_to<atom::artifact, uint64_t, std::string, peer>,
  /// POST /keys (add, list, revoke, rotate) and GET /keys (a list; the
  /// transport lists from its key table itself once it has one): operators
  /// only (access::manage_keys: 4.01 without an identity, 4.03 for another role).
  caf::reacts_to<atom::keys, uint64_t, model::key_request, peer>,
  /// GET /audit for a page older than the transport holds: operators only
  /// (access::read_audit), read from the store.
  caf::reacts_to<atom::audit, uint64_t, model::audit_query, peer>,
  /// GET /nodes/<id>/history, GET /updates/<job>/history: a page of node
  /// states in jobs, newest first (access::read_fleet), from the store.
  caf::reacts_to<atom::history, uint64_t, model::history_query, peer>,
  /// A fresh representation of a resource.
  caf::reacts_to<atom::observe, uint64_t, resource>,
  /// Internal: time to ping the database (its state is part of GET /health);
  /// the oldest open requests time out.
  caf::reacts_to<atom::ping>,
  caf::reacts_to<atom::deadline>>;

// -- the worker agent --------------------------------------------------------------------

/// The metrics actor: samples the node every interval, hands each sample to
/// the reporter and the transport (which serves GET /health from it).
using metrics_actor = caf::typed_actor<
  /// The latest sample.
  caf::replies_to<atom::get>::with<model::health_report>,
  /// Facts for GET /system (without the reporter's and installer's parts).
  caf::replies_to<atom::info>::with<agent_system_info>,
  /// Sampling timer.
  caf::reacts_to<atom::tick>>;

/// The reporter: registers with the server, sends health, and delivers job
/// step reports in order (kept on disk until the server took them).
using reporter_actor = caf::typed_actor<
  /// A new health sample to send.
  caf::reacts_to<atom::health, model::health_report>,
  /// A job step to deliver (queued, persisted, in order).
  caf::reacts_to<atom::report, model::update_report>,
  /// Whether the server currently knows this node.
  caf::replies_to<atom::status>::with<bool>,
  /// Answers of the transport to this actor's requests.
  caf::reacts_to<atom::response, uint64_t, client_response>,
  /// Retry timer (backoff).
  caf::reacts_to<atom::tick>,
  /// The server asked for a pause in health reports (5.03 + Max-Age) and it is over.
  caf::reacts_to<atom::resume>>;

/// The installer: accepts update notifications (the job's spec fetched from
/// the server and journaled before the 2.04), runs one job at a time
/// (verify its signature, download, verify, install) and reports each step.
using installer_actor = caf::typed_actor<
  /// POST /updates/available (the ids; the spec is never taken from it): ok
  /// once the spec fetched from the server is journaled (or the job was
  /// known); not_found when the server has no such job for this node.
  caf::replies_to<atom::notify, model::update_notification>::with<atom::ok>,
  /// The server cancels run (job, attempt) on this node: queued work is
  /// dropped and the download of the current job stopped (reported
  /// cancelled); an install that runs is stopped (its process group
  /// TERMed, KILLed after a grace period) only when `force`, else it runs
  /// to its end and reports what happened. A run not heard of yet will
  /// not run. Answers what became of it: "cancelled", "stopping",
  /// "running" or "finished" (it had ended; its report stands).
  caf::replies_to<atom::cancel, std::string, uint32_t, bool>::with<std::string>,
  /// The agent stops: the running install's process group gets SIGTERM
  /// (answered with it, 0 when none runs); its job stays journaled as
  /// interrupted and nothing more starts.
  caf::replies_to<atom::stop>::with<int32_t>,
  /// A forced cancel's grace period for handler run `id` is over: its
  /// process group gets SIGKILL if the run still goes.
  caf::reacts_to<atom::cancel, uint64_t>,
  /// Current job id (empty when idle) and the number queued.
  caf::replies_to<atom::status>::with<std::string, uint32_t>,
  /// Block answers of the transport during a download.
  caf::reacts_to<atom::response, uint64_t, client_response>,
  /// A handler run finished (from its worker): ok, result code, message, and
  /// whether a failed health check rolled the install back.
  /// Heard only from the current run's worker: a late result of a run the
  /// watchdog abandoned is ignored.
  caf::reacts_to<atom::report, bool, int32_t, std::string, bool>,
  /// From the current run's worker: the process group of the child it
  /// started (0 once reaped), which the watchdog kills.
  caf::reacts_to<atom::install, int32_t>,
  /// The watchdog of handler run `id` (its timeout plus a grace period):
  /// if that run has not reported, it failed.
  caf::reacts_to<atom::deadline, uint64_t>,
  /// Retry timer for downloads.
  caf::reacts_to<atom::tick>,
  /// The deadline of spec fetch `id`: still unanswered, its notifications
  /// are answered 5.03 and nothing is journaled.
  caf::reacts_to<atom::job, uint64_t>>;

/// The agent's gateway: typed requests of the agent's transport to the
/// agent's actors, answers back as coap_reply.
using agent_gateway_actor = caf::typed_actor<
  /// GET /system
  caf::reacts_to<atom::info, uint64_t>,
  /// POST /updates/available; obeyed from the agent's own server only
  /// (others get 4.03 and nothing runs).
  caf::reacts_to<atom::notify, uint64_t, model::update_notification, peer>,
  /// POST /updates/available whose body the transport could not take: the
  /// transport's answer (4.00, 4.13) goes to the agent's server, 4.03 to
  /// anyone else.
  caf::reacts_to<atom::notify, uint64_t, coap_reply, peer>>;

/// What the agent's transport accepts.
using agent_transport_actor = caf::typed_actor<
  /// Send a CoAP request; the answer goes back to the sender as
  /// (response, id, client_response).
  caf::reacts_to<atom::request, uint64_t, client_request>,
  /// The latest health sample, served by GET /health.
  caf::reacts_to<atom::health, model::health_report>,
  /// The answer to a deferred request `id`.
  caf::reacts_to<atom::reply, uint64_t, coap_reply>>;

}  // namespace coapfleet
