// The gateway's reads: representations for the transport, the key table,
// older audit pages and a node's part of a job (see gateway_internal.hpp).
#include <algorithm>

#include "actors/server/gateway_internal.hpp"
#include "common/clock.hpp"
#include "model/json.hpp"

namespace coapfleet::server::gateway_detail {

/// A fresh representation of `r`, from the actor that owns it.
void render(self_ptr self, uint64_t id, const resource& r) {
  auto& peers = self->state.peers;
  switch (r.kind) {
    case resource_kind::health:
      self->request(peers.registry, caf::infinite, atom::health::value)
        .then(
          [self, id](model::fleet_health& h) {
            h.server.database = self->state.database_ok ? "connected" : "disconnected";
            answer(self, id, std::move(h));
          },
          failure(self, id));
      return;
    case resource_kind::nodes:
    case resource_kind::node_changes:
      break;  // read from the database by the reader, which the transport asks
    case resource_kind::updates:
      self->request(peers.jobs, caf::infinite, atom::listing::value)
        .then(
          [self, id](std::string& body) { answer(self, id, json_reply(205, std::move(body))); },
          failure(self, id));
      return;
    case resource_kind::job_changes:
      self->request(peers.jobs, caf::infinite, atom::changes::value)
        .then(
          [self, id](std::string& body) { answer(self, id, json_reply(205, std::move(body))); },
          failure(self, id));
      return;
    case resource_kind::job_status:
      self->request(peers.jobs, caf::infinite, atom::status::value, r.id)
        .then(
          [self, id](model::job_record& j) {
            answer(self, id, json_reply(205, model::encode_job_status(j)));
          },
          failure(self, id));
      return;
    case resource_kind::node_health:
      self->request(peers.registry, caf::infinite, atom::get::value, r.id)
        .then(
          [self, id](model::node_record& node) {
            answer(self, id, json_reply(205, model::encode_node_health(node)));
          },
          [self, id, node = r.id](caf::error& err) {
            if (err.category() == api_category
                && err.code() == static_cast<uint8_t>(api_errc::not_found))
              return answer(self, id,
                            json_reply(404, model::encode_error(
                                              "node not registered",
                                              {{"path", "/nodes/" + node + "/health"},
                                               {"node_id", node}})));
            failure(self, id)(err);
          });
      return;
    case resource_kind::system:
      self->request(peers.system, caf::infinite, atom::info::value)
        .then([self, id](model::system_info& s) { answer(self, id, std::move(s)); },
              failure(self, id));
      return;
    case resource_kind::artifacts:
      self->request(peers.artifacts, caf::infinite, atom::list::value)
        .then(
          [self, id](std::vector<artifact_info>& all) {
            answer(self, id, json_reply(205, model::encode_artifacts(all)));
          },
          failure(self, id));
      return;
  }
  answer(self, id,
         json_reply(404, model::encode_error("no such resource", {{"path", path_of(r)}})));
}

/// Pings the database now and then; a change of its state changes GET /health.
void watch_database(self_ptr self) {
  self->request(self->state.peers.persistence, std::chrono::seconds(5), atom::ping::value)
    .then(
      [self](bool ok) {
        if (ok != self->state.database_ok) {
          CF_WARN("gateway", "database ", ok ? "answers again" : "does not answer");
          self->state.database_ok = ok;
          self->send(self->state.peers.transport, atom::changed::value,
                     resource{resource_kind::health, {}}, urgency::telemetry);
        }
      },
      [self](caf::error&) {
        if (self->state.database_ok) {
          CF_WARN("gateway", "database does not answer");
          self->state.database_ok = false;
          self->send(self->state.peers.transport, atom::changed::value,
                     resource{resource_kind::health, {}}, urgency::telemetry);
        }
      });
  self->delayed_send(self, self->state.cfg.database_ping_interval, atom::ping::value);
}

/// An operator's key request (GET and POST /keys): authorized here, from
/// the identity the transport established, never from the body.
void manage_keys(self_ptr self, uint64_t id, model::key_request& req, const peer& from) {
  auto who = from.principal();
  // A listing is a read: not audited. Key material is never in a record.
  const char* action = req.action == model::key_action::add      ? "key.add"
                       : req.action == model::key_action::revoke ? "key.revoke"
                       : req.action == model::key_action::rotate ? "key.rotate"
                                                                 : nullptr;
  if (auto refused = check_access(from, model::access::manage_keys)) {
    CF_INFO("gateway", "keys ", model::to_string(req.action), " refused to ",
            who.identity.empty() ? from.address : who.identity, " (", model::to_string(who.r),
            ")");
    if (action)
      return answer_audited(self, id, from, action, req.id, error_reply(refused));
    return answer(self, id, error_reply(refused));
  }
  auto& keys = self->state.peers.keys;
  if (!keys)
    return answer(self, id,
                  error_reply(make_api_error(api_errc::unavailable,
                                             "this server does not manage keys")));
  auto by = who.identity.empty() ? from.address : who.identity;
  CF_INFO("gateway", "keys ", model::to_string(req.action), req.id.empty() ? "" : " ", req.id,
          " by ", by, " (", model::to_string(who.r), ")");
  switch (req.action) {
    case model::key_action::add:
      self->request(keys, caf::infinite, atom::create::value, req.id, req.r)
        .then(
          [self, id, from, ident = req.id](model::key_entry& k) {
            answer_audited(self, id, from, "key.add", ident,
                           json_reply(201, model::encode_key_issued(k)));
          },
          audited_failure(self, id, from, "key.add", req.id));
      return;
    case model::key_action::list:
      self->request(keys, caf::infinite, atom::list::value)
        .then(
          [self, id](std::vector<model::key_info>& all) {
            answer(self, id, json_reply(205, model::encode_keys(all)));
          },
          failure(self, id));
      return;
    case model::key_action::revoke:
      self->request(keys, caf::infinite, atom::revoke::value, req.id)
        .then(
          [self, id, from, ident = req.id](uint32_t n) {
            answer_audited(self, id, from, "key.revoke", ident,
                           json_reply(204, model::encode_message("Keys of " + ident + " revoked ("
                                                                   + std::to_string(n) + ")",
                                                                 {{"id", ident}})));
          },
          audited_failure(self, id, from, "key.revoke", req.id));
      return;
    case model::key_action::rotate:
      self->request(keys, caf::infinite, atom::rotate::value, req.id, req.grace_seconds)
        .then(
          [self, id, from, ident = req.id, grace = req.grace_seconds](model::key_entry& k) {
            answer_audited(self, id, from, "key.rotate", ident,
                           json_reply(201, model::encode_key_issued(k, grace)));
          },
          audited_failure(self, id, from, "key.rotate", req.id));
      return;
  }
}

/// GET /audit pages older than the transport holds, from the store.
void read_audit(self_ptr self, uint64_t id, const model::audit_query& q, const peer& from) {
  if (auto refused = check_access(from, model::access::read_audit))
    return answer(self, id, error_reply(refused));
  self->request(self->state.peers.persistence, caf::infinite,
                atom::audit::value, q)
    .then(
      [self, id](model::audit_page& page) {
        // A separate response must fit one datagram (libcoap 4.3.1's
        // coap-client cannot follow a block-wise body that starts in one).
        answer(self, id, audit_page_reply(std::move(page), self->state.cfg.audit_page_bytes));
      },
      failure(self, id));
}

void read_history(self_ptr self, uint64_t id, const model::history_query& q, const peer& from) {
  if (auto refused = check_access(from, model::access::read_fleet))
    return answer(self, id, error_reply(refused));
  self->request(self->state.peers.persistence, caf::infinite, atom::history::value, q)
    .then(
      [self, id, q](model::history_page& page) {
        // A separate response: it must fit one datagram (see read_audit).
        answer(self, id, history_page_reply(q, std::move(page),
                                            self->state.cfg.audit_page_bytes));
      },
      failure(self, id));
}

/// GET /updates/<job>/spec for `node`: authorized (access::read_job for
/// that node), then the job's spec if the node is one of its targets.
void job_for_node(self_ptr self, uint64_t id, const std::string& job_id, std::string node,
                  const peer& from) {
  bool as_node = from.role == model::role::node;
  if (node.empty() && as_node)
    node = from.identity;
  if (node.empty())
    return answer(self, id,
                  json_reply(400, model::encode_error("query node_id required: the node whose "
                                                      "part of the job to read",
                                                      {{"field", "node_id"}})));
  if (!permitted(self, id, from, model::access::read_job, "job.spec", node))
    return;
  self->request(self->state.peers.jobs, caf::infinite, atom::status::value,
                job_id)
    .then(
      [self, id, node, as_node, from](model::job_record& j) {
        auto part = std::find_if(j.nodes.begin(), j.nodes.end(),
                                 [&](const model::node_job_state& n) { return n.node_id == node; });
        if (part == j.nodes.end()) {
          CF_INFO("gateway", "refused job ", j.job_id, " to ",
                  from.identity.empty() ? from.address : from.identity, ": not a target (", node,
                  ")");
          auto what = "job " + j.job_id + " is not for node " + node;
          return answer(self, id,
                        json_reply(as_node ? 403 : 404,
                                   model::encode_error(what, {{"field", "job_id"},
                                                              {"job_id", j.job_id},
                                                              {"node_id", node}})));
        }
        model::update_notification mine;
        mine.job_id = j.job_id;
        mine.node_id = node;
        mine.attempt = part->attempt;  // a retry is another run on the agent
        mine.spec = std::move(j.spec);
        mine.spec.target_nodes.clear();  // an agent needs its own part only
        answer(self, id, json_reply(205, model::encode_node_job(mine)));
      },
      failure(self, id));
}


}  // namespace coapfleet::server::gateway_detail
