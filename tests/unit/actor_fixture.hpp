// The server's actor tests share this: an actor system per test on CAF's
// test_coordinator (the test decides when each message is delivered and when
// timers fire), and `fixture`, which runs the real registry, node, job,
// supervisor, artifact store and persistence actors on a real SQLite file in
// a temporary directory, with a mock transport that records what would go on
// the wire. Requests go out from small probe actors: `ask` runs the system
// and requires an answer; `ask_later` leaves the running to the test, so it
// can look at the system while a commit is in flight.
//
// Every fixture owns its system, its directory, its logs and its clock (the
// wall clock the actors under test read): nothing is shared between tests.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <caf/scheduler/test_coordinator.hpp>

#include "actors/interfaces.hpp"
#include "common/log.hpp"
#include "actors/server/artifact_store.hpp"
#include "actors/server/job_supervisor.hpp"
#include "actors/server/persistence.hpp"
#include "actors/server/registry.hpp"

namespace coapfleet::actor_test {

using namespace std::chrono_literals;

/// Where every fixture's clock starts.
constexpr model::millis fake_epoch = 1'000'000;

/// A fresh directory from mkdtemp, removed with its content at the end.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    auto tmpl = (std::filesystem::temp_directory_path() / "coapfleet-actors-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
};

/// An answer that arrives while the test goes on.
template <class T>
struct later {
  bool done = false;
  std::optional<T> value;
  caf::error error;
};

// -- the actor system ----------------------------------------------------------------

/// An actor system on the test coordinator, the actors a test spawned
/// (stopped at the end, so the system can go), and ways to ask them.
struct coordinated_system {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  std::vector<caf::actor> owned;
  /// This test's wall clock, read by the actors under test through clock_fn().
  std::shared_ptr<model::millis> clock = std::make_shared<model::millis>(fake_epoch);
  model::millis now() const { return *clock; }
  std::function<model::millis()> clock_fn() const {
    return [c = clock] { return *c; };
  }
  /// Moves only the wall clock (no timer fires).
  void shift_clock(model::millis by) { *clock += by; }

  coordinated_system() {
    log::set_level(log::level::off);
    cfg.set("scheduler.policy", caf::atom("testing"));
    cfg.set("logger.console", caf::atom("none"));
    cfg.add_message_types<caf::id_block::coapfleet>();
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
  }

  ~coordinated_system() {
    stop_all();
    sys.reset();
  }

  coordinated_system(const coordinated_system&) = delete;
  coordinated_system& operator=(const coordinated_system&) = delete;

  /// Remembers `h` to stop it at the end; returns it.
  template <class Handle>
  Handle own(Handle h) {
    owned.push_back(caf::actor_cast<caf::actor>(h));
    return h;
  }

  /// Kills `h` (as a crash would) and runs the system until its exit is processed.
  template <class Handle>
  void kill(const Handle& h) {
    caf::anon_send_exit(h, caf::exit_reason::kill);
    sched->run();
  }

  void stop_all() {
    for (auto& h : owned)
      caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
    owned.clear();
    sched->run();
  }

  /// Moves both clocks forward (the coordinator's: timers due fire; the
  /// fake one the actors read) and runs the system.
  void advance(caf::timespan by) {
    *clock += std::chrono::duration_cast<std::chrono::milliseconds>(by).count();
    sched->advance_time(by);
    sched->run();
  }

  /// Sends a request, runs the system, and returns the answer (or fails).
  template <class T, class Handle, class... Ts>
  T ask(const Handle& h, Ts... xs) {
    auto answer = ask_later<T>(h, std::move(xs)...);
    sched->run();
    REQUIRE_MESSAGE(answer->done, "no answer");
    if (!answer->value)
      FAIL("unexpected error: " << caf::to_string(answer->error));
    return std::move(*answer->value);
  }

  /// Sends a request that must fail; returns the error.
  template <class T, class Handle, class... Ts>
  caf::error ask_error(const Handle& h, Ts... xs) {
    auto answer = ask_later<T>(h, std::move(xs)...);
    sched->run();
    REQUIRE_MESSAGE(answer->done, "no answer");
    CHECK_MESSAGE(!answer->value, "expected an error");
    return answer->error;
  }

  /// Sends a request from a helper actor without running the system: the
  /// answer is filled in whenever it arrives.
  template <class T, class Handle, class... Ts>
  std::shared_ptr<later<T>> ask_later(const Handle& h, Ts... xs) {
    auto out = std::make_shared<later<T>>();
    sys->spawn([=](caf::event_based_actor* probe) {
      probe->request(h, caf::infinite, xs...)
        .then(
          [out](T& x) {
            out->value = std::move(x);
            out->done = true;
          },
          [out](caf::error& e) {
            out->error = std::move(e);
            out->done = true;
          });
    });
    return out;
  }

