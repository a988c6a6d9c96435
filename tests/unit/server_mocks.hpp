// Mock owners for the tests of the server's gateway and system actor: small
// actors that implement the registry's, job supervisor's, system actor's,
// persistence actor's, artifact store's, keys actor's and transport's typed interfaces,
// answer what their script says (a value, an error, or nothing at all) and
// record what they were asked. A script belongs to one fixture; nothing here
// is shared between tests.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "actor_fixture.hpp"

namespace coapfleet::actor_test {

/// How a mock answers its next requests: with its value, with `error`, or
/// never (`hold`: the promise is kept, so the asker's timeout decides).
struct verdict {
  caf::error error;
  bool hold = false;
  static verdict fail(caf::error e) { return {std::move(e), false}; }
  static verdict never() { return {caf::error{}, true}; }
};

/// Promises a holding mock keeps unanswered.
struct held_promises {
  std::vector<caf::response_promise> held;
};

/// Answers `value`, or what `v` says instead.
template <class T, class Self>
caf::result<T> respond(Self* self, held_promises& h, const verdict& v, T value) {
  if (v.hold) {
    auto rp = self->template make_response_promise<T>();
    h.held.push_back(rp);
    return rp;
  }
  if (v.error)
    return v.error;
  return value;
}

// -- registry --------------------------------------------------------------------------

struct registry_script : held_promises {
  verdict next;
  std::vector<model::node_record> nodes;  ///< `get` answers these (not_found for others)
  model::fleet_health health;
  uint32_t count = 0;
  std::vector<std::pair<model::node_registration, peer>> enrolled;
  std::vector<std::string> gets;  ///< the node ids asked for
};

inline registry_actor::behavior_type mock_registry(registry_actor::pointer self,
                                                   std::shared_ptr<registry_script> s) {
  return {
    [=](atom::enroll, model::node_registration& reg, peer& from) -> caf::result<registered> {
      s->enrolled.emplace_back(reg, from);
      return respond(self, *s, s->next, registered{reg.node_id, true});
    },
    [=](atom::get, std::string& id) -> caf::result<model::node_record> {
      s->gets.push_back(id);
      for (auto& n : s->nodes)
        if (n.reg.node_id == id)
          return respond(self, *s, s->next, n);
      if (s->next.error || s->next.hold)
        return respond(self, *s, s->next, model::node_record{});
      return make_api_error(api_errc::not_found, "node not registered", "node_id", "node_id",
                            id);
    },
    [](atom::observe, caf::actor&) {},
    [=](atom::remove, std::string& id) -> caf::result<atom::ok> {
      s->gets.push_back("remove " + id);
      return respond(self, *s, s->next, atom::ok::value);
    },
    [](atom::health, uint64_t, model::health_report&, model::millis) {},
    [](atom::unroute, std::string&) {},
    [](atom::changes, uint64_t) {},
    [=](atom::health) -> caf::result<model::fleet_health> {
      return respond(self, *s, s->next, s->health);
    },
    [](atom::summary, node_summary&) {},
    [](atom::tick) {},
    [](atom::deadline) {},
    [](atom::trim) {},
    [=](atom::resolve, std::vector<std::string>&) -> caf::result<std::vector<job_target>> {
      return respond(self, *s, s->next, std::vector<job_target>{});
    },
    [=](atom::resolve, std::vector<std::string>&,
        bool) -> caf::result<std::vector<job_target>> {
      return respond(self, *s, s->next, std::vector<job_target>{});
    },
    [=](atom::resolve, model::job_spec&) -> caf::result<std::vector<job_target>> {
      return respond(self, *s, s->next, std::vector<job_target>{});
    },
    [=](atom::label, std::string& id, model::string_map& change) -> caf::result<model::string_map> {
      s->gets.push_back("label " + id);
      return respond(self, *s, s->next, change);
    },
    [=](atom::inventory, std::string& id, model::string_map&) -> caf::result<atom::ok> {
      s->gets.push_back("inventory " + id);
      return respond(self, *s, s->next, atom::ok::value);
    },
    [=](atom::count) -> caf::result<uint32_t> { return respond(self, *s, s->next, s->count); },
    [](atom::refresh) {},
    [](atom::count, atom::node) { return uint32_t{0}; },
    [](atom::cluster, cluster_view&) {},
    [](atom::health, model::health_report&, model::millis) { return coap_reply{}; },
    [](atom::observe, std::string&, bool) {},
    [](atom::watch, std::string&, bool) {},
    [](atom::changed, std::string&) {},
  };
}

// -- job supervisor --------------------------------------------------------------------

struct jobs_script : held_promises {
  verdict next;
  std::vector<model::job_record> jobs;  ///< what `list` and `uses` answer; the others look here
  uint32_t count = 0;
  std::vector<std::string> asked;       ///< "create fw", "install job-1", ...
  std::vector<peer> peers;              ///< of every request that carries one
  std::vector<model::update_report> reports;

