// The installer's side of a notification: a notification names a job only;
// its spec comes from the agent's own server over the agent's own session
// (DTLS with the node's key when it has one), so nothing a notification
// carries is ever run. And, with --verify-key, the check of the operator's
// signature before a job runs.
#include "actors/agent/installer_state.hpp"
#include "common/log.hpp"
#include "model/job_signature.hpp"

namespace coapfleet::agent::installer_detail {

namespace {

/// Journals a fetched job (durable before the 2.04) and starts it if idle.
caf::error journal_job(self_ptr self, model::update_notification note) {
  auto& st = self->state;
  auto key = model::run_key(note.job_id, note.attempt);
  if (st.journal.knows(key)) {
    CF_DEBUG("installer", "job ", key, " already known; not installed twice");
    return {};
  }
  CF_INFO("installer", "job ", note.job_id, " accepted: ", note.spec.name, " ", note.spec.version,
          " (", note.spec.package_type, ")",
          st.busy ? ", queued behind " + st.journal.jobs.front().note.job_id : "");
  auto job_id = note.job_id;
  st.journal.jobs.push_back({std::move(note), job_phase::queued});
  std::string err;
  if (!save_journal(st.journal_path, st.journal, err)) {
    // Not durable, so not accepted: the server hears of it and may retry.
    st.journal.jobs.pop_back();
    CF_ERROR("installer", "job ", job_id, " refused: ", err);
    return make_api_error(api_errc::internal, "cannot journal job " + job_id + ": " + err);
  }
  start_next(self);  // journaled before the 2.04 leaves
  return {};
}

/// "4.04" for a CoAP code given as class*100+detail.
std::string code_text(uint16_t code) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%d.%02d", code / 100, code % 100);
  return buf;
}

/// What the server's answer to a fetch means for the notification.
caf::error fetched(self_ptr self, const spec_fetch& f, client_response& r) {
  auto& st = self->state;
  auto server_said = r.payload.substr(0, 200);
  if (r.code == 0)
    fail_over(self, f.asked);  // the server re-notifies; its next fetch goes to the next one
                               // (with several servers each was tried: see on_spec)
  if (r.code == 0 || r.code >= 500) {
    auto why = r.code == 0 ? r.error : "the server answered " + code_text(r.code) + " " + server_said;
    CF_WARN("installer", "job ", f.job_id, ": cannot fetch its spec: ", why);
    return make_api_error(api_errc::unavailable,
                          "cannot fetch job " + f.job_id + " from the server: " + why, "job_id");
  }
  if (r.code == 403 || r.code == 404) {
    CF_WARN("installer", "job ", f.job_id, " refused: the server has no such job for node ",
            st.cfg.node_id, " (", code_text(r.code), " ", server_said, ")");
    return make_api_error(api_errc::not_found,
                          "job " + f.job_id + " is not on the server for node " + st.cfg.node_id
                            + " (the server answered " + code_text(r.code) + "); nothing runs",
                          "job_id", "job_id", f.job_id);
  }
  if (r.code != 205)
    return make_api_error(api_errc::internal,
                          "fetching job " + f.job_id + " the server answered " + code_text(r.code)
                            + " " + server_said,
                          "job_id");
  auto job = model::decode_node_job(r.payload);
  if (!job.ok())
    return make_api_error(api_errc::internal,
                          "the server's spec of job " + f.job_id + " is invalid: " + job.err.error,
                          job.err.field);
  if (job.value.job_id != f.job_id || job.value.node_id != st.cfg.node_id)
    return make_api_error(api_errc::internal,
                          "the server answered job " + job.value.job_id + " for node "
                            + job.value.node_id + " when asked for job " + f.job_id);
  job.value.server = f.server;
  // The server's answer names the node's current attempt (a retry is
  // another run); a notification of an earlier one is answered with it.
  return journal_job(self, std::move(job.value));
}

}  // namespace

void fail_over(self_ptr self, const std::string& asked) {
  self->state.servers.fail_over_from(asked, "installer", "does not answer");
}