  /// Runs every actor but one: what it was sent stays in its mailbox.
  template <class Handle>
  void run_all_but(const Handle& h) {
    auto* p = dynamic_cast<caf::resumable*>(caf::actor_cast<caf::abstract_actor*>(h));
    sched->run_jobs_filtered([p](caf::resumable* r) { return r != p; });
  }
};

// -- the transport -------------------------------------------------------------------

/// What the mock transport saw.
struct wire_log {
  std::vector<std::pair<std::string, node_actor>> routes;
  std::vector<std::pair<std::string, job_actor>> job_routes;
  std::vector<std::tuple<job_actor, std::string, uint16_t, model::update_notification>> notes;
  std::vector<std::string> changed;
  std::vector<std::string> forgotten;
  std::vector<uint64_t> absorbed;
  std::vector<artifact_blob> served;  ///< artifacts handed over to serve
  std::vector<model::key_table> keys;  ///< key tables announced
  std::vector<model::audit_page> audit_tails;     ///< audit tails at start
  std::vector<model::audit_record> audited;       ///< audit records committed
  /// The routes as the real transport keeps them (route adds, unroute drops).
  std::map<std::string, node_actor> active;
  std::vector<std::string> unrouted;
  /// The registry's copies of /nodes/changes (for the reader to render).
  std::vector<std::pair<uint64_t, node_changes>> changes;
  /// The registry's answers to reports it was handed (request id, answer).
  std::vector<std::pair<uint64_t, coap_reply>> health_answers;
  /// Where unroute is confirmed (the fixture sets it; reset when stopped).
  registry_actor registry;

  /// The newest route for a node / job.
  node_actor node(const std::string& id) const {
    for (auto i = routes.rbegin(); i != routes.rend(); ++i)
      if (i->first == id)
        return i->second;
    return {};
  }
  job_actor job(const std::string& id) const {
    for (auto i = job_routes.rbegin(); i != job_routes.rend(); ++i)
      if (i->first == id)
        return i->second;
    return {};
  }
  size_t routes_of(const std::string& id) const {
    size_t n = 0;
    for (auto& r : routes)
      n += r.first == id;
    return n;
  }
  bool saw_changed(const std::string& path) const {
    return std::find(changed.begin(), changed.end(), path) != changed.end();
  }
  void clear() {
    notes.clear();
    changed.clear();
  }
};

inline transport_actor::behavior_type mock_transport(transport_actor::pointer,
                                                     std::shared_ptr<wire_log> log) {
  return {
    [log](atom::route, std::string& id, node_actor& a) {
      log->routes.emplace_back(id, a);
      log->active[id] = a;
    },
    [log](atom::unroute, std::string& id) {
      log->active.erase(id);
      log->unrouted.push_back(id);
      caf::anon_send(log->registry, atom::unroute::value, id);
    },
    [log](atom::health, uint64_t id, coap_reply& r) {
      log->health_answers.emplace_back(id, std::move(r));
    },
    [log](atom::changes, uint64_t id, node_changes& c) {
      log->changes.emplace_back(id, std::move(c));
    },
    [log](atom::notify, job_actor& job, std::string& ip, uint16_t port,
          model::update_notification& n) { log->notes.emplace_back(job, ip, port, n); },
    [](atom::reply, uint64_t, coap_reply&) {},
    [](atom::reply, uint64_t, model::fleet_health&) {},
    [](atom::reply, uint64_t, model::system_info&) {},
    [](atom::listing, uint64_t, coap_reply&) {},
    [](atom::listing, uint64_t, listing_chunk&) {},
    [](atom::more, listing_chunk&) {},
    [log](atom::artifact, artifact_blob& a) { log->served.push_back(std::move(a)); },
    [log](atom::remove, std::string& name) { log->forgotten.push_back("artifact " + name); },
    [log](atom::route, std::string& id, job_actor& j) { log->job_routes.emplace_back(id, j); },
    [log](atom::forget, std::string& id) { log->forgotten.push_back(id); },
    [log](atom::forget, resource& r) { log->forgotten.push_back(r.id); },
    [log](atom::changed, resource& r, urgency) { log->changed.push_back(path_of(r)); },
    [log](atom::absorbed, uint64_t n) { log->absorbed.push_back(n); },
    [log](atom::keys, model::key_table& k) { log->keys.push_back(std::move(k)); },
    [log](atom::audit, model::audit_page& p) { log->audit_tails.push_back(std::move(p)); },
    [log](atom::audit, std::vector<model::audit_record>& r) {
      for (auto& x : r)
        log->audited.push_back(std::move(x));
    },
  };
}

