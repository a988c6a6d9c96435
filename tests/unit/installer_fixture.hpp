// The installer's test fixture (agent_installer_test.cpp,
// agent_signed_jobs_test.cpp): the installer on the test coordinator with a
// mock reporter and transport (which also plays the server's GET
// /updates/<job>/spec), its journal in a temporary state directory, and its
// handler runs started through the installer's worker seam.
#pragma once

#include "agent_test_support.hpp"

#include "actors/agent/installer.hpp"
#include "actors/agent/journal.hpp"

namespace coapfleet::agent_test {

using namespace std::chrono_literals;
using model::node_update_state;

/// A worker that says what the test tells it to, from its own address.
inline caf::behavior puppet_worker(caf::event_based_actor* self, installer_actor installer) {
  return {
    [self, installer](atom::report, bool ok, int32_t result, std::string& msg, bool) {
      self->send(installer, atom::report::value, ok, result, msg, false);
    },
    [self, installer](atom::install, int32_t pgid) {
      self->send(installer, atom::install::value, pgid);
    },
    // Ends without a result, as a worker whose work crashed would.
    [self](atom::cancel) { self->quit(caf::exit_reason::unhandled_exception); },
  };
}

/// One handler run the installer started.
struct launched {
  std::string job_id;
  agent::handler_run run;
  caf::actor worker;
};

struct installer_fixture : coordinated_system {
  temp_dir dir;
  std::shared_ptr<transport_log> wire = std::make_shared<transport_log>();
  std::shared_ptr<reporter_log> reporter_seen = std::make_shared<reporter_log>();
  agent_transport_actor transport;
  reporter_actor reporter;
  agent::installer_config icfg;
  installer_actor installer;
  std::vector<launched> runs;

  installer_fixture() {
    transport = own(sys->spawn(mock_transport, wire));
    reporter = own(sys->spawn(mock_reporter, reporter_seen));
    icfg.node_id = "node-1";
    icfg.state_dir = dir.path.string();
    icfg.handlers.state_dir = dir.path.string();
    icfg.handlers.timeout = 60s;
    icfg.watchdog_grace = 2s;
    use_puppets();
  }

  /// Handler runs go to puppet workers the test moves by hand.
  void use_puppets() {
    icfg.launch = [this](caf::actor_system& s, installer_actor inst, agent::handler_run run) {
      auto w = own(s.spawn(puppet_worker, inst));
      runs.push_back({run.note.job_id, std::move(run), w});
      return w;
    };
  }

  /// Handler runs go to the real worker body with `fn`, on the coordinator.
  void use_worker(agent::handler_fn fn) {
    icfg.launch = [this, fn](caf::actor_system& s, installer_actor inst, agent::handler_run run) {
      runs.push_back({run.note.job_id, run, {}});
      return s.spawn(agent::install_worker, std::move(inst), std::move(run), fn);
    };
  }

  void start() {
    installer = own(agent::spawn_installer(*sys, icfg, reporter, transport));
    sched->run();
  }

  static model::update_notification script_job(const std::string& id, const std::string& script,
                                               int32_t timeout_seconds = 0) {
    model::update_notification n;
    n.job_id = id;
    n.node_id = "node-1";
    n.spec.name = "tools";
    n.spec.version = "1";
    n.spec.package_type = "script";
    n.spec.script = script;
    n.spec.timeout_seconds = timeout_seconds;
    return n;
  }

  /// The server has job `n` for this node (the mock transport answers the
  /// installer's fetch with it); returns the notification of it, which
  /// carries the ids only.
  model::update_notification serve(const model::update_notification& n) {
    wire->specs[n.job_id] = model::encode_node_job(n);
    model::update_notification ids;
    ids.job_id = n.job_id;
    ids.node_id = n.node_id;
    return ids;
  }

  bool notify(const model::update_notification& n) {
    ask<atom::ok>(installer, atom::notify::value, serve(n));
    return true;
  }

  std::pair<std::string, uint32_t> status() {
    std::pair<std::string, uint32_t> out;
    auto rh = (*self)->request(installer, caf::infinite, atom::status::value);
    sched->run();
    bool got = false;
    std::move(rh).receive(
      [&](std::string& job, uint32_t queued) {
        out = {job, queued};
        got = true;
      },
      [&](caf::error& e) { FAIL("unexpected error: " << caf::to_string(e)); });
    REQUIRE(got);
    return out;
  }

  /// The worker of run `i` says something to the installer.
  template <class... Ts>
  void worker_says(size_t i, Ts... xs) {
    REQUIRE(i < runs.size());
    caf::anon_send(runs[i].worker, xs...);
    sched->run();
  }

  std::vector<model::update_report> reports_of(const std::string& job) {
    std::vector<model::update_report> out;
    for (auto& r : reporter_seen->reports)
      if (r.job_id == job)
        out.push_back(r);
    return out;
  }

  std::vector<node_update_state> states_of(const std::string& job) {
    std::vector<node_update_state> out;
    for (auto& r : reports_of(job))
      out.push_back(r.state);
    return out;
  }

  model::job_journal journal() {
    std::string err;
    auto j = agent::load_journal(dir / "journal.json", err);
    CHECK(err.empty());
    return j;
  }
};

const std::vector<node_update_state> ran_ok{node_update_state::installing,
                                            node_update_state::succeeded};
const std::vector<node_update_state> ran_failed{node_update_state::installing,
                                                node_update_state::failed};

}  // namespace coapfleet::agent_test
