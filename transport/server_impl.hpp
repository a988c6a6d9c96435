// Internal state of the server transport, shared by its setup
// (server_transport.cpp), its representations (server_representations.cpp)
// and its resource handlers (server_resources.cpp, server_artifacts.cpp).
#pragma once

#include <algorithm>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/clock.hpp"
#include "common/process_stats.hpp"
#include "model/queries.hpp"
#include "transport/budget.hpp"
#include "transport/runtime.hpp"
#include "transport/server_transport.hpp"

namespace coapfleet::transport {

/// The latest representation of one resource, as the transport serves it.
/// Reads never wait for an actor: a GET gets the latest copy at once. After a
/// change the transport asks the gateway for a fresh copy; `control` changes
/// at once, and the acknowledgements answered after them leave only once the
/// new copy is here (see held_reply); `telemetry` changes at most every
/// publish interval. Only a resource that has no copy yet (start-up, or a
/// node's health nobody observes) is answered asynchronously.
struct representation {
  resource key;
  // -- the latest copy (one of these, by kind) -----------------------------------
  coap_reply reply;                                     ///< body in shared_body
  std::optional<model::fleet_health> health;            ///< completed when served
  std::optional<model::system_info> system;             ///< completed when served
  bool has = false;         ///< a copy exists
  bool valid = false;       ///< and nothing changed since it was asked for
  bool warm = false;        ///< kept fresh whether read or not
  /// Asked for with Observe: kept fresh until its last observer has gone
  /// (its registration is answered a loop turn after its copy came).
  bool observe_asked = false;
  bool refreshing = false;  ///< a fresh copy is on its way
  bool again = false;       ///< changed while it was on its way
  int64_t last_refresh = 0;
  int64_t due = -1;          ///< a refresh is scheduled for then (steady ms)
  int64_t render_ms = 0;     ///< how long the last refresh took
  uint64_t version = 0;      ///< counts copies (ETag)
  uint64_t control_mark = 0; ///< control sequence of its latest control change
  uint64_t asked_mark = 0;   ///< control sequence when the refresh on its way was asked
  uint64_t covered = 0;      ///< control sequence the current copy covers
  /// Async requests waiting for a copy, and what each gets from it.
  struct waiter {
    uint64_t id = 0;
    std::function<coap_reply(representation&)> answer;
  };
  std::vector<waiter> waiters;
  bool behind() const { return control_mark > covered; }
};

/// An acknowledgement held until the representations changed before it are
/// fresh (read your writes): released when every control change up to `seq`
/// is covered.
struct held_reply {
  uint64_t id = 0;
  coap_reply reply;
  uint64_t seq = 0;
};

struct server_transport::impl : runtime {
  impl(caf::actor_system& sys, server_transport_config cfg);

  server_transport_config cfg;
  gateway_actor gateway;
  /// Artifacts take up to --max-artifact, everything else --max-payload.
  size_t max_body(std::string_view first_segment) const override {
    return first_segment == "artifacts" ? cfg.max_artifact : cfg.max_payload;
  }
  /// node_id → the node's actor, while it is active (the registry routes
  /// and unroutes); a report for a node without one goes to `registry`.
  std::unordered_map<std::string, node_actor> routes;
  registry_actor registry;
  /// Artifact contents being served (name → the store's mapping and ETag).
  struct served_artifact {
    std::shared_ptr<const shared_bytes> body;
    uint64_t etag = 0;
  };
  std::unordered_map<std::string, served_artifact> artifacts;
  std::unordered_map<std::string, coap_resource_t*> artifact_resources;
  /// Serves /artifacts/<name> from now on (idempotent).
  bool add_artifact_resource(const std::string& name);

