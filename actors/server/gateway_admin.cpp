// The gateway's job and fleet administration requests: cancel, retry and
// campaign actions on jobs, node decommission, artifact deletion (each
// authorized, audited, and answered with a small JSON body: a separate
// response must fit one datagram).
#include "actors/server/gateway_internal.hpp"
#include "common/log.hpp"
#include "model/json.hpp"
#include "model/rules.hpp"

namespace coapfleet::server::gateway_detail {

void cancel_job(self_ptr self, uint64_t id, std::string job_id, bool force, peer from) {
  track(self, id);
  if (!permitted(self, id, from, model::access::manage_jobs, "job.cancel", job_id))
    return;
  auto who = from;
  auto job = job_id;
  self->request(self->state.peers.jobs, caf::infinite, atom::cancel::value, std::move(job_id),
                force, std::move(from))
    .then(
      [=](model::job_record& j) {
        // Small on purpose: a separate response must fit one datagram.
        auto open = model::count_states(j.nodes);
        auto waiting = open.total - open.finished();
        answer_audited(
          self, id, who, "job.cancel", job,
          json_reply(204, model::encode_message(
                            "Update job " + j.job_id + " cancelled"
                              + (waiting > 0 ? "; " + std::to_string(waiting)
                                                 + " nodes told to stop"
                                             : std::string()),
                            {{"job_id", j.job_id},
                             {"status", model::to_string(j.status)},
                             {"unconfirmed", std::to_string(waiting)}})));
      },
      audited_failure(self, id, who, "job.cancel", job));
}

void campaign_action(self_ptr self, uint64_t id, std::string job_id, std::string action,
                     peer from) {
  track(self, id);
  auto what = "job." + action;
  if (!permitted(self, id, from, model::access::manage_jobs, what.c_str(), job_id))
    return;
  auto who = from;
  auto job = job_id;
  self->request(self->state.peers.jobs, caf::infinite, atom::action::value,
                std::move(job_id), action, std::move(from))
    .then(
      [=](model::job_record& j) {
        auto done = action == "pause" ? "paused" : action == "resume" ? "resumed" : "closed";
        answer_audited(self, id, who, what.c_str(), job,
                       json_reply(204, model::encode_message(
                                         "Update job " + j.job_id + " " + done,
                                         {{"job_id", j.job_id},
                                          {"status", model::to_string(j.status)}})));
      },
      audited_failure(self, id, who, what.c_str(), job));
}

void retry_job(self_ptr self, uint64_t id, std::string job_id, peer from) {
  track(self, id);
  if (!permitted(self, id, from, model::access::manage_jobs, "job.retry", job_id))
    return;
  auto who = from;
  auto job = job_id;
  self->request(self->state.peers.jobs, caf::infinite, atom::retry::value, std::move(job_id),
                std::move(from))
    .then(
      [=](model::job_record& j) {
        // The retried nodes wait for the campaign to start them, since this change.
        auto retried = std::count_if(
          j.nodes.begin(), j.nodes.end(), [&](const model::node_job_state& n) {
            return n.started_at == 0 && n.state == model::node_update_state::pending
                   && n.updated_at == j.updated_at;
          });
        answer_audited(
          self, id, who, "job.retry", job,
          json_reply(204, model::encode_message(
                            "Update job " + j.job_id + " retried",
                            {{"job_id", j.job_id},
                             {"status", model::to_string(j.status)},
                             {"retried", std::to_string(retried)}})));
      },
      audited_failure(self, id, who, "job.retry", job));
}

void delete_artifact(self_ptr self, uint64_t id, std::string name, peer from) {
  track(self, id);
  if (!permitted(self, id, from, model::access::manage_artifacts, "artifact.delete", name))
    return;
  auto who = from;
  self->request(self->state.peers.jobs, caf::infinite, atom::uses::value, name)
    .then(
      [=](std::vector<model::job_record>& users) {
        if (!users.empty()) {
          std::string ids;
          for (auto& j : users)
            ids += (ids.empty() ? "" : ",") + j.job_id;
          return answer_audited(
            self, id, who, "artifact.delete", name,
            json_reply(409, model::encode_error(
                              "artifact " + name + " is needed by unfinished job(s): "
                              "cancel or finish them first",
                              {{"field", "name"}, {"name", name}, {"jobs", ids}})));
        }
        self->request(self->state.peers.artifacts, caf::infinite, atom::remove::value,
                      name)
          .then(
            [=](atom::ok) {
              answer_audited(self, id, who, "artifact.delete", name,
                             json_reply(202, model::encode_message(
                                               "Artifact " + name + " deleted",
                                               {{"name", name}})));
            },
            audited_failure(self, id, who, "artifact.delete", name));
      },
      audited_failure(self, id, who, "artifact.delete", name));
}

void delete_node(self_ptr self, uint64_t id, std::string node, peer from) {
  track(self, id);
  if (!permitted(self, id, from, model::access::manage_nodes, "node.delete", node))
    return;
  auto who = from;
  self->request(self->state.peers.registry, caf::infinite, atom::remove::value, node)
    .then(
      [=](atom::ok) {
        // Its unfinished job entries are skipped; its keys go.
        self->send(self->state.peers.jobs, atom::forget::value, node);
        if (auto& keys = self->state.peers.keys)
          self->request(keys, caf::infinite, atom::revoke::value, node)
            .then([=](uint32_t n) { CF_INFO("gateway", "node ", node, ": ", n,
                                            " keys revoked"); },
                  [](caf::error&) {});  // it had none
        answer_audited(self, id, who, "node.delete", node,
                       json_reply(202, model::encode_message("Node " + node + " deleted",
                                                             {{"node_id", node}})));
      },
      audited_failure(self, id, who, "node.delete", node));
}

void label_node(self_ptr self, uint64_t id, std::string node, model::string_map labels,
                peer from) {
  track(self, id);
  if (!permitted(self, id, from, model::access::manage_nodes, "node.label", node))
    return;
  auto who = from;
  self->request(self->state.peers.registry, caf::infinite, atom::label::value, node,
                std::move(labels))
    .then(
      [=](model::string_map& now) {
        answer_audited(self, id, who, "node.label", node,
                       json_reply(204, model::encode_node_labels(node, now)));
      },
      audited_failure(self, id, who, "node.label", node));
}

}  // namespace coapfleet::server::gateway_detail
