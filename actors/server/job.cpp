#include "actors/server/job.hpp"

#include <algorithm>

#include "actors/server/job_internal.hpp"
#include "common/clock.hpp"
#include "common/log.hpp"
#include "model/campaign.hpp"
#include "model/rules.hpp"

namespace coapfleet::server {

using namespace job_detail;

job_actor spawn_job(caf::actor_system& sys, model::job_record record, job_config cfg,
                    registry_actor registry, persistence_actor persistence,
                    transport_actor transport, job_supervisor_actor supervisor) {
  auto fn = [](self_ptr self, model::job_record record, job_config cfg, registry_actor registry,
               persistence_actor persistence, transport_actor transport,
               job_supervisor_actor supervisor) -> job_actor::behavior_type {
    auto& st = self->state;
    st.record = std::move(record);
    std::sort(st.record.nodes.begin(), st.record.nodes.end(),
              [](const auto& a, const auto& b) { return a.node_id < b.node_id; });
    st.cfg = cfg;
    st.registry = std::move(registry);
    st.persistence = std::move(persistence);
    st.transport = std::move(transport);
    st.supervisor = std::move(supervisor);
    return {
      [self](atom::install, const peer& from) -> caf::result<model::job_record> {
        auto rp = self->make_response_promise<model::job_record>();
        self->state.queue.push_back(
          {{}, [from, rp](self_ptr self) { start_install(self, from, rp); }});
        next_round(self);
        return rp;
      },
      [self](atom::get) -> caf::result<model::job_record> {
        if (self->state.deleted)
          return unknown_job(self->state.record.job_id);
        return self->state.record;
      },
      [self](atom::listing) -> caf::result<std::string> {
        auto& st = self->state;
        if (st.deleted)
          return unknown_job(st.record.job_id);
        if (st.summary.empty())
          st.summary = model::encode_job_summary(st.record);
        return st.summary;
      },
      [self](atom::report, model::update_report& r) -> caf::result<atom::ok> {
        auto rp = self->make_response_promise<atom::ok>();
        submit(self, [r = std::move(r), rp](self_ptr self, job_round& rd) {
          plan_report(self, rd, r, rp);
        });
        return rp;
      },
      [self](atom::cancel, bool force, const peer& from) -> caf::result<model::job_record> {
        auto rp = self->make_response_promise<model::job_record>();
        submit(self, [force, from, rp](self_ptr self, job_round& r) {
          plan_cancel(self, r, force, from, rp);
        });
        return rp;
      },
      [self](atom::retry, const peer& from) -> caf::result<model::job_record> {
        auto rp = self->make_response_promise<model::job_record>();
        submit(self, [from, rp](self_ptr self, job_round& r) { plan_retry(self, r, from, rp); });
        return rp;
      },
      [self](atom::action, std::string& action,
             const peer& from) -> caf::result<model::job_record> {
        auto rp = self->make_response_promise<model::job_record>();
        submit(self, [action = std::move(action), from, rp](self_ptr self, job_round& r) {
          plan_campaign_action(self, r, action, from, rp);
        });
        return rp;
      },
      [self](atom::tick, model::millis at) { on_wake(self, at); },
      [self](atom::forget, std::string& node) {
        // Unfinished, or failed with an automatic retry ahead: skipped.
        auto open = [](const model::job_record& rec, const model::node_job_state* n) {
          return n != nullptr
                 && (!model::is_terminal(n->state) || model::awaits_retry(rec.spec, *n));
        };
        if (self->state.deleted || !open(self->state.record, find_node(self->state.record, node)))
          return;
        submit(self, [node = std::move(node), open](self_ptr, job_round& r) {
          auto* n = r.deleted ? nullptr : find_node(r.next, node);
          if (!open(r.next, n))
            return;
          auto now = now_millis();
          n->state = model::node_update_state::skipped;
          n->error_message = "node was deleted";
          n->retry_at = 0;
          n->updated_at = now;
          r.batch.ops.emplace_back(put_node_state{r.next.job_id, *n});
          refresh_status(r, now);
          r.publish = true;
        });
      },
      [self](atom::enroll, job_target& t) {
        auto& rec = self->state.record;
        if (self->state.deleted || rec.status != model::job_status::in_progress)
          return;  // only a running job takes a node back or a late joiner
        submit(self, [t = std::move(t)](self_ptr self, job_round& r) { plan_joiner(self, r, t); });
      },
      [self](atom::cancel, std::string& node_id, bool ok, std::string& detail) {
        submit(self, [node_id = std::move(node_id), ok,
                      detail = std::move(detail)](self_ptr self, job_round& r) {
          plan_cancel_sent(self, r, node_id, ok, detail);
        });
      },
      [self](atom::remove, const peer&) -> caf::result<atom::ok> {
        auto rp = self->make_response_promise<atom::ok>();
        submit(self, [rp](self_ptr self, job_round& r) { plan_remove(self, r, rp); });
        return rp;
      },
      [self](atom::notified, std::string& node_id, bool ok, std::string& detail) {
        submit(self, [node_id = std::move(node_id), ok,
                      detail = std::move(detail)](self_ptr self, job_round& r) {
          plan_notified(self, r, node_id, ok, detail);
        });
      },
      [self](atom::deadline) {
        self->state.deadline_armed = false;
        submit(self, [due_by = self->state.armed_for](self_ptr self, job_round& r) {
          plan_deadline(self, r, due_by);
        });
      },
      [self](atom::resume) {
        // After a (re)start: nodes still pending never got (or never
        // answered) their notification; nodes of a cancelled job that have
        // not confirmed are told again. This only reads the durable record.
        auto& st = self->state;
        if (st.deleted)
          return;
        arm_deadline(self);
        if (st.record.status == model::job_status::cancelled)
          return send_cancels(self, false);
        if (st.record.status != model::job_status::in_progress)
          return;
        schedule(self);  // a soak or a window may have ended while it was down
        std::vector<std::string> pending;
        for (auto& n : st.record.nodes)
          if (n.state == model::node_update_state::pending && n.started_at > 0)
            pending.push_back(n.node_id);
        if (pending.empty())
          return;
        CF_INFO("job", "job ", st.record.job_id, " resumed: re-notifying ", pending.size(),
                " nodes");
        with_targets(
          self, std::move(pending),
          [](const model::node_job_state& n) {
            return n.state == model::node_update_state::pending && n.started_at > 0;
          },
          [self](const job_target& t, const model::node_job_state& n) {
            notify_node(self, n, t.ip_address, t.port);
          });
      },
    };
  };
  return sys.spawn(fn, std::move(record), cfg, std::move(registry), std::move(persistence),
                   std::move(transport), std::move(supervisor));
}

}  // namespace coapfleet::server
