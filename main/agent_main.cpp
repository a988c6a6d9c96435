// coapfleet-agent: the worker agent of every node. Assembles the metrics,
// reporter and installer actors and the agent's CoAP transport, and runs
// until SIGINT/SIGTERM.
#include <arpa/inet.h>
#include <climits>
#include <csignal>
#include <cstdio>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <CLI/CLI.hpp>

#include "actors/agent/handler_group.hpp"
#include "actors/agent/installer.hpp"
#include "actors/agent/metrics.hpp"
#include "actors/agent/journal.hpp"
#include "actors/agent/reporter.hpp"
#include "actors/interfaces.hpp"
#include "common/certificate_files.hpp"
#include "common/job_signing.hpp"
#include "common/key_file.hpp"
#include "common/listen_port.hpp"
#include "common/log.hpp"
#include "model/targets.hpp"
#include "common/scheduler_config.hpp"
#include "actors/agent/gateway.hpp"
#include "transport/agent_transport.hpp"

using namespace coapfleet;

namespace {

struct options {
  std::string server = "coap://127.0.0.1:5683";  ///< the first --server
  std::vector<std::string> servers{"coap://127.0.0.1:5683"};
  transport::agent_transport_config transport;
  bool reuse_port = false;  ///< --reuse-port (common/listen_port.hpp)
  std::string node_id;
  std::string advertise;
  double interval = 10;
  double request_timeout = 100;
  std::string state_dir = "coapfleet-agent-state";
  std::string root = "/";
  std::vector<std::string> services;
  std::vector<std::string> labels;  ///< KEY=VALUE
  std::string disk_path = "/";
  std::string log_level = "info";
  std::string pip = "pip3";
  std::vector<std::string> pip_args;
  unsigned handler_timeout = 600;
  unsigned stop_grace = 5;
  std::string key_file;
  common::certificate_files certificate;
  std::string server_name;
  std::string verify_key;
  bool allow_setid = false;
};

/// coap://HOST[:PORT] or coaps://HOST[:PORT] with HOST an IP literal (or localhost).
bool parse_server(const std::string& uri, std::string& host, uint16_t& port, bool& secure,
                  std::string& written_host, std::string& err) {
  secure = uri.compare(0, 8, "coaps://") == 0;
  const std::string scheme = secure ? "coaps://" : "coap://";
  if (uri.compare(0, scheme.size(), scheme) != 0) {
    err = "--server must look like coap://HOST:PORT or coaps://HOST:PORT";
    return false;
  }
  auto rest = uri.substr(scheme.size());
  while (!rest.empty() && rest.back() == '/')
    rest.pop_back();
  std::string p;
  if (!rest.empty() && rest[0] == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos) {
      err = "unbalanced [ in --server";
      return false;
    }
    host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':')
      p = rest.substr(close + 2);
  } else {
    auto colon = rest.rfind(':');
    host = rest.substr(0, colon);
    if (colon != std::string::npos)
      p = rest.substr(colon + 1);
  }
  written_host = host;
  if (host == "localhost")
    host = "127.0.0.1";
  unsigned char buf[sizeof(in6_addr)];
  if (::inet_pton(AF_INET, host.c_str(), buf) != 1
      && ::inet_pton(AF_INET6, host.c_str(), buf) != 1) {
    err = "--server needs an IP address (or localhost), not " + host;
    return false;
  }
  port = secure ? 5684 : 5683;
  if (!p.empty()) {
    char* end = nullptr;
    long v = std::strtol(p.c_str(), &end, 10);
    if (*end != '\0' || v < 1 || v > 65535) {
      err = "bad port in --server: " + p;
      return false;
    }
    port = static_cast<uint16_t>(v);
  }
  return true;
}

/// On SIGTERM/SIGINT: the running install's process group gets SIGTERM
/// (the installer keeps its job journaled as interrupted), then SIGKILL once
/// `grace` has passed, so the agent never waits for a handler to end.
void stop_handler(caf::actor_system& sys, const installer_actor& installer,
                  std::chrono::seconds grace) {
  caf::scoped_actor self{sys};
  int32_t pgid = 0;
  self->request(installer, std::chrono::seconds(2), atom::stop::value)
    .receive([&](int32_t g) { pgid = g; },
             [&](caf::error& err) {
               CF_WARN("main", "the installer did not say what runs: ", caf::to_string(err));
             });
  if (pgid <= 0)
    return;
  auto until = std::chrono::steady_clock::now() + grace;
  while (agent::signal_group(pgid, 0) && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (agent::signal_group(pgid, SIGKILL))
    CF_WARN("main", "process group ", pgid, " outlived ", grace.count(), " s after SIGTERM: killed");
  else
    CF_INFO("main", "process group ", pgid, " of the running install ended");
}

}  // namespace

