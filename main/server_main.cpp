// coapfleet-server: the main server. Assembles the actors and the CoAP
// transport, runs until a signal or a restart/shutdown request, then stops
// gracefully (everything committed) and, for a restart, executes itself anew.
#include <algorithm>
#include <csignal>
#include <malloc.h>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/clock.hpp"
#include "common/listen_port.hpp"
#include "actors/interfaces.hpp"
#include "common/log.hpp"
#include "common/scheduler_config.hpp"
#include "actors/server/artifact_store.hpp"
#include "actors/server/job_supervisor.hpp"
#include "actors/server/keys.hpp"
#include "actors/server/persistence.hpp"
#include "actors/server/registry.hpp"
#include "actors/server/system.hpp"
#include "actors/server/gateway.hpp"
#include "actors/server/reader.hpp"
#include "transport/server_transport.hpp"
#include "server_cluster.hpp"
#include "server_keys.hpp"
#include "server_options.hpp"
#include "common/shutdown_watch.hpp"
#include "store/store.hpp"

using namespace coapfleet;

namespace {

/// The path of the running program ("" when unknown).
std::string own_executable() {
  char path[PATH_MAX];
  auto n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  return n > 0 ? std::string(path, static_cast<size_t>(n)) : std::string();
}

int serve(server::server_options& opt, bool& restart, shutdown_watch& watch,
          const std::function<void(const std::string&)>& give_up) {
  caf::actor_system_config cfg;
  cfg.add_message_types<caf::id_block::coapfleet>();
  cfg.add_message_types<caf::id_block::coapfleet_cluster>();
  cfg.set("logger.console", caf::atom("none"));
  server::configure_cluster(cfg, opt.cluster);
  configure_scheduler(cfg, opt.workers);
  caf::actor_system sys{cfg};

  // The actors running so far. They end in the reverse order of their
  // start, on a stop and on a start that fails half-way alike: the actor
  // system's end waits for every actor.
  std::vector<std::pair<const char*, caf::actor>> started;
  auto end_started = [&] {
    for (auto it = started.rbegin(); it != started.rend(); ++it) {
      watch.track(it->first, it->second);
      caf::anon_send_exit(it->second, caf::exit_reason::user_shutdown);
    }
    started.clear();
  };
  auto failed = [&](const std::string& why) {
    CF_ERROR("main", why);
    end_started();
    watch.start([](const std::string&) { std::_Exit(1); });
    return 1;
  };
  auto add = [&](const char* name, const auto& handle) {
    started.emplace_back(name, caf::actor_cast<caf::actor>(handle));
  };

  std::string error;
  auto db = server::store::open(opt.db, error);
  if (!db) {
    CF_ERROR("main", "cannot open the store: ", error);
    return 1;
  }
  db->set_audit_keep(opt.audit_keep);
  std::string store_name =
    db->path() + (db->postgresql() ? " (PostgreSQL)" : " (SQLite, WAL)");
  opt.transport.audit_tail = std::min<uint64_t>(model::audit_max_limit, opt.audit_keep);
  opt.transport.audit_keep = opt.audit_keep;
  opt.transport.started_at = now_millis();
  transport::server_transport net{sys, opt.transport};
  if (!net.open(error)) {
    CF_ERROR("main", error);
    return 1;
  }
  // A member joins (a new epoch) before anything is written: every commit
  // is fenced by its lease from the first on. It joins once its sockets are
  // bound (the transport serves nothing before it runs): a server that
  // cannot listen never shows as a live member to the others.
  server::member_row me;
  std::unique_ptr<server::member_table> members;
  if (opt.cluster.clustered()) {
    if (auto refusal = server::cluster_listen_refusal(opt.cluster); !refusal.empty()) {
      CF_ERROR("main", refusal);
      return 1;
    }
    members = server::join_cluster(opt.cluster, opt.db,
                                   opt.transport.bind + ":" + std::to_string(opt.transport.port),
                                   *db, me, error);
    if (!members) {
      CF_ERROR("main", "cannot join the cluster: ", error);
      return 1;
    }
    CF_INFO("main", "cluster: joined as ", me.member_id, " with epoch ", me.epoch, " (lease ",
            me.lease_ms, " ms)");
  }
  server::persistence_config pcfg;
  pcfg.health_flush = std::chrono::milliseconds(opt.health_flush_ms);
  pcfg.transport = net.handle();
  pcfg.history_keep = std::chrono::hours(24 * static_cast<int64_t>(opt.history_days));
  // Told often enough for the transport to steer by, rarely enough to be cheap.
  pcfg.absorbed_every = std::clamp<uint64_t>(opt.transport.shedding.backlog_high / 4, 1, 256);
  auto persistence = server::spawn_persistence(sys, std::move(db), pcfg);
  add("persistence", persistence);
  // GET /nodes reads the database on connections of its own.
  auto read_db = server::store_reader::open(opt.db, error);
  if (!read_db)
    return failed("cannot open the store for reading: " + error);
  server::reader_config rdcfg;
  rdcfg.liveness.stale_after = static_cast<model::millis>(opt.stale_after * 1000);
  rdcfg.liveness.offline_after = static_cast<model::millis>(opt.offline_after * 1000);
  rdcfg.transport = net.handle();
  auto reader = server::spawn_reader(sys, std::move(read_db), rdcfg);
  add("reader", reader);
  net.set_reader(reader);
  loaded_state loaded;
  {
    caf::scoped_actor self{sys};
    bool ok = false;
    self->request(persistence, caf::infinite, atom::load::value)
      .receive([&](loaded_state& st) { loaded = std::move(st); ok = true; },
               [&](caf::error& err) { error = caf::to_string(err); });
    if (!ok)
      return failed("cannot load state: " + error);
  }
  auto node_count = loaded.nodes.size();
  auto job_count = loaded.jobs.size();
  server::registry_config rcfg;
  rcfg.liveness.stale_after = std::chrono::milliseconds(static_cast<int64_t>(opt.stale_after * 1000));
  rcfg.liveness.offline_after =
    std::chrono::milliseconds(static_cast<int64_t>(opt.offline_after * 1000));
  rcfg.liveness.idle_after =
    std::chrono::milliseconds(static_cast<int64_t>(opt.idle_after * 1000));
  rcfg.max_nodes = opt.max_nodes;
  rcfg.health_list_max = opt.health_list;
  rcfg.clustered = opt.cluster.clustered();
  auto registry = server::spawn_registry(sys, rcfg, std::move(loaded.nodes), persistence,
                                         net.handle());
  add("registry", registry);
  net.set_registry(registry);
  server::job_supervisor_config jcfg;
  jcfg.job.default_timeout = std::chrono::seconds(opt.job_timeout);
  jcfg.job.skip_offline = !opt.notify_offline;
  // On PostgreSQL the artifacts are the store's, shared by the members;
  // the directory holds this server's copies.
  server::artifact_store_config acfg;
  acfg.directory = opt.artifacts;
  if (server::store::names_postgresql(opt.db))
    acfg.shared_store = opt.db;
  auto artifacts = server::spawn_artifact_store(sys, acfg, net.handle());
  add("artifact-store", artifacts);
  // A member of a cluster runs only its share of the jobs, claimed once the
  // membership actor has told it who is live (actors/server/job_cluster.cpp).
  if (opt.cluster.clustered()) {
    loaded.jobs.clear();
    jcfg.member_id = me.member_id;
  }
  auto jobs = server::spawn_job_supervisor(sys, jcfg, std::move(loaded.jobs), registry,
                                           persistence, net.handle(), artifacts);
  add("job-supervisor", jobs);
  server::system_config scfg;
  scfg.allow_actions = !opt.no_system_actions;
  scfg.started_at = opt.transport.started_at;
  auto system = server::spawn_system(sys, scfg, persistence, registry, jobs);
  add("system", system);
  // Hands the valid keys to the transport now and whenever they change.
  auto keys = server::spawn_keys(sys, server::keys_config{}, persistence, net.handle());
  add("keys", keys);
  auto cluster = server::start_cluster(sys, opt.cluster, me, std::move(members), persistence,
                                       error);
  if (!cluster)
    return failed(error);
  add("cluster", cluster);
  caf::anon_send(cluster, atom::observe::value, caf::actor_cast<caf::actor>(jobs),
                 caf::actor_cast<caf::actor>(registry));
  server::gateway_config gcfg;
  gcfg.jobs_per_minute = opt.jobs_per_minute;
  auto gateway = server::spawn_gateway(
    sys, gcfg,
    server::gateway_peers{net.handle(), registry, jobs, system, persistence, artifacts, keys,
                          cluster});
  add("gateway", gateway);
  net.set_gateway(gateway);

  CF_INFO("main", "coapfleet-server ", COAPFLEET_VERSION, " listening on ",
          net.endpoint_description());
  auto secure = net.secure_endpoint_description();
  CF_INFO("main", secure.empty() ? std::string("no DTLS (--dtls-port 0)") : "and on " + secure);
  {
    std::string trusted;
    for (auto& c : opt.transport.plain_trusted)
      trusted += (trusted.empty() ? "" : ",") + c.text;
    CF_INFO("main", "plain coap:// may do everything from ",
            trusted.empty() ? std::string("nowhere") : trusted, "; from elsewhere: ",
            opt.transport.plain_role == model::role::trusted  ? "everything"
            : opt.transport.plain_role == model::role::reader ? "reads only"
                                                              : "nothing");
  }
  CF_INFO("main", "data: ", store_name, " with ", node_count, " nodes and ", job_count,
          " jobs; artifacts in ", opt.artifacts,
          server::store::names_postgresql(opt.db) ? " (copies of the store's)" : "");
  CF_INFO("main", "liveness: stale after ", opt.stale_after, " s, offline after ",
          opt.offline_after, " s; a node's actor is closed after ", opt.idle_after,
          " s quiet; system actions ",
          opt.no_system_actions ? "disabled" : "enabled");

  auto reason = net.run();

  // Graceful stop: nothing new comes in; commit everything, then end actors.
  {
    caf::scoped_actor self{sys};
    self->request(persistence, std::chrono::seconds(10), atom::flush::value)
      .receive([](atom::ok) {},
               [](caf::error& err) {
                 CF_ERROR("main", "final flush failed: ", caf::to_string(err));
               });
  }
  restart = reason == transport::stop_reason::restart;
  server::unpublish_cluster(sys, opt.cluster, cluster);
  end_started();
  watch.start(give_up);
  server::await_cluster_end(std::move(cluster), std::chrono::seconds(10));
  CF_INFO("main", restart ? "restarting" : "stopped", " cleanly");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  server::server_options opt;
  CLI::App app{"coapfleet-server: the main server of a coapfleet fleet (CoAP, port 5683)"};
  server::add_server_options(app, opt);
  server::keys_command keys;
  server::add_keys_command(app, keys);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    // `keys` promises exit code 2 for a bad argument (CLI11 has its own codes).
    return keys.app->parsed() && rc != 0 ? 2 : rc;
  }
  if (keys.app->parsed())
    return server::run_keys_command(keys, opt.db);
  if (auto bad = server::finish_server_options(opt); !bad.empty()) {
    std::fprintf(stderr, "%s\n", bad.c_str());
    return 2;
  }
  log::level lvl;
  log::parse_level(opt.log_level, lvl);
  log::set_level(lvl);

