// Internal to the gateway (gateway.cpp: requests, audit, request timeouts;
// gateway_reads.cpp: representations, keys, the audit log, job specs).
#pragma once

#include <chrono>
#include <deque>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "actors/server/gateway.hpp"
#include "common/log.hpp"
#include "common/token_bucket.hpp"

namespace coapfleet::server::gateway_detail {

struct gateway_state {
  static inline const char* name = "gateway";
  gateway_config cfg;
  gateway_peers peers;
  /// The database answered the last ping (GET /health's server.database).
  bool database_ok = true;
  /// Job creations per principal (gateway_config::jobs_per_minute).
  std::unordered_map<std::string, common::token_bucket> job_budgets;
  /// Requests of the transport not yet answered, and when each times out
  /// (in arrival order: they share one timeout). One timer for all of them:
  /// in CAF 0.17 a request timeout is a timer that lives its full time even
  /// after the answer came (a million registrations left a million timers
  /// firing for 30 s after the last one), so requests to the owners are
  /// made without one and this bounds them.
  std::unordered_set<uint64_t> open;
  std::deque<std::pair<caf::actor_clock::time_point, uint64_t>> expiry;
  bool expiry_armed = false;
};

using self_ptr = gateway_actor::stateful_pointer<gateway_state>;

/// Sends the answer to request `id`, unless it was answered already (it
/// timed out: the transport has its 5.03).
template <class T>
void answer(self_ptr self, uint64_t id, T&& x) {
  if (self->state.open.erase(id) == 0)
    return;
  self->send(self->state.peers.transport, atom::reply::value, id, std::forward<T>(x));
}

/// A request of the transport: answered by `answer`, or 5.03 when its
/// owners have not answered within request_timeout.
void track(self_ptr self, uint64_t id);
/// The one timer: the requests that timed out are answered 5.03.
void expire(self_ptr self);

// -- audit (README, Security: Audit) ---------------------------------------------------

/// The audit hook (gateway.cpp): the answer of every operator action and of
/// every refused change goes through here.
void answer_audited(self_ptr self, uint64_t id, const peer& from, const char* action,
                    const std::string& target, coap_reply r);

/// The handler of an owner's error: its CoAP answer.
inline 
auto failure(self_ptr self, uint64_t id) {
  return [self, id](caf::error& err) {
    if (err.category() != api_category)
      CF_WARN("gateway", "request ", id, " failed: ", caf::to_string(err));
    answer(self, id, error_reply(err));
  };
}

/// failure() for an audited action: the owner's error is the outcome.
inline auto audited_failure(self_ptr self, uint64_t id, peer from, const char* action,
                     std::string target) {
  return [=](caf::error& err) {
    if (err.category() != api_category)
      CF_WARN("gateway", "request ", id, " failed: ", caf::to_string(err));
    answer_audited(self, id, from, action, target, error_reply(err));
  };
}


/// The access policy for a request: true when `from` may; else the
/// request is answered 4.01 / 4.03 (audited as `action`) and nothing else happens.
bool permitted(self_ptr self, uint64_t id, const peer& from, model::access a,
               const char* action, const std::string& target = {});

// gateway_reads.cpp
void render(self_ptr self, uint64_t id, const resource& r);
void watch_database(self_ptr self);
void manage_keys(self_ptr self, uint64_t id, model::key_request& req, const peer& from);
void read_audit(self_ptr self, uint64_t id, const model::audit_query& q, const peer& from);
/// GET /nodes/<id>/history and /updates/<job>/history, from the store.
void read_history(self_ptr self, uint64_t id, const model::history_query& q, const peer& from);

// gateway_admin.cpp
void cancel_job(self_ptr self, uint64_t id, std::string job_id, bool force, peer from);
/// pause, resume, close.
void campaign_action(self_ptr self, uint64_t id, std::string job_id, std::string action,
                     peer from);
void retry_job(self_ptr self, uint64_t id, std::string job_id, peer from);
/// DELETE /artifacts/<name>: 4.09 while an unfinished job names it.
void delete_artifact(self_ptr self, uint64_t id, std::string name, peer from);
/// DELETE /nodes/<id>: decommission.
void delete_node(self_ptr self, uint64_t id, std::string node, peer from);
void label_node(self_ptr self, uint64_t id, std::string node, model::string_map labels,
                peer from);
void job_for_node(self_ptr self, uint64_t id, const std::string& job_id, std::string node,
                  const peer& from);

}  // namespace coapfleet::server::gateway_detail