  // -- representations (server_representations.cpp) ------------------------------
  std::unordered_map<std::string, representation> reps;  ///< by path
  /// nodes/<id>/health and updates/<id>/status: served by the one
  /// unknown-resource handler, never a libcoap resource each (libcoap 4.3.1
  /// walks every resource on each I/O turn after a change, and on every
  /// session it frees), observed each on its own.
  bool observable_path(const std::string& path) const override;
  /// Someone observes `rep`, or asked to.
  bool observed_rep(const representation& rep) const {
    return rep.observe_asked || observed(path_of(rep.key));
  }
  void first_observed(const std::string& path) override;
  void unobserved(const std::string& path) override;
  std::unordered_set<std::string> behind;  ///< paths whose copy misses a control change
  uint64_t control_seq = 0;
  std::deque<held_reply> held;
  struct asked {
    std::string path;
    int64_t at = 0;
  };
  std::unordered_map<uint64_t, asked> refreshes;  ///< refresh id → what and when
  std::vector<std::string> to_delete;  ///< representations gone (observers get 4.04)
  std::vector<std::string> to_notify;  ///< resources whose observers get the new copy
  std::vector<std::string> artifacts_to_add;
  std::vector<std::string> due_paths;  ///< representations with a refresh scheduled
  int64_t last_trim = 0;
  uint64_t etag_salt = 0;  ///< differs between runs, so ETags of two runs never match
  common::process_sampler process;
  // -- security (server_security.cpp) ----------------------------------------------
  /// From the keys actor: identity → its valid keys, newest first, and role.
  std::unordered_map<std::string, std::vector<std::string>> psk;
  std::unordered_map<std::string, model::role> roles;
  uint64_t keys_version = 0;
  /// The certificate name (the first DNS SAN, else the CN) of each session
  /// whose client showed a certificate from --ca.
  std::unordered_map<const coap_session_t*, std::string> cert_names;
  /// Nodes whose latest request came over a session with their certificate:
  /// they are notified over DTLS with the server's certificate (their
  /// agent's endpoint takes nothing else), the others with their key.
  std::unordered_set<std::string> x509_nodes;
  /// PSK handshakes: which of an identity's keys was offered, so that during
  /// a rotation's grace period a client with the other key is recognised at
  /// its next attempt.
  struct psk_attempt {
    std::string pick;  ///< identity|address
    size_t index = 0;
    bool connected = false;
  };
  std::unordered_map<const coap_session_t*, psk_attempt> attempts;
  std::unordered_map<std::string, size_t> psk_pick;  ///< identity|address → key to offer
  void take_keys(model::key_table table);
  bool setup_dtls(std::string& error);
  void identify(const coap_session_t* session, peer& p) override;
  /// identify(), then option 4209: credentials are taken only over DTLS from
  /// a client without an identity of its own (a session where only the
  /// server showed a certificate); anywhere else, or wrong, they get 4.01.
  bool identify_request(const coap_session_t* session, const coap_pdu_t* request, peer& out,
                        coap_reply& refusal) override;
  /// The role of `user` when `password` is one of its keys (compared in
  /// constant time); false otherwise.
  bool check_credentials(const std::string& user, const std::string& password,
                         model::role& out) const;
  /// The key for a PSK handshake (null: unknown identity).
  const std::string* psk_for(const std::string& identity, coap_session_t* session);
  void session_event(coap_session_t* session, coap_event_t event);
  /// Checks `a` for the request's sender (identify_request); on refusal
  /// fills `refusal` (4.01/4.03).
  bool allowed(coap_session_t* session, const coap_pdu_t* request, model::access a,
               const std::string& target, coap_reply& refusal);
  /// GET /keys as served from `keys` (never a secret): rendered when a table
  /// arrives; null before the first one (then the gateway answers).
  std::shared_ptr<const shared_bytes> keys_listing;
  uint64_t keys_tables = 0;  ///< tables taken so far (the listing's ETag)
  /// GET /keys from a new table (server_resources.cpp).
  void render_keys_listing(const model::key_table& table);
  model::millis started_at = 0;
  // -- audit (server_audit.cpp) -----------------------------------------------------
  /// The newest audit records, encoded, newest first (at most cfg.audit_tail).
  struct audited {
    uint64_t seq = 0;
    std::string json;
  };
  std::deque<audited> audit_tail;
  bool audit_loaded = false;    ///< the persistence actor sent the tail
  bool audit_complete = false;  ///< and the tail holds every stored record
  uint64_t audit_version = 0;   ///< counts changes of the tail (the pages' ETag)
  /// The tail at start (newest first; complete when page.next is 0).
  void take_audit(model::audit_page page);
  /// Records just committed (oldest first).
  void add_audit(std::vector<model::audit_record> records);
  /// A page cut from the tail; false when the tail cannot tell (then the
  /// gateway reads it from the store).
  bool audit_cut(const model::audit_query& q, coap_reply& out);