  model::job_record* find(const std::string& id) {
    for (auto& j : jobs)
      if (j.job_id == id)
        return &j;
    return nullptr;
  }
};

inline caf::error unknown_job(const std::string& id) {
  return make_api_error(api_errc::not_found, "update job not found", "job_id", "job_id", id);
}

inline job_supervisor_actor::behavior_type mock_jobs(job_supervisor_actor::pointer self,
                                                     std::shared_ptr<jobs_script> s) {
  // A request naming a job: the script's verdict, else the job (changed by
  // `apply`) or not_found.
  auto about = [=](const std::string& id, auto apply) -> caf::result<model::job_record> {
    auto* j = s->find(id);
    if (!j && !s->next.hold && !s->next.error)
      return unknown_job(id);
    model::job_record out;
    if (j) {
      apply(*j);
      out = *j;
    }
    return respond(self, *s, s->next, std::move(out));
  };
  return {
    [=](atom::create, model::job_spec& spec, peer& from) -> caf::result<model::job_record> {
      s->asked.push_back("create " + spec.name);
      s->peers.push_back(from);
      model::job_record j;
      j.job_id = "job-" + std::to_string(s->jobs.size() + 1);
      j.spec = spec;
      return respond(self, *s, s->next, std::move(j));
    },
    [=](atom::install, std::string& id, peer& from) -> caf::result<model::job_record> {
      s->asked.push_back("install " + id);
      s->peers.push_back(from);
      return about(id, [](model::job_record& j) { j.status = model::job_status::in_progress; });
    },
    [=](atom::status, std::string& id) -> caf::result<model::job_record> {
      s->asked.push_back("status " + id);
      return about(id, [](model::job_record&) {});
    },
    [=](atom::report, model::update_report& r, peer& from) -> caf::result<atom::ok> {
      s->asked.push_back("report " + r.job_id);
      s->peers.push_back(from);
      s->reports.push_back(r);
      return respond(self, *s, s->next, atom::ok::value);
    },
    [=](atom::cancel, std::string& id, bool force, peer& from) -> caf::result<model::job_record> {
      s->asked.push_back((force ? "cancel! " : "cancel ") + id);
      s->peers.push_back(from);
      return about(id, [](model::job_record& j) { j.status = model::job_status::cancelled; });
    },
    [](atom::enroll, job_target&) {},
    [=](atom::forget, std::string& node) { s->asked.push_back("forget " + node); },
    [=](atom::action, std::string& id, std::string& action,
        peer& from) -> caf::result<model::job_record> {
      s->asked.push_back(action + " " + id);
      s->peers.push_back(from);
      return about(id, [](model::job_record&) {});
    },
    [=](atom::retry, std::string& id, peer& from) -> caf::result<model::job_record> {
      s->asked.push_back("retry " + id);
      s->peers.push_back(from);
      return about(id, [](model::job_record& j) { j.status = model::job_status::in_progress; });
    },
    [=](atom::remove, std::string& id, peer& from) -> caf::result<atom::ok> {
      s->asked.push_back("remove " + id);
      s->peers.push_back(from);
      return respond(self, *s, s->next, atom::ok::value);
    },
    [=](atom::list) -> caf::result<std::vector<model::job_record>> {
      s->asked.push_back("list");
      return respond(self, *s, s->next, s->jobs);
    },
    [=](atom::listing) -> caf::result<std::string> {
      s->asked.push_back("listing");
      return respond(self, *s, s->next, model::encode_jobs(s->jobs));
    },
    [=](atom::changed, std::string& id) { s->asked.push_back("changed " + id); },
    [=](atom::changes) -> caf::result<std::string> {
      s->asked.push_back("changes");
      return respond(self, *s, s->next, std::string("{\"from\":0,\"to\":1,\"reset\":false,\"updates\":[]}"));
    },
    [=](atom::uses, std::string& name) -> caf::result<std::vector<model::job_record>> {
      s->asked.push_back("uses " + name);
      std::vector<model::job_record> out;
      for (auto& j : s->jobs)
        if (j.spec.artifact == name)
          out.push_back(j);
      return respond(self, *s, s->next, std::move(out));
    },
    [=](atom::count) -> caf::result<uint32_t> { return respond(self, *s, s->next, s->count); },
    [](atom::cluster, cluster_view&) {},
    [](atom::listing, atom::cluster) { return std::vector<job_part>{}; },
    [](atom::listing, std::vector<std::string>&) { return std::vector<job_part>{}; },
    [](atom::changed, std::string&, bool) {},
  };
}

// -- system actor ----------------------------------------------------------------------

struct system_script : held_promises {
  verdict next;
  model::system_info info;
  model::system_status status;
  std::vector<std::pair<model::system_action, peer>> actions;
};

inline system_actor::behavior_type mock_system(system_actor::pointer self,
                                               std::shared_ptr<system_script> s) {
  return {
    [=](atom::info) -> caf::result<model::system_info> {
      return respond(self, *s, s->next, s->info);
    },
    [=](atom::status) -> caf::result<model::system_status> {
      return respond(self, *s, s->next, s->status);
    },
    [=](atom::action, model::system_action a, peer& from) -> caf::result<atom::ok> {
      s->actions.emplace_back(a, from);
      return respond(self, *s, s->next, atom::ok::value);
    },
  };
}

// -- persistence -------------------------------------------------------------------------

/// Only the ping matters to the gateway and the system actor.
struct persistence_script : held_promises {
  verdict next;       ///< of the ping
  bool ping_ok = true;
  uint32_t pings = 0;
  /// Audit records, in the order they came: written in a batch (durable,
  /// `durable` true) or sent best effort.
  std::vector<model::audit_record> audited;
  std::vector<bool> durable;
  model::audit_page page;  ///< what a page request answers
  std::vector<model::audit_query> pages_asked;
  verdict writes;          ///< of the write batches
};

inline persistence_actor::behavior_type mock_persistence(persistence_actor::pointer self,
                                                         std::shared_ptr<persistence_script> s) {
  return {
    [](atom::load) { return loaded_state{}; },
    [](atom::load, atom::node, std::string& id) -> caf::result<model::node_record> {
      return make_api_error(api_errc::not_found, "no such node", "node_id", "node_id", id);
    },
    [](atom::load, atom::job, std::string& id) -> caf::result<model::job_record> {
      return unknown_job(id);
    },
    [=](atom::write, write_batch& b) -> caf::result<atom::ok> {
      for (auto& op : b.ops)
        if (auto* a = std::get_if<model::put_audit>(&op)) {
          s->audited.push_back(a->rec);
          s->durable.push_back(true);
        }
      return respond(self, *s, s->writes, atom::ok::value);
    },
    [](atom::health, model::put_health&) {},
    [s](atom::audit, model::audit_record& r) {
      s->audited.push_back(std::move(r));
      s->durable.push_back(false);
    },
    [s](atom::audit, model::audit_query& q) {
      s->pages_asked.push_back(q);
      return s->page;
    },
    [](atom::history, model::history_query&) { return model::history_page{}; },
    [](atom::trim) {},
    [=](atom::ping) -> caf::result<bool> {
      ++s->pings;
      return respond(self, *s, s->next, s->ping_ok);
    },
    [](atom::flush) { return atom::ok::value; },
    [](atom::sync) { return atom::ok::value; },
    [](atom::fence, std::string&, uint64_t) { return atom::ok::value; },
    [](atom::load, atom::node) { return loaded_state{}; },
    [](atom::claim, std::string&, std::vector<std::string>&, std::vector<std::string>&) {
      return job_claim{};
    },
    [](atom::commit) {},
    [](atom::tick) {},
    // Keys: the keys actor's tests use the real persistence actor.
    [](atom::keys, atom::create, model::key_entry&) { return atom::ok::value; },
    [](atom::keys, atom::revoke, std::string&) { return uint32_t{0}; },
    [](atom::keys, atom::rotate, model::key_entry& k, model::millis) { return k; },
    [](atom::keys, atom::list, model::millis) { return std::vector<model::key_info>{}; },
    [](atom::keys, atom::load, model::millis) { return model::key_table{}; },
    [](atom::keys, atom::version) { return uint64_t{0}; },
  };
}

// -- keys actor ----------------------------------------------------------------------------

struct keys_script : held_promises {
  verdict next;
  std::vector<model::key_info> keys;  ///< what `list` answers
  std::vector<std::string> asked;     ///< "create node-1 node", "list", "revoke x", "rotate x 60"
  uint32_t revoked = 2;
};

/// The secret every key of the mock keys actor gets.
inline const std::string mock_secret(64, 'a');

inline keys_actor::behavior_type mock_keys(keys_actor::pointer self,
                                           std::shared_ptr<keys_script> s) {
  return {
    [=](atom::create, std::string& id, model::role r) -> caf::result<model::key_entry> {
      s->asked.push_back("create " + id + " " + model::to_string(r));
      return respond(self, *s, s->next, model::key_entry{id, r, mock_secret, fake_epoch, 0});
    },
    [=](atom::list) -> caf::result<std::vector<model::key_info>> {
      s->asked.push_back("list");
      return respond(self, *s, s->next, s->keys);
    },
    [=](atom::revoke, std::string& id) -> caf::result<uint32_t> {
      s->asked.push_back("revoke " + id);
      return respond(self, *s, s->next, s->revoked);
    },
    [=](atom::rotate, std::string& id, int64_t grace) -> caf::result<model::key_entry> {
      s->asked.push_back("rotate " + id + " " + std::to_string(grace));
      return respond(self, *s, s->next,
                     model::key_entry{id, model::role::operator_, mock_secret, fake_epoch, 0});
    },
    [](atom::tick) {},
  };
}

// -- artifact store ----------------------------------------------------------------------

struct artifacts_script : held_promises {
  verdict next;
  std::vector<artifact_info> stored;   ///< what `list` answers
  std::vector<artifact_upload> uploads;
  std::vector<std::string> removed;
};

/// The SHA-256 the mock store gives every upload.
inline const std::string mock_sha256 =
  "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b";

inline artifact_store_actor::behavior_type mock_artifacts(artifact_store_actor::pointer self,
                                                          std::shared_ptr<artifacts_script> s) {
  auto described = [s](const std::string& name) -> const artifact_info* {
    for (auto& a : s->stored)
      if (a.name == name)
        return &a;
    return nullptr;
  };
  return {
    [=](atom::upload, artifact_upload& up) -> caf::result<artifact_info> {
      artifact_info a;
      a.name = up.name;
      a.size = static_cast<int64_t>(up.body.size());
      a.sha256 = mock_sha256;
      a.uploaded_at = fake_epoch;
      s->uploads.push_back(std::move(up));
      return respond(self, *s, s->next, std::move(a));
    },
    [=](atom::get, std::string& name) -> caf::result<artifact_blob> {
      if (auto* a = described(name))
        return respond(self, *s, s->next, artifact_blob{*a, nullptr});
      return make_api_error(api_errc::not_found, "no such artifact", "artifact", "name", name);
    },
    [=](atom::info, std::string& name) -> caf::result<artifact_info> {
      if (auto* a = described(name))
        return respond(self, *s, s->next, *a);
      return make_api_error(api_errc::not_found, "no such artifact", "artifact", "name", name);
    },
    [=](atom::remove, std::string& name) -> caf::result<atom::ok> {
      s->removed.push_back(name);
      return respond(self, *s, s->next, atom::ok::value);
    },
    [=](atom::list) -> caf::result<std::vector<artifact_info>> {
      return respond(self, *s, s->next, s->stored);
    },
    [](atom::refresh) {},
  };
}

// -- transport ---------------------------------------------------------------------------

/// Everything the gateway sent its transport, in order.
struct gateway_wire {
  std::vector<std::pair<uint64_t, coap_reply>> replies;
  std::vector<std::pair<uint64_t, model::fleet_health>> health;
  std::vector<std::pair<uint64_t, model::system_info>> systems;
  std::vector<std::pair<uint64_t, coap_reply>> listings;  ///< from the reader
  std::vector<std::pair<resource, urgency>> changed;
  size_t other = 0;  ///< messages of any other kind

