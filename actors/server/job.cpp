#include "actors/server/job.hpp"

#include <algorithm>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "model/rules.hpp"

namespace coapfleet::server {

namespace {

struct job_state {
  static inline const char* name = "job";
  model::job_record record;
  job_config cfg;
  registry_actor registry;
  persistence_actor persistence;
  transport_actor transport;
  bool triggering = false;  ///< an install is resolving its targets
  bool deadline_armed = false;
};

using self_ptr = job_actor::stateful_pointer<job_state>;

model::node_job_state* find_node(job_state& st, const std::string& id) {
  auto i = std::lower_bound(st.record.nodes.begin(), st.record.nodes.end(), id,
                            [](const model::node_job_state& n, const std::string& k) {
                              return n.node_id < k;
                            });
  return i != st.record.nodes.end() && i->node_id == id ? &*i : nullptr;
}

/// Re-derives the job status; appends a status write when it changed.
void refresh_status(self_ptr self, model::millis now, write_batch& batch) {
  auto& rec = self->state.record;
  auto next = model::derive_job_status(rec.status, model::count_states(rec.nodes));
  if (next == rec.status)
    return;
  CF_INFO("job", "job ", rec.job_id, " is ", to_string(next), " (was ", to_string(rec.status),
          ")");
  rec.status = next;
  if (next == model::job_status::failed || next == model::job_status::partially_failed) {
    // A one-line summary for the job: how many nodes did not make it, and the first reason.
    auto counts = model::count_states(rec.nodes);
    auto bad = counts.total - counts.of(model::node_update_state::succeeded);
    rec.error_message = std::to_string(bad) + " of " + std::to_string(counts.total)
                        + " nodes did not succeed";
    for (auto& n : rec.nodes)
      if (n.state != model::node_update_state::succeeded) {
        rec.error_message += "; " + n.node_id + " " + to_string(n.state)
                             + (n.error_message.empty() ? "" : ": " + n.error_message);
        break;
      }
  }
  rec.updated_at = now;
  batch.ops.emplace_back(put_job_status{rec.job_id, rec.status, now, rec.error_message});
}

/// Writes in the background: nobody waits for these (notification outcomes,
/// timeouts), but they are still committed in order with everything else.
void persist_quietly(self_ptr self, write_batch batch) {
  if (batch.ops.empty())
    return;
  auto id = self->state.record.job_id;
  self->request(self->state.persistence, caf::infinite, atom::write::value, std::move(batch))
    .then([](bool) {},
          [id](caf::error& err) {
            CF_ERROR("job", "job ", id, ": write failed: ", caf::to_string(err));
          });
}

/// How long after the trigger the server waits for a node's final report.
/// A job's own timeout_seconds bounds each install on the agent, which then
/// reports failed itself; the server allows for the download and the report
/// on top of it (twice the time plus 10 s) so the agent's reason wins.
/// Jobs without one get --job-timeout.
model::millis timeout_ms(const job_state& st) {
  auto t = st.record.spec.timeout_seconds;
  if (t > 0)
    return (2 * static_cast<model::millis>(t) + 10) * 1000;
  return static_cast<model::millis>(st.cfg.default_timeout.count()) * 1000;
}

void arm_deadline(self_ptr self, model::millis triggered_at) {
  auto& st = self->state;
  if (st.deadline_armed || st.record.status != model::job_status::in_progress)
    return;
  st.deadline_armed = true;
  auto delay = std::max<model::millis>(triggered_at + timeout_ms(st) - now_millis(), 1);
  self->delayed_send(self, std::chrono::milliseconds(delay), atom::deadline::value);
}

/// Tells the transport that this job's observable representations changed.
void publish(self_ptr self) {
  auto& st = self->state;
  self->send(st.transport, atom::changed::value,
             resource{resource_kind::job_status, st.record.job_id}, urgency::control);
  self->send(st.transport, atom::changed::value, resource{resource_kind::updates, {}},
             urgency::control);
}

void notify_node(self_ptr self, const model::node_job_state& n, const std::string& ip,
                 uint16_t port) {
  auto& st = self->state;
  model::update_notification note;
  note.job_id = st.record.job_id;
  note.node_id = n.node_id;
  note.spec = st.record.spec;
  note.spec.target_nodes.clear();  // an agent needs its own part only
  self->send(st.transport, atom::notify::value, caf::actor_cast<job_actor>(self), ip, port,
             std::move(note));
}

}  // namespace

job_actor spawn_job(caf::actor_system& sys, model::job_record record, job_config cfg,
                    registry_actor registry, persistence_actor persistence,
                    transport_actor transport) {
  auto fn = [](self_ptr self, model::job_record record, job_config cfg, registry_actor registry,
               persistence_actor persistence,
               transport_actor transport) -> job_actor::behavior_type {
    auto& st = self->state;
    st.record = std::move(record);
    std::sort(st.record.nodes.begin(), st.record.nodes.end(),
              [](const auto& a, const auto& b) { return a.node_id < b.node_id; });
    st.cfg = cfg;
    st.registry = std::move(registry);
    st.persistence = std::move(persistence);
    st.transport = std::move(transport);
    return {
      [self](atom::install, const peer& from) -> caf::result<model::job_record> {
        auto& st = self->state;
        if (st.record.status != model::job_status::created || st.triggering)
          return make_api_error(api_errc::bad_request,
                                "job " + st.record.job_id + " was already triggered", "job_id",
                                "status", to_string(st.record.status));
        st.triggering = true;
        auto rp = self->make_response_promise<model::job_record>();
        self->request(st.registry, std::chrono::seconds(30), atom::resolve::value,
                      st.record.spec.target_nodes)
          .then(
            [self, rp, from](std::vector<job_target>& targets) mutable {
              auto& st = self->state;
              if (targets.empty()) {
                st.triggering = false;
                rp.deliver(make_api_error(api_errc::bad_request,
                                          "no registered nodes match target_nodes",
                                          "target_nodes"));
                return;
              }
              auto now = now_millis();
              write_batch batch;
              st.record.nodes.clear();
              for (auto& t : targets) {
                model::node_job_state n;
                n.node_id = t.node_id;
                n.updated_at = now;
                if (st.cfg.skip_offline && t.status == model::node_status::offline) {
                  n.state = model::node_update_state::skipped;
                  n.error_message = "node was offline when the job was triggered";
                }
                batch.ops.emplace_back(put_node_state{st.record.job_id, n});
                st.record.nodes.push_back(std::move(n));
              }
              st.record.status = model::job_status::in_progress;
              st.record.updated_at = now;
              batch.ops.emplace_back(
                put_job_status{st.record.job_id, st.record.status, now, st.record.error_message});
              refresh_status(self, now, batch);  // e.g. every target skipped
              CF_INFO("job", "job ", st.record.job_id, " triggered by ", from.address, ":",
                      from.port, " targets=", targets.size());
              self->request(st.persistence, caf::infinite, atom::write::value, std::move(batch))
                .then(
                  [self, rp, targets](bool) mutable {
                    auto& st = self->state;
                    st.triggering = false;
                    rp.deliver(st.record);
                    publish(self);
                    for (auto& t : targets)
                      if (auto* n = find_node(st, t.node_id);
                          n && n->state == model::node_update_state::pending)
                        notify_node(self, *n, t.ip_address, t.port);
                    arm_deadline(self, st.record.updated_at);
                  },
                  [self, rp](caf::error& err) mutable {
                    self->state.triggering = false;
                    rp.deliver(std::move(err));
                  });
            },
            [self, rp](caf::error& err) mutable {
              self->state.triggering = false;
              rp.deliver(std::move(err));
            });
        return rp;
      },
      [self](atom::get) -> model::job_record { return self->state.record; },
      [self](atom::report, model::update_report& r) -> caf::result<bool> {
        auto& st = self->state;
        if (st.record.status == model::job_status::created)
          return make_api_error(api_errc::bad_request,
                                "job " + st.record.job_id + " has not been triggered", "job_id");
        auto* n = find_node(st, r.node_id);
        if (n == nullptr)
          return make_api_error(api_errc::not_found,
                                "node " + r.node_id + " is not a target of job "
                                  + st.record.job_id,
                                "node_id");
        auto why = model::check_transition(n->state, r.state);
        if (!why.empty())
          return make_api_error(api_errc::bad_request, why, "status", "current_status",
                                to_string(n->state));
        auto now = now_millis();
        if (n->state != r.state)
          CF_DEBUG("job", "job ", st.record.job_id, " node ", r.node_id, ": ",
                   to_string(n->state), " -> ", to_string(r.state));
        n->state = r.state;
        if (r.progress >= 0)
          n->progress = r.progress;
        else if (r.state == model::node_update_state::succeeded)
          n->progress = 100;
        if (r.result >= 0)
          n->result = r.result;
        else if (r.state == model::node_update_state::succeeded)
          n->result = static_cast<int32_t>(model::update_result::success);
        else if (r.state == model::node_update_state::failed && n->result <= 1)
          n->result = static_cast<int32_t>(model::update_result::update_failed);
        if (!r.error_message.empty() || model::is_terminal(r.state))
          n->error_message = r.error_message;
        n->updated_at = now;
        write_batch batch;
        batch.ops.emplace_back(put_node_state{st.record.job_id, *n});
        refresh_status(self, now, batch);
        publish(self);
        auto rp = self->make_response_promise<bool>();
        self->request(st.persistence, caf::infinite, atom::write::value, std::move(batch))
          .then([rp](bool) mutable { rp.deliver(true); },
                [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [self](atom::cancel, const peer& from) -> caf::result<model::job_record> {
        auto& st = self->state;
        auto s = st.record.status;
        if (s != model::job_status::created && s != model::job_status::in_progress)
          return make_api_error(api_errc::bad_request,
                                "job " + st.record.job_id + " has already finished", "job_id",
                                "status", to_string(s));
        auto now = now_millis();
        write_batch batch;
        for (auto& n : st.record.nodes)
          if (!model::is_terminal(n.state)) {
            n.state = model::node_update_state::cancelled;
            n.result = static_cast<int32_t>(model::update_result::cancelled);
            n.error_message = "cancelled by operator";
            n.updated_at = now;
            batch.ops.emplace_back(put_node_state{st.record.job_id, n});
          }
        st.record.status = model::job_status::cancelled;
        st.record.updated_at = now;
        batch.ops.emplace_back(
          put_job_status{st.record.job_id, st.record.status, now, st.record.error_message});
        CF_INFO("job", "job ", st.record.job_id, " cancelled by ", from.address);
        publish(self);
        auto rp = self->make_response_promise<model::job_record>();
        self->request(st.persistence, caf::infinite, atom::write::value, std::move(batch))
          .then([self, rp](bool) mutable { rp.deliver(self->state.record); },
                [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [self](atom::notified, const std::string& node_id, bool ok, const std::string& detail) {
        auto& st = self->state;
        auto* n = find_node(st, node_id);
        if (n == nullptr || n->state != model::node_update_state::pending)
          return;  // the agent already reported further, or the job moved on
        auto now = now_millis();
        if (ok) {
          n->state = model::node_update_state::notified;
        } else {
          CF_WARN("job", "job ", st.record.job_id, " node ", node_id, ": ", detail);
          n->state = model::node_update_state::failed;
          n->result = static_cast<int32_t>(model::update_result::update_failed);
          n->error_message = detail;
        }
        n->updated_at = now;
        write_batch batch;
        batch.ops.emplace_back(put_node_state{st.record.job_id, *n});
        refresh_status(self, now, batch);
        persist_quietly(self, std::move(batch));
        publish(self);
      },
      [self](atom::deadline) {
        auto& st = self->state;
        st.deadline_armed = false;
        if (st.record.status != model::job_status::in_progress)
          return;
        auto now = now_millis();
        write_batch batch;
        for (auto& n : st.record.nodes)
          if (!model::is_terminal(n.state)) {
            n.state = model::node_update_state::timed_out;
            n.error_message = "no final report within " + std::to_string(timeout_ms(st) / 1000)
                              + " s of the trigger";
            n.updated_at = now;
            batch.ops.emplace_back(put_node_state{st.record.job_id, n});
          }
        refresh_status(self, now, batch);
        persist_quietly(self, std::move(batch));
        publish(self);
      },
      [self](atom::resume) {
        // After a restart: nodes still pending never got (or never answered)
        // their notification; ask the registry where they are now.
        auto& st = self->state;
        if (st.record.status != model::job_status::in_progress)
          return;
        arm_deadline(self, st.record.updated_at);
        std::vector<std::string> pending;
        for (auto& n : st.record.nodes)
          if (n.state == model::node_update_state::pending)
            pending.push_back(n.node_id);
        if (pending.empty())
          return;
        CF_INFO("job", "job ", st.record.job_id, " resumed: re-notifying ", pending.size(),
                " nodes");
        self->request(st.registry, std::chrono::seconds(30), atom::resolve::value, pending)
          .then(
            [self](std::vector<job_target>& targets) {
              for (auto& t : targets)
                if (auto* n = find_node(self->state, t.node_id);
                    n && n->state == model::node_update_state::pending)
                  notify_node(self, *n, t.ip_address, t.port);
            },
            [self](caf::error& err) {
              CF_WARN("job", "job ", self->state.record.job_id,
                      ": cannot resolve pending nodes: ", caf::to_string(err));
            });
      },
    };
  };
  return sys.spawn(fn, std::move(record), cfg, std::move(registry), std::move(persistence),
                   std::move(transport));
}

}  // namespace coapfleet::server
