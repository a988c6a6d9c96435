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

#include "common/cidr.hpp"
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
#include "common/shutdown_watch.hpp"
#include "store/store.hpp"

using namespace coapfleet;

namespace {

struct options {
  transport::server_transport_config transport;
  std::string db = "coapfleet.db";
  std::string artifacts;  ///< default: "artifacts" beside the database
  std::string log_level = "info";
  double stale_after = 60;
  size_t max_nodes = 1'000'000;
  double jobs_per_minute = 60;
  double offline_after = 180;
  double idle_after = 40;
  size_t health_list = 100;
  unsigned health_flush_ms = 500;
  unsigned job_timeout = 3600;
  bool notify_offline = false;
  bool no_system_actions = false;
  bool reuse_port = false;
  size_t max_payload = 64 * 1024;
  std::string plain_trusted = "127.0.0.0/8,::1/128";
  std::string plain_access = "read";
  /// Audit records kept (the oldest go first).
  uint64_t audit_keep = model::audit_default_keep;
  unsigned history_days = 90;
  server::cluster_options cluster;
  /// Threads running the actors (the transport and the database have their
  /// own): the cores but one, at least 2, at most 4.
  unsigned workers = std::clamp(std::thread::hardware_concurrency(), 3u, 5u) - 1;
};

/// The path of the running program ("" when unknown).
std::string own_executable() {
  char path[PATH_MAX];
  auto n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  return n > 0 ? std::string(path, static_cast<size_t>(n)) : std::string();
}

int serve(options& opt, bool& restart, shutdown_watch& watch,
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
  // A member joins (a new epoch) before anything is written: every commit
  // is fenced by its lease from the first on.
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
  options opt;
  CLI::App app{"coapfleet-server: the main server of a coapfleet fleet (CoAP, port 5683)"};
  app.add_option("--bind", opt.transport.bind, "IPv4/IPv6 address to listen on")
    ->capture_default_str();
  app.add_option("--port", opt.transport.port, "UDP port to listen on")->capture_default_str();
  app.add_option("--store,--db", opt.db,
                 "the store: a SQLite database file, or postgresql://USER@HOST:PORT/DB"
                 " (PostgreSQL, shared by the members of a cluster)")
    ->capture_default_str();
  server::add_cluster_options(app, opt.cluster);
  app.add_option("--artifacts", opt.artifacts,
                 "directory of uploaded artifacts (default: artifacts/ beside the database;"
                 " on PostgreSQL the store keeps them, and this holds the server's copies)");
  app.add_option("--max-artifact", opt.transport.max_artifact,
                 "largest accepted artifact upload in bytes")
    ->capture_default_str();
  app.add_option("--log-level", opt.log_level, "trace, debug, info, warn, error or off")
    ->capture_default_str()
    ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  app.add_option("--stale-after", opt.stale_after,
                 "seconds without a report before a node is stale")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
  app.add_option("--offline-after", opt.offline_after,
                 "seconds without a report before a node is offline")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
  app.add_option("--idle-after", opt.idle_after,
                 "seconds without a report before a node's actor is closed (its state "
                 "stays in the store; the next report starts it again)")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
  app.add_option("--health-list", opt.health_list,
                 "GET /health lists at most this many unhealthy nodes, the first by id "
                 "(unhealthy_more counts the rest; GET /nodes?health=unhealthy lists them "
                 "all); 0: every one")
    ->capture_default_str();
  app.add_option("--health-flush-ms", opt.health_flush_ms,
                 "health telemetry is committed at least this often (ms, at most 1000)")
    ->capture_default_str()
    ->check(CLI::Range(1u, 1000u));
  app.add_option("--job-timeout", opt.job_timeout,
                 "seconds after a trigger before unfinished nodes time out")
    ->capture_default_str()
    ->check(CLI::Range(1u, 30u * 86400u));
  app.add_option("--observe-interval-ms", opt.transport.observe_interval_ms,
                 "minimum time between two notifications of one observed resource "
                 "(/nodes: at least 1000)")
    ->capture_default_str();
  app.add_option("--publish-interval-ms", opt.transport.publish_interval_ms,
                 "health reports and liveness show in GET /nodes, /health and /updates "
                 "within this time (registrations and job steps at once)")
    ->capture_default_str()
    ->check(CLI::Range(10u, 60000u));
  app.add_option("--max-idle-sessions", opt.transport.max_idle_sessions,
                 "idle CoAP peer sessions kept (libcoap walks every session on each I/O turn)")
    ->capture_default_str();
  app.add_option("--shed-busy-ms", opt.transport.shedding.busy_high_ms,
                 "answer a growing share of PUT /health 5.03 while the socket has not been "
                 "empty for this long and holds half its buffer (0: never for this reason)")
    ->capture_default_str()
    ->check(CLI::Range(int64_t{0}, int64_t{60000}));
  app.add_option("--shed-backlog", opt.transport.shedding.backlog_high,
                 "answer PUT /health 5.03 while this many answered reports have not reached "
                 "the database actor")
    ->capture_default_str()
    ->check(CLI::Range(uint64_t{16}, uint64_t{1} << 30));
  app.add_option("--shed-max-age", opt.transport.shedding.max_age_s,
                 "seconds a refused node is asked to wait (Max-Age of the 5.03)")
    ->capture_default_str()
    ->check(CLI::Range(1u, 3600u));
  app.add_option("--workers", opt.workers,
                 "threads running the actors (the transport and the database have their own)")
    ->capture_default_str()
    ->check(CLI::Range(1u, 64u));
  app.add_flag("--notify-offline", opt.notify_offline,
               "notify nodes that are offline at trigger time instead of skipping them");
  app.add_flag("--no-system-actions", opt.no_system_actions,
               "refuse POST /system restart and shutdown (4.03)");
  app.add_option("--max-payload", opt.transport.max_payload,
                 "largest accepted request body in bytes (4.13 above)")
    ->capture_default_str();
  app.add_option("--dtls-port", opt.transport.dtls_port,
                 "coaps:// (DTLS) beside coap://; 0: no DTLS")
    ->capture_default_str();
  app.add_flag("--reuse-port", opt.reuse_port,
               "start even when another socket (another server, an agent) has --port or "
               "--dtls-port on this address; the kernel then gives each datagram to one of "
               "them. Without it such a start fails");
  app.add_option("--cert", opt.transport.cert_file,
                 "the server's X.509 certificate (PEM) for coaps://, with --key");
  app.add_option("--key", opt.transport.key_file, "the private key of --cert (PEM)");
  app.add_option("--ca", opt.transport.ca_file,
                 "CA certificate (PEM) whose client certificates identify clients "
                 "(DNS SAN, else CN; the key table gives the role)");
  app.add_option("--plain-trusted", opt.plain_trusted,
                 "networks whose plain coap:// requests may do everything (comma-separated CIDRs; "
                 "\"\" for none)")
    ->capture_default_str();
  app.add_option("--plain-access", opt.plain_access,
                 "what plain coap:// from other networks may do: full, read or none")
    ->capture_default_str()
    ->check(CLI::IsMember({"full", "read", "none"}));
  app.add_option("--dtls-idle-sessions", opt.transport.dtls_idle_sessions,
                 "idle DTLS sessions kept, so that nodes do not handshake on every report")
    ->capture_default_str();
  app.add_option("--dtls-handshakes", opt.transport.dtls_handshakes,
                 "DTLS handshakes in progress at once (beyond, the oldest is dropped)")
    ->capture_default_str()
    ->check(CLI::Range(1u, 1000000u));
  app.add_option("--source-rate", opt.transport.budget.rate,
                 "plain requests per second from one address outside --plain-trusted that "
                 "carries no identity (a token bucket; beyond it 4.29 with Max-Age); 0: no limit")
    ->capture_default_str()
    ->check(CLI::Range(0.0, 1e9));
  app.add_option("--source-burst", opt.transport.budget.burst,
                 "requests such an address may send at once")
    ->capture_default_str()
    ->check(CLI::Range(1.0, 1e9));
  app.add_flag("--source-rate-trusted", opt.transport.budget_trusted,
               "apply --source-rate to --plain-trusted addresses too");
  app.add_option("--untrusted-block", opt.transport.untrusted_block,
                 "block size of bodies answered to such an address (16, 32, ... 1024), so a "
                 "forged request is never answered much larger than it is; 0: the largest")
    ->capture_default_str()
    ->check(CLI::IsMember({0u, 16u, 32u, 64u, 128u, 256u, 512u, 1024u}));
  app.add_option("--max-nodes", opt.max_nodes,
                 "registered nodes at most (new node ids beyond get 4.29); 0: no cap")
    ->capture_default_str();
  app.add_option("--jobs-per-minute", opt.jobs_per_minute,
                 "jobs one operator (or one plain address) may create per minute; 0: no limit")
    ->capture_default_str()
    ->check(CLI::Range(0.0, 1e9));
  app.add_option("--audit-keep", opt.audit_keep,
                 "audit records kept in the database; the oldest go first")
    ->capture_default_str()
    ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  app.add_option("--history-days", opt.history_days,
                 "days of node-state history kept (GET /nodes/<id>/history); 0 keeps all")
    ->capture_default_str()
    ->check(CLI::Range(0u, 36500u));
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
  if (auto bad = server::check_cluster_options(opt.cluster, opt.db); !bad.empty()) {
    std::fprintf(stderr, "%s\n", bad.c_str());
    return 2;
  }
  if (opt.transport.dtls_port != 0 && opt.transport.dtls_port == opt.transport.port) {
    // Both sockets would bind (libcoap sets SO_REUSEADDR) and share the
    // datagrams: plain requests would go unanswered half the time.
    std::fprintf(stderr, "--dtls-port %u is --port too: coap:// and coaps:// need a port each\n",
                 static_cast<unsigned>(opt.transport.port));
    return 2;
  }
  {
    std::string err;
    if (!common::parse_cidr_list(opt.plain_trusted, opt.transport.plain_trusted, err)) {
      std::fprintf(stderr, "--plain-trusted: %s\n", err.c_str());
      return 2;
    }
  }
  opt.transport.plain_role = opt.plain_access == "full"   ? model::role::trusted
                             : opt.plain_access == "read" ? model::role::reader
                                                          : model::role::anonymous;
  if (opt.transport.cert_file.empty() != opt.transport.key_file.empty()) {
    std::fprintf(stderr, "--cert and --key go together\n");
    return 2;
  }
  if (!opt.transport.ca_file.empty() && opt.transport.cert_file.empty()) {
    std::fprintf(stderr, "--ca needs --cert and --key (the server's own certificate)\n");
    return 2;
  }
  if (opt.offline_after <= opt.stale_after) {
    std::fprintf(stderr, "--offline-after must be greater than --stale-after\n");
    return 2;
  }
  if (opt.artifacts.empty() && server::store::names_postgresql(opt.db)) {
    opt.artifacts = "artifacts";
  } else if (opt.artifacts.empty()) {
    auto slash = opt.db.rfind('/');
    opt.artifacts = (slash == std::string::npos ? std::string(".") : opt.db.substr(0, slash))
                    + "/artifacts";
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