/// Another connection holding the database's write lock while it lives:
/// every commit fails (after the store's short busy timeout).
struct db_lock {
  server::write_lock lock;
  explicit db_lock(const std::filesystem::path& path) : lock(path.string()) {
    REQUIRE(lock.ok());
  }
};

// -- the real actors ------------------------------------------------------------------

/// The server's actors but the gateway, the system actor and the transport,
/// on a database of their own.
struct fixture : coordinated_system {
  temp_dir tmp;
  std::filesystem::path dir = tmp.path;
  std::shared_ptr<wire_log> wire = std::make_shared<wire_log>();
  persistence_actor persistence;
  transport_actor transport;
  registry_actor registry;
  job_supervisor_actor jobs;
  artifact_store_actor artifacts;
  server::liveness_config liveness;
  size_t max_changes = 5;  ///< of /nodes/changes (small: the reset shows)
  size_t health_list_max = 100;  ///< unhealthy nodes GET /health lists
  peer op{"127.0.0.1", 40001, {}};
  std::string member_id;  ///< the job supervisor's, in a cluster ("": on its own)

  fixture() {
    liveness.now = clock_fn();
    liveness.stale_after = 10s;
    liveness.offline_after = 30s;
    start({});
  }

  ~fixture() { stop(); }

  /// Spawns the actors on what the store held (as a start of the server does).
  void start(loaded_state loaded) {
    std::string err;
    auto db = server::store::open((dir / "fleet.db").string(), err);
    REQUIRE_MESSAGE(db, err);
    db->set_busy_timeout(50);  // a test that locks the database waits no longer
    transport = sys->spawn(mock_transport, wire);
    server::persistence_config pc;
    pc.detached = false;
    pc.transport = transport;
    pc.absorbed_every = 2;
    pc.history_keep = std::chrono::hours(0);  // no hourly trim timer (store_test trims)
    persistence = server::spawn_persistence(*sys, std::move(db), pc);
    server::registry_config rc;
    rc.liveness = liveness;
    rc.max_changes = max_changes;
    rc.health_list_max = health_list_max;
    registry = server::spawn_registry(*sys, rc, std::move(loaded.nodes), persistence, transport);
    wire->registry = registry;
    server::job_supervisor_config jc;
    jc.job.default_timeout = 60s;
    jc.now = clock_fn();
    jc.max_changes = max_changes;
    jc.member_id = member_id;
    artifacts = server::spawn_artifact_store(*sys, artifact_config(dir / "artifacts"), transport);
    jobs = server::spawn_job_supervisor(*sys, jc, std::move(loaded.jobs), registry, persistence,
                                        transport, artifacts);
    sched->run();
  }

  /// An artifact store on this thread, over `directory`.
  static server::artifact_store_config artifact_config(const std::filesystem::path& directory) {
    server::artifact_store_config c;
    c.directory = directory.string();
    c.detached = false;
    return c;
  }

  std::vector<caf::actor> actors() const {
    return {caf::actor_cast<caf::actor>(jobs), caf::actor_cast<caf::actor>(registry),
            caf::actor_cast<caf::actor>(artifacts), caf::actor_cast<caf::actor>(persistence),
            caf::actor_cast<caf::actor>(transport)};
  }

  /// Stops every actor (the persistence actor commits what is pending).
  void stop() {
    for (auto& h : actors())
      caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
    sched->run();
    wire->registry = nullptr;
    wire->active.clear();
  }

  /// Stops the actors (as a restart would), then reads the store and
  /// forgets what the transport saw; `start` with the result brings the
  /// server back.
  loaded_state restart() {
    stop();  // the persistence actor commits what is pending
    auto out = stored();
    wire->routes.clear();
    wire->notes.clear();
    return out;
  }

  /// Runs every actor but the persistence actor: whatever it was asked to
  /// write stays in flight.
  void run_all_but_persistence() { run_all_but(persistence); }

  /// What the database holds, read through a second connection.
  loaded_state stored() {
    std::string err;
    auto db = server::store::open((dir / "fleet.db").string(), err);
    REQUIRE_MESSAGE(db, err);
    return loaded_state{db->load_briefs(), db->load_jobs()};
  }

  /// Every stored node's full record, read from the store.
  std::vector<model::node_record> stored_nodes() {
    std::string err;
    auto db = server::store::open((dir / "fleet.db").string(), err);
    REQUIRE_MESSAGE(db, err);
    return db->load_nodes();
  }

