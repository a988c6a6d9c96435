#include "server_cluster.hpp"

#include <netdb.h>
#include <thread>

#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>

#include "actors/server/cluster.hpp"
#include "common/listen_port.hpp"
#include "common/log.hpp"

namespace coapfleet::server {

namespace {

bool valid_member_id(const std::string& id) {
  if (id.empty() || id.size() > 64)
    return false;
  for (char c : id)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
      return false;
  return true;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  size_t from = 0;
  while (from <= text.size()) {
    auto comma = text.find(',', from);
    auto item = text.substr(from, comma == std::string::npos ? std::string::npos : comma - from);
    if (!item.empty())
      out.push_back(item);
    if (comma == std::string::npos)
      break;
    from = comma + 1;
  }
  return out;
}

/// Another process may hold this member's lease: the same --member-id
/// started twice by mistake. A join would take its row (a new epoch) and
/// fence it, and the two would take the row from each other for ever. A
/// member that died (kill -9, a crash) renews nothing: its lease lapses
/// within lease_ms, which the join waits for. False, with `error`, when the
/// lease is renewed meanwhile (or the store does not answer).
bool await_own_lease_lapsed(member_table& table, const std::string& id, std::string& error) {
  auto find = [&](member_row& row) {
    std::vector<member_row> rows;
    if (!table.list(rows)) {
      error = table.last_error();
      return false;
    }
    row = {};
    for (auto& r : rows)
      if (r.member_id == id)
        row = r;
    return true;
  };
  member_row first;
  if (!find(first))
    return false;
  if (!first.live)
    return true;
  CF_WARN("main", "member ", id, " holds a live lease in the store (epoch ", first.epoch,
          ", renewed ", first.heartbeat_age_ms, " ms ago): waiting for it to lapse");
  // Bounded: a lease not renewed lapses within lease_ms of its heartbeat.
  auto deadline = std::chrono::steady_clock::now()
                  + std::chrono::milliseconds(std::max<int64_t>(first.lease_ms, 0) + 2000);
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    member_row now;
    if (!find(now))
      return false;
    if (!now.live)
      return true;
    if (now.epoch != first.epoch || now.heartbeat_at != first.heartbeat_at)
      break;
  }
  error = "member " + id + " runs elsewhere: its lease (epoch " + std::to_string(first.epoch)
          + ") was renewed while this server waited to join; stop the other one, or give this "
            "server another --member-id";
  return false;
}

}  // namespace

void add_cluster_options(CLI::App& app, cluster_options& opt) {
  app.add_option("--member-id", opt.member_id,
                 "this server's name in a cluster (needs --store postgresql://... and"
                 " --cluster-listen)");
  app.add_option("--cluster-listen", opt.listen,
                 "HOST:PORT where the other members reach this one (TCP)");
  app.add_option("--cluster-seed", opt.seeds,
                 "HOST:PORT[,HOST:PORT...] of members to link to at start");
  app.add_option("--cluster-cert", opt.cert,
                 "this member's certificate (PEM) for TLS between members");
  app.add_option("--cluster-key", opt.key, "its private key (PEM)");
  app.add_option("--cluster-ca", opt.ca, "the cluster's CA certificate (PEM)");
  app.add_option("--lease-ms", opt.lease_ms,
                 "a member's lease: it stops acting when it could not renew it for this long,"
                 " and the others take over")
    ->capture_default_str();
}

std::string check_cluster_options(const cluster_options& opt, const std::string& store_location) {
  bool any_cluster = !opt.listen.empty() || !opt.seeds.empty() || !opt.cert.empty()
                     || !opt.key.empty() || !opt.ca.empty();
  if (!opt.clustered())
    return any_cluster ? "--cluster-listen, --cluster-seed and --cluster-cert/key/ca need --member-id"
                       : "";
  if (!valid_member_id(opt.member_id))
    return "--member-id: 1..64 letters, digits, '-', '_' or '.'";
  if (!store::names_postgresql(store_location))
    return "a cluster's members share one PostgreSQL store: --store postgresql://USER@HOST:PORT/DB";
  std::string host;
  uint16_t port = 0;
  if (!split_endpoint(opt.listen, host, port))
    return "--cluster-listen: HOST:PORT is needed with --member-id";
  for (auto& seed : split_list(opt.seeds))
    if (!split_endpoint(seed, host, port))
      return "--cluster-seed: '" + seed + "' is not HOST:PORT";
  bool c = !opt.cert.empty(), k = !opt.key.empty(), a = !opt.ca.empty();
  if ((c || k || a) && !(c && k && a))
    return "--cluster-cert, --cluster-key and --cluster-ca go together";
  if (opt.lease_ms < 1500 || opt.lease_ms > 600000)
    return "--lease-ms: 1500..600000 (renewed every third of it)";
  return "";
}