caf::result<atom::ok> accept_notification(self_ptr self, model::update_notification& note) {
  auto& st = self->state;
  if (note.node_id != st.cfg.node_id)
    return make_api_error(api_errc::bad_request,
                          "notification for node " + note.node_id + ", this is node "
                            + st.cfg.node_id,
                          "node_id");
  if (st.journal.knows(model::run_key(note.job_id, note.attempt))) {
    CF_DEBUG("installer", "job ", model::run_key(note.job_id, note.attempt),
             " already known; not installed twice");
    return atom::ok::value;
  }
  auto rp = self->make_response_promise<atom::ok>();
  for (auto& [id, f] : st.fetches)
    if (f.job_id == note.job_id && f.attempt == note.attempt) {
      f.waiting.push_back(rp);  // the same run again while its spec is on the way
      return rp;
    }
  auto id = st.next_id++;
  auto& f = st.fetches[id];
  f.job_id = note.job_id;
  f.attempt = note.attempt;
  f.server = note.server;
  f.waiting.push_back(rp);
  CF_DEBUG("installer", "job ", note.job_id, ": fetching its spec from the server");
  request_spec_block(self, id);
  self->delayed_send(self, st.cfg.fetch_timeout, atom::job::value, id);
  return rp;
}

void request_spec_block(self_ptr self, uint64_t id) {
  auto& st = self->state;
  auto& f = st.fetches.at(id);
  client_request req;
  req.method = request_method::get;
  req.host = st.servers.host();
  req.port = st.servers.port();
  req.path = "updates/" + f.job_id + "/spec";
  req.query = "node_id=" + st.cfg.node_id;
  // One block at a time: libcoap 4.3.1 does not follow a block-wise body
  // that starts in a separate response (how the server answers this).
  req.block2_num = f.next_block;
  req.block2_szx = block_szx;
  f.asked = req.host + ":" + std::to_string(req.port);
  self->send(st.transport, atom::request::value, id, std::move(req));
}

bool on_spec(self_ptr self, uint64_t id, client_response& r) {
  auto i = self->state.fetches.find(id);
  if (i == self->state.fetches.end())
    return false;
  auto& cur = i->second;
  if (r.code == 205 && r.block2_num >= 0) {
    if (r.block2_num != cur.next_block) {
      r.code = 500;
      r.payload = "block " + std::to_string(r.block2_num) + " when block "
                  + std::to_string(cur.next_block) + " was asked for";
    } else {
      cur.body += r.payload;
      if (r.block2_more && cur.body.size() <= 1024 * 1024) {
        ++cur.next_block;
        request_spec_block(self, id);
        return true;
      }
    }
  }
  auto& servers = self->state.servers;
  if (r.code == 0 && !cur.expired && cur.failovers < servers.others()) {
    // Its server does not answer (killed, say): the next member of the
    // cluster is asked at once, the notification waits for it (the member
    // that sent it is one of them, and it answers). Another fetch may have
    // failed over already: then the server it moved to is asked.
    fail_over(self, cur.asked);
    ++cur.failovers;
    cur.body.clear();
    cur.next_block = 0;
    CF_INFO("installer", "job ", cur.job_id, ": fetching its spec from ", servers.current(),
            " instead");
    request_spec_block(self, id);
    return true;
  }
  if (r.code == 205 && r.block2_num >= 0)
    r.payload = std::move(cur.body);
  auto f = std::move(i->second);
  self->state.fetches.erase(i);
  auto err = fetched(self, f, r);
  for (auto& rp : f.waiting) {
    if (err)
      rp.deliver(err);
    else
      rp.deliver(atom::ok::value);
  }
  return true;
}

void on_fetch_deadline(self_ptr self, uint64_t id) {
  auto i = self->state.fetches.find(id);
  if (i == self->state.fetches.end())
    return;  // answered in time
  i->second.expired = true;
  client_response none;
  none.error = "no answer within "
               + std::to_string(self->state.cfg.fetch_timeout.count()) + " ms";
  on_spec(self, id, none);  // a late answer finds no fetch and is dropped
}

std::string signature_problem(self_ptr self, const model::job_spec& spec) {
  auto& key = self->state.cfg.verify_key;
  if (!key)
    return {};
  if (spec.signature.empty())
    return "job is not signed (this agent runs only jobs signed for its --verify-key)";
  if (!key->verify(model::signed_job_text(spec), spec.signature))
    return "job signature does not verify with --verify-key (the job was changed after it was "
           "signed, or signed with another key)";
  return {};
}

}  // namespace coapfleet::agent::installer_detail