  /// The representation of `r` (created if it is one the transport keeps).
  representation* find(const resource& r, bool create);
  /// A representation changed (from an actor, or a health report seen here).
  void changed(const resource& r, urgency u);
  void schedule_refresh(representation& rep, bool urgent);
  void refresh(representation& rep);
  /// A fresh copy arrived: store it, notify observers, answer waiters,
  /// release held acknowledgements.
  void refreshed(representation& rep, int64_t asked_at);
  /// A refresh failed (5.xx: its owner timed out or is gone): a copy that
  /// exists stays; waiters get the error; it is asked for again after
  /// `render_retry_ms` (a fleet at rest announces no change that would).
  void render_failed(representation& rep, coap_reply error);
  static constexpr int64_t render_retry_ms = 1000;
  /// The representation a refresh answer `id` is for (null: not a refresh,
  /// or the resource went meanwhile); takes the id out of `refreshes`.
  representation* refresh_of(uint64_t id, int64_t& asked_at);
  /// An answer of the gateway to an async request: sent now, or held.
  void deliver(uint64_t id, coap_reply reply);
  void release_held();
  /// The current answer of a representation (dynamic fields filled now).
  coap_reply current(representation& rep);
  // -- GET /nodes from the reader (server_listing.cpp) ------------------------------
  reader_actor reader;
  /// A whole listing being read block by block by one endpoint (its
  /// address|port|query): the bytes from `base` on, read from the reader's
  /// snapshot `sid` as the client's blocks come near their end.
  struct listing_stream {
    uint64_t sid = 0;
    std::string buffer;
    uint64_t base = 0;
    bool last = false;    ///< the buffer ends the body
    bool asking = false;  ///< a chunk is on its way
    uint64_t etag = 0;
    int64_t used_at = 0;
    struct waiting_block {
      uint64_t id = 0;
      uint32_t num = 0;
      uint8_t szx = 6;
    };
    std::vector<waiting_block> waiting;  ///< blocks asked for before their bytes came
  };
  std::unordered_map<std::string, listing_stream> listings;
  std::unordered_map<uint64_t, std::string> listing_by_sid;
  struct opening_listing {
    std::string key;
    uint8_t szx = 6;
  };
  std::unordered_map<uint64_t, opening_listing> openings;  ///< request id → what it opens
  int64_t listings_swept_at = 0;
  /// GET /nodes: a page or one node (reader), the whole listing for its
  /// observers (a representation), else the whole listing block by block.
  void get_nodes(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                 const coap_string_t* q, coap_pdu_t* resp, const model::nodes_query& query);
  /// Block `num` of `l` as an answer, or false when its bytes are not there yet.
  bool listing_block(listing_stream& l, uint32_t num, uint8_t szx, coap_reply& out);
  void listing_opened(uint64_t id, listing_chunk c);
  void listing_more(listing_chunk c);
  void ask_more(listing_stream& l);
  void sweep_listings(int64_t now);
  /// address|port|query: whose listing a GET /nodes continues.
  static std::string listing_key(const coap_session_t* s, const coap_string_t* q);
  /// `s` reads the whole listing of GET /nodes with query `q` (r: /nodes).
  bool reading_listing(coap_resource_t* r, const coap_session_t* s, const coap_string_t* q) const;
  /// Whole-listing observation is for fleets up to this size; larger ones
  /// are observed a page at a time (GET /nodes?limit=N with Observe).
  static constexpr uint32_t observe_whole_max_nodes = 10000;
  /// A new representation kept fresh from now on (the start, a new job).
  void keep_fresh(const resource& r);
  void forget(const resource& r);