  /// A health report of `node` reaching the persistence actor.
  void store_health(int cpu, const std::string& node = "node-1") {
    model::health_report h;
    h.node_id = node;
    h.cpu_percent = cpu;
    caf::anon_send(persistence, atom::health::value, model::put_health{h, now() + cpu});
    sched->run();
  }

  registered enroll(const std::string& id, const std::string& ip = "127.1.0.1") {
    model::node_registration reg;
    reg.node_id = id;
    reg.ip_address = ip;
    return ask<registered>(registry, atom::enroll::value, reg, peer{"127.0.0.1", 40000, {}});
  }

  /// A PUT /health as the transport hands it on: to the node's actor while
  /// it is routed, else to the registry. The answer's code (2.04 when routed).
  uint16_t report(model::health_report h, model::millis at) {
    auto i = wire->active.find(h.node_id);
    if (i != wire->active.end()) {
      caf::anon_send(i->second, atom::health::value, std::move(h), at);
      sched->run();
      return 204;
    }
    auto id = ++report_ids;
    caf::anon_send(registry, atom::health::value, id, std::move(h), at);
    sched->run();
    for (auto& a : wire->health_answers)
      if (a.first == id)
        return a.second.code;
    return 0;
  }
  uint16_t report(const std::string& node, double cpu, bool healthy = true,
                  std::vector<std::string> errors = {}) {
    model::health_report h;
    h.node_id = node;
    h.cpu_percent = cpu;
    h.overall_healthy = healthy;
    h.error_messages = std::move(errors);
    return report(std::move(h), now());
  }
  uint64_t report_ids = 0;

  /// One node's record as GET /nodes/<id>/health reads it (through the registry).
  model::node_record node(const std::string& id) {
    return ask<model::node_record>(registry, atom::get::value, id);
  }

  /// Every registered node's record (through the registry), sorted by id;
  /// only those of `status` when given.
  std::vector<model::node_record> nodes(const std::string& status = {}) {
    auto briefs = ask<loaded_state>(persistence, atom::load::value).nodes;
    std::sort(briefs.begin(), briefs.end(),
              [](const auto& a, const auto& b) { return a.node_id < b.node_id; });
    std::vector<model::node_record> out;
    for (auto& b : briefs) {
      auto rec = ask_later<model::node_record>(registry, atom::get::value, b.node_id);
      sched->run();
      if (rec->value && (status.empty() || status == model::to_string(rec->value->status)))
        out.push_back(std::move(*rec->value));  // a node that is down is left out
    }
    return out;
  }

  model::job_spec script_job(std::vector<std::string> targets = {"all"}) {
    model::job_spec spec;
    spec.name = "fw";
    spec.version = "1";
    spec.package_type = "script";
    spec.script = "true";
    spec.target_nodes = std::move(targets);
    return spec;
  }

  model::job_record create(const model::job_spec& spec) {
    return ask<model::job_record>(jobs, atom::create::value, spec, op);
  }

  model::job_record status(const std::string& job_id) {
    return ask<model::job_record>(jobs, atom::status::value, job_id);
  }

  model::update_report report(const std::string& job_id, const std::string& node,
                              model::node_update_state s) {
    model::update_report r;
    r.job_id = job_id;
    r.node_id = node;
    r.state = s;
    return r;
  }
};

// -- checks ----------------------------------------------------------------------------

/// The fields of a job record that the store keeps.
inline bool same_job(const model::job_record& a, const model::job_record& b) {
  if (a.job_id != b.job_id || a.status != b.status || a.error_message != b.error_message
      || a.updated_at != b.updated_at || a.nodes.size() != b.nodes.size())
    return false;
  for (size_t i = 0; i < a.nodes.size(); ++i) {
    auto& x = a.nodes[i];
    auto& y = b.nodes[i];
    if (x.node_id != y.node_id || x.state != y.state || x.progress != y.progress
        || x.result != y.result || x.error_message != y.error_message
        || x.updated_at != y.updated_at)
      return false;
  }
  return true;
}

/// The (what, field, key, value) context of an application error.
inline std::vector<std::string> error_context(const caf::error& err) {
  auto& ctx = err.context();
  if (!ctx.match_elements<std::string, std::string, std::string, std::string>())
    return {};
  return {ctx.get_as<std::string>(0), ctx.get_as<std::string>(1), ctx.get_as<std::string>(2),
          ctx.get_as<std::string>(3)};
}

inline bool is_api_error(const caf::error& err, api_errc code) {
  return err.category() == api_category && err.code() == static_cast<uint8_t>(code);
}

}  // namespace coapfleet::actor_test