  // Few malloc arenas: a server of many small actors fragments less. Large
  // blocks (a fleet's listing, megabytes, replaced several times a second)
  // always come from mmap and go back to the system when freed; glibc would
  // otherwise raise its threshold to their size and leave them in the heap.
  mallopt(M_ARENA_MAX, 2);
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);

  // SIGINT/SIGTERM are taken by the transport's signalfd; block them in
  // every thread before any thread exists.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  common::share_listening_ports(opt.reuse_port);
  // Where this program is, for a restart: executing /proc/self/exe itself
  // would work as well, but the process would then be named "exe" in ps.
  const std::string self = own_executable();
  bool restart = false;
  auto run_again = [&](bool flush) {
    // Every socket closed with serve()'s transport: the new program binds
    // the same ports as its own (without --reuse-port).
    if (flush)
      std::fflush(nullptr);
    pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
    if (!self.empty())
      ::execv(self.c_str(), argv);  // argv[0] as given
    ::execv("/proc/self/exe", argv);  // moved or deleted since the start
    std::perror("coapfleet-server: restart failed");
  };
  // Once stopping, the actors have this long to end.
  shutdown_watch watch{std::chrono::seconds(15)};
  int rc = serve(opt, restart, watch, [&](const std::string&) {
    if (restart) {
      run_again(false);  // stdio may be held by an actor that hangs
      std::_Exit(1);
    }
    std::_Exit(0);
  });
  watch.done();
  if (rc == 0 && restart) {
    run_again(true);
    return 1;
  }
  return rc;
}
