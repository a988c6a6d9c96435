#include "server_options.hpp"

#include "common/cidr.hpp"
#include "store/store.hpp"

namespace coapfleet::server {

void add_server_options(CLI::App& app, server_options& opt) {
  app.add_option("--bind", opt.transport.bind, "IPv4/IPv6 address to listen on")
    ->capture_default_str();
  app.add_option("--port", opt.transport.port, "UDP port to listen on")->capture_default_str();
  app.add_option("--store,--db", opt.db,
                 "the store: a SQLite database file, or postgresql://USER@HOST:PORT/DB"
                 " (PostgreSQL, shared by the members of a cluster)")
    ->capture_default_str();
  add_cluster_options(app, opt.cluster);
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
}

std::string finish_server_options(server_options& opt) {
  if (auto bad = check_cluster_options(opt.cluster, opt.db); !bad.empty())
    return bad;
  if (opt.transport.dtls_port != 0 && opt.transport.dtls_port == opt.transport.port) {
    // Both sockets would bind (libcoap sets SO_REUSEADDR) and share the
    // datagrams: plain requests would go unanswered half the time.
    return "--dtls-port " + std::to_string(opt.transport.port)
           + " is --port too: coap:// and coaps:// need a port each";
  }
  if (std::string err; !common::parse_cidr_list(opt.plain_trusted, opt.transport.plain_trusted, err))
    return "--plain-trusted: " + err;
  opt.transport.plain_role = opt.plain_access == "full"   ? model::role::trusted
                             : opt.plain_access == "read" ? model::role::reader
                                                          : model::role::anonymous;
  if (opt.transport.cert_file.empty() != opt.transport.key_file.empty())
    return "--cert and --key go together";
  if (!opt.transport.ca_file.empty() && opt.transport.cert_file.empty())
    return "--ca needs --cert and --key (the server's own certificate)";
  if (opt.offline_after <= opt.stale_after)
    return "--offline-after must be greater than --stale-after";
  if (opt.artifacts.empty() && store::names_postgresql(opt.db)) {
    opt.artifacts = "artifacts";
  } else if (opt.artifacts.empty()) {
    auto slash = opt.db.rfind('/');
    opt.artifacts = (slash == std::string::npos ? std::string(".") : opt.db.substr(0, slash))
                    + "/artifacts";
  }
  return "";
}

}  // namespace coapfleet::server