int main(int argc, char** argv) {
  options opt;
  CLI::App app{"coapfleet-agent: reports this node's health to a coapfleet server and installs "
               "its updates"};
  app.add_option("--server", opt.servers,
                 "main server, coap://HOST:PORT or coaps://HOST:PORT (DTLS, with --key-file or "
                 "--cert/--key/--ca); again for each other member of a cluster, with the same "
                 "scheme: the agent fails over to the next when its server stops answering, and "
                 "takes commands from all (over DTLS: from any peer that proves the server's "
                 "identity, the node's key or a certificate naming --server-name)")
    ->capture_default_str();
  app.add_option("--key-file", opt.key_file,
                 "this node's key (from `coapfleet-server keys add NODE_ID --role node`), a file "
                 "only its owner can read; with coaps:// the agent speaks DTLS as its node id and "
                 "takes commands only over DTLS from a holder of this key");
  app.add_option("--cert", opt.certificate.cert,
                 "this node's X.509 certificate (PEM; its first DNS subjectAltName, else its "
                 "CN, is the node id); with coaps:// instead of --key-file, with --key and --ca");
  app.add_option("--key", opt.certificate.key,
                 "the private key of --cert (PEM), a file only its owner can read");
  app.add_option("--ca", opt.certificate.ca,
                 "the CA (PEM) the server's certificate must chain to; commands are taken only "
                 "from a peer with a certificate from it that names the server");
  app.add_option("--server-name", opt.server_name,
                 "the name the server's certificate must carry (a DNS subjectAltName, or the CN "
                 "without one; an IP address must be an IP subjectAltName); default: the HOST of "
                 "--server");
  app.add_option("--bind", opt.transport.bind, "address to listen on")->capture_default_str();
  app.add_option("--port", opt.transport.port, "UDP port to listen on")->capture_default_str();
  app.add_flag("--reuse-port", opt.reuse_port,
               "start even when another socket (a server, another agent) has --port on "
               "--bind; the kernel then gives each datagram to one of them. Without it such a "
               "start fails");
  app.add_option("--node-id", opt.node_id, "this node's id (default: the hostname)");
  app.add_option("--advertise", opt.advertise,
                 "address the server should notify (default: --bind unless 0.0.0.0, else the "
                 "address the server sees)");
  app.add_option("--interval", opt.interval, "seconds between health reports")
    ->capture_default_str()
    ->check(CLI::Range(0.1, 86400.0));
  app.add_option("--state-dir", opt.state_dir, "where the job journal and downloads live")
    ->capture_default_str();
  app.add_option("--root", opt.root, "install root for file jobs")->capture_default_str();
  app.add_option("--label", opt.labels,
                 "a label this node registers with, KEY=VALUE (repeatable; e.g. site=berlin)");
  app.add_option("--services", opt.services, "services to watch (comma-separated)")
    ->delimiter(',');
  app.add_option("--disk-path", opt.disk_path, "file system whose usage is reported")
    ->capture_default_str();
  app.add_option("--pip", opt.pip, "pip executable for pip jobs")->capture_default_str();
  app.add_option("--pip-arg", opt.pip_args, "extra argument for pip install (repeatable)")
    ->allow_extra_args(false);
  app.add_option("--verify-key", opt.verify_key,
                 "Ed25519 public key (PEM, `openssl pkey -in sign.pem -pubout`): run only jobs "
                 "signed with its private key (coapfleet update create --sign-key); unsigned or "
                 "badly signed jobs fail without running");
  app.add_flag("--allow-setid", opt.allow_setid,
               "let file jobs install setuid, setgid and sticky files (refused by default)");
  app.add_option("--handler-timeout", opt.handler_timeout,
                 "seconds an install may take unless the job says otherwise")
    ->capture_default_str();
  app.add_option("--stop-grace", opt.stop_grace,
                 "seconds a running install has after SIGTERM to the agent before SIGKILL")
    ->capture_default_str()
    ->check(CLI::Range(0u, 600u));
  app.add_option("--request-timeout", opt.request_timeout,
                 "seconds a request to the server waits for its answer before it is sent again")
    ->capture_default_str()
    ->check(CLI::Range(1.0, 3600.0));
  app.add_option("--log-level", opt.log_level, "trace, debug, info, warn, error or off")
    ->capture_default_str()
    ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  CLI11_PARSE(app, argc, argv);
  common::share_listening_ports(opt.reuse_port);

  log::level lvl;
  log::parse_level(opt.log_level, lvl);
  log::set_level(lvl);
  std::string host, written_host, err;
  uint16_t server_port = 5683;
  bool secure = false;
  if (opt.servers.empty())
    opt.servers.push_back(opt.server);
  opt.server = opt.servers.front();
  if (!parse_server(opt.server, host, server_port, secure, written_host, err)) {
    std::fprintf(stderr, "%s\n", err.c_str());
    return 2;
  }
  // The other members of the server's cluster (--server given again).
  std::vector<std::pair<std::string, uint16_t>> other_servers;
  for (size_t i = 1; i < opt.servers.size(); ++i) {
    std::string h, written;
    uint16_t p = 5683;
    bool s = false;
    if (!parse_server(opt.servers[i], h, p, s, written, err)) {
      std::fprintf(stderr, "%s\n", err.c_str());
      return 2;
    }
    if (s != secure) {
      std::fprintf(stderr, "every --server must be coap://, or every one coaps:// (the members "
                           "of one cluster, spoken to the same way)\n");
      return 2;
    }
    other_servers.emplace_back(h, p);
  }
  const bool x509 = !opt.certificate.empty();
  if (x509 && !opt.key_file.empty()) {
    std::fprintf(stderr, "give either --key-file (a pre-shared key) or --cert/--key/--ca "
                         "(a certificate), not both\n");
    return 2;
  }
  if (secure != (x509 || !opt.key_file.empty())) {
    std::fprintf(stderr, secure ? "coaps:// needs --key-file (this node's key) or "
                                  "--cert/--key/--ca (its certificate)\n"
                         : x509 ? "--cert/--key/--ca need a coaps:// --server\n"
                                : "--key-file needs a coaps:// --server\n");
    return 2;
  }
  if (!opt.server_name.empty() && !x509) {
    std::fprintf(stderr, "--server-name goes with --cert/--key/--ca\n");
    return 2;
  }
  if (x509) {
    if (!common::check_certificate_files(opt.certificate, err)) {
      std::fprintf(stderr, "%s\n", err.c_str());
      return 2;
    }
    if (opt.server_name.empty())
      opt.server_name = written_host;
    if (!common::valid_peer_name(opt.server_name)) {
      std::fprintf(stderr, "--server-name must be 1..253 printable characters without spaces\n");
      return 2;
    }
  }
  if (opt.node_id.empty()) {
    char name[HOST_NAME_MAX + 1] = {0};
    gethostname(name, sizeof name);
    opt.node_id = name;
  }
  if (!model::valid_node_id(opt.node_id)) {
    std::fprintf(stderr, "node id '%s' is not 1..64 characters of A-Z a-z 0-9 . _ -; use --node-id\n",
                 opt.node_id.c_str());
    return 2;
  }
  if (x509) {
    opt.transport.certificate = opt.certificate;
    opt.transport.server_name = opt.server_name;
    opt.transport.server_host = host;
    opt.transport.server_port = server_port;
    opt.transport.other_servers = other_servers;
  } else if (secure) {
    opt.transport.credentials.identity = opt.node_id;
    if (!common::read_key_file(opt.key_file, opt.transport.credentials.key, err)) {
      std::fprintf(stderr, "%s\n", err.c_str());
      return 2;
    }
    opt.transport.server_host = host;
    opt.transport.server_port = server_port;
    opt.transport.other_servers = other_servers;
  }
  model::string_map labels;
  if (!model::parse_labels(opt.labels, labels, err)) {
    std::fprintf(stderr, "--label %s\n", err.c_str());
    return 2;
  }
  std::shared_ptr<const common::ed25519_key> verify_key;
  if (!opt.verify_key.empty()) {
    verify_key = common::ed25519_key::load_public(opt.verify_key, err);
    if (!verify_key) {
      std::fprintf(stderr, "--verify-key: %s\n", err.c_str());
      return 2;
    }
  }
  if (::mkdir(opt.state_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    std::perror(("cannot create " + opt.state_dir).c_str());
    return 1;
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  caf::actor_system_config cfg;
  cfg.add_message_types<caf::id_block::coapfleet>();
  cfg.set("logger.console", caf::atom("none"));
  configure_scheduler(cfg, 1);  // a node's agent stays small
  caf::actor_system sys{cfg};

  opt.transport.request_timeout =
    std::chrono::milliseconds(static_cast<int64_t>(opt.request_timeout * 1000));
  transport::agent_transport net{sys, opt.transport};
  if (!net.open(err)) {
    CF_ERROR("main", err);
    return 1;
  }
  agent::reporter_config rcfg;
  rcfg.server_host = host;
  rcfg.server_port = server_port;
  rcfg.other_servers = other_servers;
  rcfg.outbox_path = opt.state_dir + "/outbox.json";
  auto& reg = rcfg.registration;
  reg.node_id = opt.node_id;
  char hostname[HOST_NAME_MAX + 1] = {0};
  gethostname(hostname, sizeof hostname);
  reg.hostname = hostname;
  reg.ip_address = !opt.advertise.empty() ? opt.advertise
                   : (opt.transport.bind != "0.0.0.0" && opt.transport.bind != "::")
                     ? opt.transport.bind
                     : std::string();
  reg.port = opt.transport.port;
  reg.services = opt.services;
  reg.reported_status = "online";
  reg.labels = labels;
  {
    std::string inventory_error;
    reg.inventory = agent::load_inventory(opt.state_dir + "/inventory.json", inventory_error);
    reg.inventory_given = true;  // even empty: the server learns what this node runs
    if (!inventory_error.empty())
      CF_WARN("main", inventory_error);
  }
  agent::sampler_config scfg;
  scfg.disk_path = opt.disk_path;
  scfg.services = opt.services;
  auto facts = agent::collect_system_facts(scfg);
  reg.system_info = {{"os", model::scalar::of(facts.os)},
                     {"arch", model::scalar::of(facts.arch)},
                     {"kernel", model::scalar::of(facts.kernel)},
                     {"cpus", model::scalar::of(static_cast<double>(facts.cpus))},
                     {"agent_version", model::scalar::of(std::string(COAPFLEET_VERSION))}};
  auto reporter = agent::spawn_reporter(sys, rcfg, net.handle());
  agent::installer_config icfg;
  icfg.node_id = opt.node_id;
  icfg.server_host = host;
  icfg.server_port = server_port;
  icfg.other_servers = other_servers;
  icfg.state_dir = opt.state_dir;
  icfg.handlers.pip = opt.pip;
  icfg.handlers.pip_args = opt.pip_args;
  icfg.handlers.root = opt.root;
  icfg.handlers.allow_setid = opt.allow_setid;
  icfg.handlers.state_dir = opt.state_dir;
  icfg.handlers.timeout = std::chrono::seconds(opt.handler_timeout);
  icfg.verify_key = verify_key;
  auto installer = agent::spawn_installer(sys, icfg, reporter, net.handle());
  agent::metrics_config mcfg;
  mcfg.node_id = opt.node_id;
  mcfg.interval = std::chrono::milliseconds(static_cast<int64_t>(opt.interval * 1000));
  mcfg.sampling = scfg;
  auto metrics = agent::spawn_metrics(sys, mcfg, reporter, net.handle());
  // Commands are obeyed from the servers only: over DTLS a session with
  // this node's key, or with a certificate from the CA naming the server
  // (the only peers the agent's endpoint admits: any member of the cluster
  // proves that), in plain mode a server's address and port.
  const std::string server_identity = x509 ? opt.server_name : secure ? opt.node_id : std::string();
  std::vector<agent::trusted_server> also_from;
  for (auto& [h, p] : other_servers)
    also_from.push_back(agent::trusted_server{h, p, server_identity});
  auto gateway = agent::spawn_agent_gateway(
    sys, agent::agent_gateway_peers{net.handle(), metrics, reporter, installer, opt.server,
                                    agent::trusted_server{host, server_port, server_identity},
                                    also_from});
  net.set_gateway(gateway);

  CF_INFO("main", "coapfleet-agent ", COAPFLEET_VERSION, " node ", opt.node_id, " listening on ",
          net.endpoint_description(), ", reporting to ", opt.server, " every ", opt.interval,
          " s");
  CF_INFO("main", "state: ", opt.state_dir, ", install root: ", opt.root,
          opt.allow_setid ? " (setuid, setgid and sticky files allowed)" : "");
  if (x509)
    CF_INFO("main", "commands (POST /updates/available) are taken only over DTLS from a peer "
                    "whose certificate chains to ", opt.certificate.ca, " and names ",
            opt.server_name);
  else if (secure)
    CF_INFO("main", "commands (POST /updates/available) are taken only over DTLS from the "
                    "holder of this node's key");
  else
    CF_INFO("main", "commands (POST /updates/available) are taken only from ", host, " port ",
            server_port,
            other_servers.empty() ? std::string()
                                  : " and the " + std::to_string(other_servers.size())
                                      + " other --server");
  if (!other_servers.empty())
    CF_INFO("main", "fails over to the next --server in turn when ", opt.server,
            " stops answering");
  CF_INFO("main", "a notification names a job; its spec is fetched from ", opt.server,
          verify_key ? ", and it runs only if signed for --verify-key " + opt.verify_key
                     : std::string(" (jobs need no signature: no --verify-key)"));

  net.run();
  stop_handler(sys, installer, std::chrono::seconds(opt.stop_grace));
  for (auto h : {caf::actor_cast<caf::actor>(gateway), caf::actor_cast<caf::actor>(metrics),
                 caf::actor_cast<caf::actor>(installer), caf::actor_cast<caf::actor>(reporter)})
    caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
  CF_INFO("main", "stopped");
  return 0;
}