  // -- budgets and plain peers (server_budget.cpp) ---------------------------------
  /// What the transport knows of a plain (non-DTLS) session, worked out at
  /// its first request: who it is, and whether it spends a source budget.
  struct plain_peer {
    peer who;
    source_budgets::address address{};
    bool budgeted = false;
    size_t request_bytes_min = 0;  ///< smallest request seen (amplification bound)
  };
  std::unordered_map<const coap_session_t*, std::unique_ptr<plain_peer>> plain_peers;
  source_budgets budgets;
  int64_t budgets_swept_at = 0;
  /// Every request passes here first: false when it has been answered
  /// (4.29) or dropped because its source is over budget.
  bool admit(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
             const coap_string_t* q, coap_pdu_t* resp);
  plain_peer* plain_peer_of(coap_session_t* s);
  peer who(const coap_session_t* session) override;
  void forget_session(const coap_session_t* session);
  void budget_session_event(coap_session_t* session, coap_event_t event);
  /// DTLS sessions (from their first ClientHello until they go). libcoap
  /// keeps one idle budget for both endpoints and walks every session on
  /// each I/O turn: the budget is --max-idle-sessions plus these (at most
  /// --dtls-idle-sessions + --dtls-handshakes), so a DTLS fleet keeps its
  /// sessions (no handshake per report) while plain peers stay few.
  std::unordered_set<const coap_session_t*> dtls_established;
  void size_idle_budget();
  /// 2.xx bodies to a budgeted source go in blocks of --untrusted-block
  /// bytes (RFC 7252 section 11.3: a small forged request never brings a
  /// large answer); errors stay whole (clients do not follow a block-wise
  /// error, nor a block-wise separate response).
  unsigned answer_block_size(coap_session_t* session) override;
  /// Forgets idle sources and logs refusals, every 10 s (housekeeping).
  void sweep_budgets(int64_t now);
  uint64_t budgets_logged = 0;

  // -- load shedding of PUT /health ------------------------------------------------
  shedder shed;
  coap_reply shed_reply;          ///< the 5.03 with Max-Age, encoded once
  uint64_t health_forwarded = 0;  ///< reports handed to node actors
  /// When each report arrived: the wall clock, but never going back (a
  /// clock stepped back would make new reports look older than stored ones,
  /// which the actors and the store keep out).
  model::millis report_stamp() {
    last_report_at = std::max(last_report_at, now_millis());
    return last_report_at;
  }
  model::millis last_report_at = 0;
  uint64_t health_absorbed = 0;   ///< of those, taken by the persistence actor
  uint32_t health_seen = 0;
  int64_t busy_read_at = 0;       ///< when the shedder last read the socket gauges
  receive_queue queue;            ///< that reading
  int64_t shed_logged_at = 0;
  uint64_t shed_logged_refused = 0;
  uint64_t shed_logged_admitted = 0;
  uint64_t backlog() const {
    return health_forwarded > health_absorbed ? health_forwarded - health_absorbed : 0;
  }
  /// True when this PUT /health is to be refused (counts it, logs now and then).
  bool shed_health();

  /// The deferred libcoap work; see runtime::housekeeping.
  int64_t do_housekeeping(bool& worked);

  void send_notification(job_actor job, const std::string& ip, uint16_t port,
                         const model::update_notification& note);
  bool register_resources();
};

inline server_transport::impl* server_of(coap_session_t* session) {
  return static_cast<server_transport::impl*>(runtime_of(session));
}

}  // namespace coapfleet::transport
