#include "actors/server/gateway.hpp"
#include "actors/server/gateway_internal.hpp"
#include "actors/server/cluster.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <unordered_map>
#include <unordered_set>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "common/token_bucket.hpp"
#include "model/json.hpp"
#include "model/rules.hpp"


namespace coapfleet::server {

namespace gateway_detail {

/// Arms the one timer for the oldest request still open.
static void arm_expiry(self_ptr self) {
  auto& st = self->state;
  while (!st.expiry.empty() && st.open.count(st.expiry.front().second) == 0)
    st.expiry.pop_front();  // answered
  if (st.expiry_armed || st.expiry.empty())
    return;
  st.expiry_armed = true;
  auto delay = std::max(st.expiry.front().first - self->clock().now(), caf::timespan{0});
  self->delayed_send(self, delay, atom::deadline::value);
}

/// A request of the transport: answered by `answer`, or 5.03 when its
/// owners have not answered within request_timeout.
void track(self_ptr self, uint64_t id) {
  auto& st = self->state;
  st.open.insert(id);
  st.expiry.emplace_back(self->clock().now() + st.cfg.request_timeout, id);
  arm_expiry(self);
}

void expire(self_ptr self) {
  auto& st = self->state;
  st.expiry_armed = false;
  auto now = self->clock().now();
  while (!st.expiry.empty() && st.expiry.front().first <= now) {
    auto id = st.expiry.front().second;
    st.expiry.pop_front();
    if (st.open.count(id) != 0) {
      CF_WARN("gateway", "request ", id, " timed out after ",
              st.cfg.request_timeout.count(), " s");
      answer(self, id, error_reply(caf::make_error(caf::sec::request_timeout)));
    }
  }
  arm_expiry(self);
}


/// The audit hook: the answer of every operator action and of every refused
/// change goes through here. A refusal (4.01/4.03) is recorded best effort;
/// any other answer leaves once its record is durable (the record joins the
/// persistence actor's next group commit). If that write fails the answer
/// still goes (the action happened) and the failure is logged.
void answer_audited(self_ptr self, uint64_t id, const peer& from, const char* action,
                    const std::string& target, coap_reply r) {
  auto rec = audit_of(from, action, target, r, now_millis());
  auto& persistence = self->state.peers.persistence;
  if (r.code == 401 || r.code == 403) {
    self->send(persistence, atom::audit::value, std::move(rec));
    return answer(self, id, std::move(r));
  }
  // The action happened: from here the answer is this one, sent once the
  // record is durable or the write failed or timed out (its own timeout,
  // not the request's).
  if (self->state.open.erase(id) == 0)
    return;  // the request timed out meanwhile
  write_batch b;
  b.ops.emplace_back(model::put_audit{std::move(rec)});
  auto reply = std::make_shared<coap_reply>(std::move(r));
  auto send = [self, id, reply] {
    self->send(self->state.peers.transport, atom::reply::value, id, std::move(*reply));
  };
  self->request(persistence, self->state.cfg.request_timeout, atom::write::value, std::move(b))
    .then([send](atom::ok) { send(); },
          [send, action](caf::error& err) {
            CF_ERROR("gateway", "audit record of ", action, " not stored: ",
                     caf::to_string(err));
            send();
          });
}


/// The access policy for a request: true when `from` may; else the
/// request is answered 4.01 / 4.03 (audited as `action`) and nothing else happens.
bool permitted(self_ptr self, uint64_t id, const peer& from, model::access a,
               const char* action, const std::string& target) {
  auto err = check_access(from, a, target);
  if (!err)
    return true;
  CF_INFO("gateway", "refused: ", from.identity.empty() ? from.address : from.identity,
          " may not ", model::to_string(a), target.empty() ? "" : " for ", target);
  answer_audited(self, id, from, action, target, error_reply(err));
  return false;
}


}  // namespace gateway_detail

using namespace gateway_detail;

namespace {

/// True when `from` may create one more job now; else the request is
/// answered 4.29 with the seconds until it may.
bool within_job_budget(self_ptr self, uint64_t id, const peer& from) {
  auto& st = self->state;
  double per_minute = st.cfg.jobs_per_minute;
  if (per_minute <= 0)
    return true;
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
               .count();
  double rate = per_minute / 60.0;
  if (st.job_budgets.size() > 10000)  // bounded: forget principals whose budget is whole again
    for (auto i = st.job_budgets.begin(); i != st.job_budgets.end();)
      i = i->second.full(now, rate, per_minute) ? st.job_budgets.erase(i) : std::next(i);
  // An identity over DTLS; on plain CoAP the source address.
  auto who = from.secure && !from.identity.empty() ? from.identity : "plain " + from.address;
  auto& bucket = st.job_budgets[who];
  if (bucket.take(now, rate, per_minute))
    return true;
  auto wait = bucket.retry_after_s(rate);
  CF_INFO("gateway", "refused: ", who, " created more than ", per_minute,
          " jobs in a minute (4.29, retry in ", wait, " s)");
  answer(self, id,
         error_reply(make_api_error(api_errc::too_many,
                                    who + " may create at most "
                                      + std::to_string(static_cast<long>(per_minute))
                                      + " jobs per minute (--jobs-per-minute)",
                                    "", "retry_after_seconds", std::to_string(wait))));
  return false;
}


}  // namespace

gateway_actor spawn_gateway(caf::actor_system& sys, gateway_config cfg, gateway_peers peers) {
  auto fn = [](self_ptr self, gateway_config cfg,
               gateway_peers peers) -> gateway_actor::behavior_type {
    self->state.cfg = cfg;
    self->state.peers = std::move(peers);
    watch_database(self);
    return {
      [=](atom::enroll, uint64_t id, model::node_registration& reg, peer& from) {
        track(self, id);
        if (!permitted(self, id, from, model::access::register_node, "node.register",
                       reg.node_id))
          return;
        // An operator (or a trusted network) may say where a node listens. A
        // node registering itself is notified where its registration came
        // from; a different claim is kept as information only, so that no
        // key holder can point the server's requests at another host.
        if (from.role != model::role::operator_ && from.role != model::role::trusted) {
          if (reg.ip_address != from.address) {
            CF_INFO("gateway", "node ", reg.node_id, " claims ip_address ", reg.ip_address,
                    " but registers from ", from.address, ": notified at ", from.address);
            reg.reported_ip_address = reg.ip_address;
            reg.ip_address = from.address;
          } else {
            reg.reported_ip_address.clear();
          }
        }
        // A node registering itself (or an agent on a trusted network) is not
        // an operator action; an operator registering a node is.
        bool audited = from.role == model::role::operator_;
        auto who = from;
        auto node = reg.node_id;
        self->request(self->state.peers.registry, caf::infinite, atom::enroll::value, std::move(reg),
                      std::move(from))
          .then(
            [=](registered& r) {
              auto ok = json_reply(201, model::encode_message("Node registered successfully",
                                                              {{"node_id", r.node_id}}));
              if (!audited)
                return answer(self, id, std::move(ok));
              answer_audited(self, id, who, "node.register", r.node_id, std::move(ok));
            },
            [=](caf::error& err) {
              if (audited)
                return audited_failure(self, id, who, "node.register", node)(err);
              failure(self, id)(err);
            });
      },
      [=](atom::create, uint64_t id, model::job_spec& spec, peer& from) {
        track(self, id);
        if (!permitted(self, id, from, model::access::manage_jobs, "job.create", spec.name)
            || !within_job_budget(self, id, from))
          return;
        auto who = from;
        auto name = spec.name;
        self->request(self->state.peers.jobs, caf::infinite, atom::create::value, std::move(spec),
                      std::move(from))
          .then(
            [=](model::job_record& j) {
              answer_audited(self, id, who, "job.create", j.job_id,
                             json_reply(201, model::encode_job_created(j)));
            },
            audited_failure(self, id, who, "job.create", name));
      },
      [=](atom::install, uint64_t id, std::string& job_id, peer& from) {
        track(self, id);
        if (!permitted(self, id, from, model::access::manage_jobs, "job.install", job_id))
          return;
        auto who = from;
        auto job = job_id;
        self->request(self->state.peers.jobs, caf::infinite, atom::install::value, std::move(job_id),
                      std::move(from))
          .then(
            [=](model::job_record& j) {
              answer_audited(self, id, who, "job.install", job,
                             json_reply(204, model::encode_job_triggered(j)));
            },
            audited_failure(self, id, who, "job.install", job));
      },
      [=](atom::report, uint64_t id, model::update_report& r, peer& from) {
        track(self, id);
        if (!permitted(self, id, from, model::access::report_step, "job.report", r.node_id))
          return;
        auto pass = [=](model::update_report& r, peer& from) {
          self->request(self->state.peers.jobs, caf::infinite, atom::report::value, std::move(r),
                        std::move(from))
            .then(
              [=](atom::ok) {
                answer(self, id, json_reply(204, model::encode_message("Report accepted")));
              },
              failure(self, id));
        };
        if (!r.inventory_given)
          return pass(r, from);
        // The node's new inventory is durable before its report is judged.
        auto node = r.node_id;
        auto inventory = r.inventory;
        self->request(self->state.peers.registry, caf::infinite, atom::inventory::value, node,
                      std::move(inventory))
          .then([=](atom::ok) mutable { pass(r, from); },
                [=](caf::error& err) mutable {
                  CF_WARN("gateway", "node ", node, ": inventory not stored: ",
                          caf::to_string(err));
                  pass(r, from);
                });
      },
      [=](atom::cancel, uint64_t id, std::string& job_id, bool force, peer& from) {
        cancel_job(self, id, std::move(job_id), force, std::move(from));
      },
      [=](atom::action, uint64_t id, std::string& job_id, std::string& action, peer& from) {
        campaign_action(self, id, std::move(job_id), std::move(action), std::move(from));
      },
      [=](atom::retry, uint64_t id, std::string& job_id, peer& from) {
        retry_job(self, id, std::move(job_id), std::move(from));
      },
      [=](atom::artifact, uint64_t id, std::string& name, peer& from) {
        delete_artifact(self, id, std::move(name), std::move(from));
      },
      [=](atom::forget, uint64_t id, std::string& node, peer& from) {
        delete_node(self, id, std::move(node), std::move(from));
      },
      [=](atom::label, uint64_t id, std::string& node, model::string_map& labels, peer& from) {
        label_node(self, id, std::move(node), std::move(labels), std::move(from));
      },
      [=](atom::remove, uint64_t id, std::string& job_id, peer& from) {
        track(self, id);
        if (!permitted(self, id, from, model::access::manage_jobs, "job.delete", job_id))
          return;
        auto who = from;
        self->request(self->state.peers.jobs, caf::infinite, atom::remove::value, job_id,
                      std::move(from))
          .then(
            [=](atom::ok) {
              answer_audited(self, id, who, "job.delete", job_id,
                             json_reply(202, model::encode_message("Update job " + job_id
                                                                     + " deleted",
                                                                   {{"job_id", job_id}})));
            },
            audited_failure(self, id, who, "job.delete", job_id));
      },
      [=](atom::job, uint64_t id, std::string& job_id, std::string& node, peer& from) {
        track(self, id);
        job_for_node(self, id, job_id, std::move(node), from);
      },
      [=](atom::observe, uint64_t id, resource& r) {
        track(self, id);
        render(self, id, r);
      },
      [=](atom::upload, uint64_t id, artifact_upload& up, peer& from) {
        track(self, id);
        if (!permitted(self, id, from, model::access::manage_artifacts, "artifact.upload",
                       up.name))
          return;
        auto name = up.name;
        auto size = up.body.size();
        auto body = std::make_shared<artifact_upload>(std::move(up));
        // The unfinished jobs naming it travel with the upload: the store,
        // which computes the new SHA-256, refuses other content for them.
        self->request(self->state.peers.jobs, caf::infinite, atom::uses::value, name)
          .then(
            [=](std::vector<model::job_record>& jobs) {
              for (auto& j : jobs)
                body->pins.push_back({j.job_id, j.spec.artifact_sha256});
              self->request(self->state.peers.artifacts, caf::infinite, atom::upload::value,
                            std::move(*body))
                .then(
                  [=](artifact_info& a) {
                    CF_INFO("gateway", "artifact ", a.name, " (", size, " bytes) uploaded by ",
                            from.address);
                    answer_audited(self, id, from, "artifact.upload", name,
                                   json_reply(204, model::encode_artifact(a)));
                  },
                  audited_failure(self, id, from, "artifact.upload", name));
            },
            audited_failure(self, id, from, "artifact.upload", name));
      },
      [=](atom::action, uint64_t id, model::system_action a, peer& from) {
        track(self, id);
        auto what = a == model::system_action::restart  ? "system.restart"
                    : a == model::system_action::shutdown ? "system.shutdown"
                                                          : "system.status";
        if (!permitted(self, id, from,
                       a == model::system_action::status ? model::access::read_fleet
                                                         : model::access::system_action,
                       what))
          return;
        if (a == model::system_action::status) {
          self->request(self->state.peers.system, caf::infinite, atom::status::value)
            .then(
              [=](model::system_status& s) {
                answer(self, id, json_reply(205, model::encode_system_status(s)));
              },
              failure(self, id));
          return;
        }
        auto who = from;
        self->request(self->state.peers.system, caf::infinite, atom::action::value, a, std::move(from))
          .then(
            [=](atom::ok) {
              auto r = json_reply(204, model::encode_message(
                                         a == model::system_action::restart
                                           ? "Server restart initiated"
                                           : "Server shutdown initiated",
                                         {{"action", model::to_string(a)}}));
              r.after = a == model::system_action::restart ? after_reply::restart : after_reply::shutdown;
              answer_audited(self, id, who, what, {}, std::move(r));
            },
            audited_failure(self, id, who, what, {}));
      },
      [=](atom::keys, uint64_t id, model::key_request& req, peer& from) {
        track(self, id);
        manage_keys(self, id, req, from);
      },
      [=](atom::cluster, uint64_t id, peer& from) {
        track(self, id);
        if (!permitted(self, id, from, model::access::read_fleet, "cluster.status"))
          return;
        if (!self->state.peers.cluster) {
          answer(self, id, error_reply(make_api_error(api_errc::unavailable,
                                                      "no membership actor")));
          return;
        }
        self->request(self->state.peers.cluster, caf::infinite, atom::get::value)
          .then(
            [=](cluster_status& c) {
              answer(self, id, json_reply(205, encode_cluster_status(c)));
            },
            failure(self, id));
      },
      [=](atom::audit, uint64_t id, model::audit_query& q, peer& from) {
        track(self, id);
        read_audit(self, id, q, from);
      },
      [=](atom::history, uint64_t id, model::history_query& q, peer& from) {
        track(self, id);
        read_history(self, id, q, from);
      },
      [=](atom::ping) { watch_database(self); },
      [=](atom::deadline) { expire(self); },
    };
  };
  return sys.spawn(fn, cfg, std::move(peers));
}

}  // namespace coapfleet::server