std::string cluster_listen_refusal(const cluster_options& opt) {
  std::string host;
  uint16_t port = 0;
  if (!opt.clustered() || !split_endpoint(opt.listen, host, port))
    return "";
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  // A name that does not resolve is left to the real listen to report.
  if (::getaddrinfo(host.empty() ? nullptr : host.c_str(), std::to_string(port).c_str(), &hints,
                    &found) != 0)
    return "";
  bool in_use = false;
  for (auto* a = found; a != nullptr && !in_use; a = a->ai_next)
    in_use = common::tcp_port_in_use(a->ai_addr, a->ai_addrlen);
  ::freeaddrinfo(found);
  if (!in_use)
    return "";
  return "cannot listen on " + opt.listen
         + " for the other members: a socket already listens there (another member?)";
}

void configure_cluster(caf::actor_system_config& cfg, const cluster_options& opt) {
  if (!opt.clustered())
    return;
  cfg.load<caf::io::middleman>();
  // Only coapfleet members of the same kind link (CAF refuses other applications).
  cfg.set("middleman.app-identifiers", std::vector<std::string>{"coapfleet-member-1"});
  cfg.set("middleman.heartbeat-interval", caf::timespan{std::chrono::seconds(1)});
  cfg.set("middleman.connection-timeout", caf::timespan{std::chrono::seconds(5)});
  if (opt.tls()) {
    cfg.load<caf::openssl::manager>();
    cfg.openssl_certificate = opt.cert;
    cfg.openssl_key = opt.key;
    cfg.openssl_cafile = opt.ca;
  }
}

std::unique_ptr<member_table> join_cluster(const cluster_options& opt,
                                           const std::string& store_location,
                                           const std::string& coap_endpoint, store& db,
                                           member_row& me, std::string& error) {
  auto table = member_table::open(store_location, error);
  if (!table)
    return nullptr;
  // A renewal that waits longer than a third of the lease is as good as lost.
  table->set_timeout(static_cast<int>(std::max<int64_t>(opt.lease_ms / 3, 200)));
  me = {};
  me.member_id = opt.member_id;
  me.cluster_endpoint = opt.listen;
  me.coap_endpoint = coap_endpoint;
  me.lease_ms = opt.lease_ms;
  if (!await_own_lease_lapsed(*table, me.member_id, error))
    return nullptr;
  if (!table->join(me)) {
    error = table->last_error();
    return nullptr;
  }
  if (!db.set_fence(me.member_id, me.epoch, me.lease_ms)) {
    error = db.last_error();
    return nullptr;
  }
  return table;
}

cluster_actor start_cluster(caf::actor_system& sys, const cluster_options& opt, member_row me,
                            std::unique_ptr<member_table> table, persistence_actor persistence,
                            std::string& error) {
  cluster_config cfg;
  cfg.me = std::move(me);
  cfg.persistence = std::move(persistence);
  cfg.tls = opt.tls();
  if (!opt.clustered())
    return spawn_cluster(sys, std::move(cfg), nullptr);
  cfg.seeds = split_list(opt.seeds);
  cfg.heartbeat = std::chrono::milliseconds(std::min<int64_t>(1000, opt.lease_ms / 3));
  cfg.middleman = opt.tls() ? sys.openssl_manager().actor_handle() : sys.middleman().actor_handle();
  auto handle = spawn_cluster(sys, std::move(cfg), std::move(table));
  std::string host;
  uint16_t port = 0;
  split_endpoint(opt.listen, host, port);
  auto published = opt.tls() ? caf::openssl::publish(handle, port, host.c_str(), true)
                             : sys.middleman().publish(handle, port, host.c_str(), true);
  if (!published) {
    error = "cannot listen on " + opt.listen + " for the other members: "
            + sys.render(published.error());
    caf::anon_send_exit(handle, caf::exit_reason::user_shutdown);
    return {};
  }
  CF_INFO("main", "cluster: member ", opt.member_id, " listening on ", opt.listen,
          opt.tls() ? " (TLS, certificates from " + opt.ca + ")" : std::string(" (plain TCP)"),
          opt.seeds.empty() ? std::string() : "; seeds " + opt.seeds);
  if (!opt.tls())
    CF_WARN("main", "cluster links are plain TCP, neither encrypted nor authenticated:"
                    " only for loopback and trusted networks (--cluster-cert/key/ca for TLS)");
  return handle;
}

void unpublish_cluster(caf::actor_system& sys, const cluster_options& opt,
                       const cluster_actor& handle) {
  if (!opt.clustered() || !handle)
    return;
  // TLS or not, the one network broker holds what is published.
  if (auto done = sys.middleman().unpublish(handle, 0); !done)
    CF_WARN("main", "cannot unpublish the membership actor: ", sys.render(done.error()));
}

bool await_cluster_end(cluster_actor handle, std::chrono::milliseconds bound) {
  if (!handle)
    return true;
  auto addr = handle.address();
  handle = nullptr;
  auto deadline = std::chrono::steady_clock::now() + bound;
  // The address is weak: the control block outlives the object, whose end
  // the count of strong references shows.
  while (addr.get() != nullptr && addr.get()->strong_refs.load() > 0) {
    if (std::chrono::steady_clock::now() >= deadline) {
      CF_WARN("main", "the membership actor is still referenced ", bound.count(),
              " ms after its end");
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace coapfleet::server