  /// How many answers of any kind went out for request `id`.
  size_t answers_to(uint64_t id) const {
    size_t n = 0;
    for (auto& r : replies)
      n += r.first == id;
    for (auto& r : health)
      n += r.first == id;
    for (auto& r : systems)
      n += r.first == id;
    for (auto& r : listings)
      n += r.first == id;
    return n;
  }
};

inline transport_actor::behavior_type mock_gateway_transport(transport_actor::pointer,
                                                             std::shared_ptr<gateway_wire> w) {
  return {
    [w](atom::route, std::string&, node_actor&) { ++w->other; },
    [w](atom::unroute, std::string&) { ++w->other; },
    [w](atom::health, uint64_t, coap_reply&) { ++w->other; },
    [w](atom::changes, uint64_t, node_changes&) { ++w->other; },
    [w](atom::notify, job_actor&, std::string&, uint16_t, model::update_notification&) {
      ++w->other;
    },
    [w](atom::reply, uint64_t id, coap_reply& r) { w->replies.emplace_back(id, std::move(r)); },
    [w](atom::reply, uint64_t id, model::fleet_health& h) {
      w->health.emplace_back(id, std::move(h));
    },
    [w](atom::reply, uint64_t id, model::system_info& s) {
      w->systems.emplace_back(id, std::move(s));
    },
    [w](atom::listing, uint64_t id, coap_reply& r) { w->listings.emplace_back(id, std::move(r)); },
    [w](atom::listing, uint64_t, listing_chunk&) { ++w->other; },
    [w](atom::more, listing_chunk&) { ++w->other; },
    [w](atom::artifact, artifact_blob&) { ++w->other; },
    [w](atom::remove, std::string&) { ++w->other; },
    [w](atom::route, std::string&, job_actor&) { ++w->other; },
    [w](atom::forget, std::string&) { ++w->other; },
    [w](atom::forget, resource&) { ++w->other; },
    [w](atom::changed, resource& r, urgency u) { w->changed.emplace_back(std::move(r), u); },
    [w](atom::absorbed, uint64_t) { ++w->other; },
    [w](atom::keys, model::key_table&) { ++w->other; },
    [w](atom::audit, model::audit_page&) { ++w->other; },
    [w](atom::audit, std::vector<model::audit_record>&) { ++w->other; },
  };
}

}  // namespace coapfleet::actor_test
