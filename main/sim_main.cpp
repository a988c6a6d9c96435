// coapfleet-sim: simulates N coapfleet agents in one process, each on its own
// loopback address, for scale tests (fleet) and server benchmarks (load).
#include <algorithm>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "model/targets.hpp"

#include "sim/config.hpp"
#include "sim/engine.hpp"
#include "sim/report.hpp"

using namespace coapfleet::sim;

namespace {

struct cli_state {
  config cfg;
  std::string server = "coap://127.0.0.1:5683";  ///< the first --server
  std::vector<std::string> servers{"coap://127.0.0.1:5683"};
  std::string base = "127.2.0.0";
  std::string target = "coapfleet";
  std::vector<std::string> labels;     ///< KEY=V1[,V2...]
  std::vector<std::string> inventory;  ///< NAME=VERSION
};

/// --label and --inventory into the configuration; false (said) when one is
/// not KEY=VALUE or would be refused by the server.
bool parse_pairs(cli_state& s) {
  for (auto& l : s.labels) {
    auto eq = l.find('=');
    std::vector<std::string> values;
    std::string key = l.substr(0, eq == std::string::npos ? 0 : eq);
    if (eq != std::string::npos)
      for (size_t at = eq + 1; at <= l.size();) {
        auto comma = std::min(l.find(',', at), l.size());
        values.push_back(l.substr(at, comma - at));
        at = comma + 1;
      }
    bool ok = coapfleet::model::valid_label_key(key) && !values.empty();
    for (auto& v : values)
      ok = ok && !v.empty() && coapfleet::model::valid_label_value(v);
    if (!ok) {
      std::fprintf(stderr, "coapfleet-sim: --label %s: expected KEY=VALUE[,VALUE...]\n",
                   l.c_str());
      return false;
    }
    s.cfg.labels.emplace_back(key, values);
  }
  for (auto& i : s.inventory) {
    auto eq = i.find('=');
    if (eq == std::string::npos || !coapfleet::model::valid_inventory_name(i.substr(0, eq))
        || !coapfleet::model::valid_version(i.substr(eq + 1))) {
      std::fprintf(stderr, "coapfleet-sim: --inventory %s: expected NAME=VERSION\n", i.c_str());
      return false;
    }
    s.cfg.inventory.emplace_back(i.substr(0, eq), i.substr(eq + 1));
  }
  auto repeated = [](auto names) {
    std::sort(names.begin(), names.end());
    return std::adjacent_find(names.begin(), names.end()) != names.end();
  };
  std::vector<std::string> keys, items;
  for (auto& l : s.cfg.labels)
    keys.push_back(l.first);
  for (auto& i : s.cfg.inventory)
    items.push_back(i.first);
  if (repeated(keys) || repeated(items)) {
    std::fprintf(stderr, "coapfleet-sim: each --label key and --inventory name once\n");
    return false;
  }
  return true;
}

void add_common(CLI::App* sub, cli_state& s) {
  auto& c = s.cfg;
  sub->add_option("--server", s.servers,
                  "server to talk to, coap://HOST[:PORT]; HOST must be in 127.0.0.0/8 "
                  "(or localhost): the simulator only generates traffic on loopback. Again for "
                  "each other member of a cluster: a node whose request goes unanswered fails "
                  "over to the next and registers there")
    ->capture_default_str();
  sub->add_option("-n,--nodes", c.nodes, "number of simulated nodes, each with its own "
                                          "UDP socket (one open file each; see --nodes-per-socket)")
    ->capture_default_str();
  sub->add_option("--nodes-per-socket", c.nodes_per_socket,
                  "nodes sharing one UDP socket, address and port (1..1000): the server "
                  "sees them as one source, notifications are told apart by node_id; for "
                  "fleets larger than the open-file limit allows")
    ->capture_default_str();
  sub->add_option("--base", s.base,
                  "base address of the nodes: node socket i (0-based) listens on "
                  "BASE + (i/250)*256 + i%250 + 1, e.g. 127.2.0.1 .. 127.2.0.250, 127.2.1.1 ..")
    ->capture_default_str();
  sub->add_option("--node-port", c.node_port,
                  "UDP port of every node (where the server sends POST /updates/available)")
    ->capture_default_str();
  sub->add_option("--id-prefix", c.id_prefix, "node ids are PREFIX00001, PREFIX00002, ...")
    ->capture_default_str();
  sub->add_option("--services", c.services,
                  "services each node reports in services_status (comma separated)")
    ->delimiter(',')
    ->capture_default_str();
  sub->add_option("--seed", c.seed, "seed of the random readings, jitter and failures")
    ->capture_default_str();
  sub->add_option("--ack-timeout", c.ack_timeout,
                  "seconds: RFC 7252 ACK_TIMEOUT, first retransmission after "
                  "ACK_TIMEOUT x random(1..ACK_RANDOM_FACTOR), then doubling")
    ->capture_default_str();
  sub->add_option("--ack-random-factor", c.ack_random_factor, "RFC 7252 ACK_RANDOM_FACTOR")
    ->capture_default_str();
  sub->add_option("--max-retransmit", c.max_retransmit,
                  "RFC 7252 MAX_RETRANSMIT: retransmissions before a request counts as lost")
    ->capture_default_str();
  sub->add_option("--separate-timeout", c.separate_timeout,
                  "seconds to wait for a separate response after its empty ACK")
    ->capture_default_str();
  sub->add_option("--register-window", c.register_window,
                  "registrations (POST /nodes) in flight at most, over the whole fleet")
    ->capture_default_str();
  sub->add_flag("--json", c.json,
                "print one JSON object with the results on stdout (progress goes to stderr)");
  sub->add_flag("-q,--quiet", c.quiet, "no progress lines");
}

int run(cli_state& s, sim_mode mode) {
  auto& c = s.cfg;
  c.mode = mode;
  std::string err;
  if (s.servers.empty())
    s.servers.push_back(s.server);
  s.server = s.servers.front();
  if (!parse_server_uri(s.server, c.server_ip, c.server_port, err)) {
    std::fprintf(stderr, "coapfleet-sim: %s\n", err.c_str());
    return 2;
  }
  c.other_servers.clear();
  for (size_t i = 1; i < s.servers.size(); ++i) {
    uint32_t ip = 0;
    uint16_t port = 0;
    if (!parse_server_uri(s.servers[i], ip, port, err)) {
      std::fprintf(stderr, "coapfleet-sim: %s\n", err.c_str());
      return 2;
    }
    c.other_servers.emplace_back(ip, port);
  }
  if (c.other_servers.size() > 254) {
    std::fprintf(stderr, "coapfleet-sim: at most 255 --server\n");
    return 2;
  }
  if (!parse_ipv4(s.base, c.base_ip)) {
    std::fprintf(stderr, "coapfleet-sim: --base %s is not an IPv4 address\n", s.base.c_str());
    return 2;
  }
  if (!parse_pairs(s))
    return 2;
  if (s.target == "libcoap") {
    c.target = target_kind::libcoap;
    c.do_register = false;
  }
  if (auto e = validate(c); !e.empty()) {
    std::fprintf(stderr, "coapfleet-sim: %s\n", e.c_str());
    return 2;
  }
  FILE* progress = c.quiet ? nullptr : (c.json ? stderr : stdout);
  engine eng(c, progress);
  if (auto e = eng.open(); !e.empty()) {
    std::fprintf(stderr, "coapfleet-sim: %s\n", e.c_str());
    return 1;
  }
  auto r = eng.run();
  if (c.json) {
    std::printf("%s\n", summary_json(c, r).c_str());
    if (!c.quiet)
      std::fprintf(stderr, "%s", summary_text(c, r).c_str());
  } else {
    std::printf("%s", summary_text(c, r).c_str());
  }
  std::fflush(stdout);
  if (mode == sim_mode::load && c.do_register && r.registered == 0 && !r.interrupted) {
    std::fprintf(stderr, "coapfleet-sim: no node could register with %s\n", s.server.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
    "coapfleet-sim: simulates N coapfleet agents in one process, each on its own loopback "
    "address (one UDP socket per node, one epoll loop), against a coapfleet-server.\n"
    "Traffic goes to the --server address only, which must be on loopback.\n\n"
    "  fleet  a steady fleet: registration, periodic health, update jobs\n"
    "  load   PUT /health as fast as the server answers (or at --rate), with latency figures\n\n"
    "Run 'coapfleet-sim fleet --help' or 'coapfleet-sim load --help' for their options.",
    "coapfleet-sim"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("coapfleet-sim ") + COAPFLEET_VERSION);

  cli_state fleet;
  fleet.cfg.nodes = 100;
  auto* f = app.add_subcommand(
    "fleet",
    "steady fleet: every node registers (POST /nodes), sends PUT /health every --interval "
    "seconds (phases spread evenly over the interval), registers again on 4.04, answers "
    "POST /updates/available and reports downloading -> installing -> succeeded/failed. "
    "Prints a progress line every --report-every seconds; stops at --duration or SIGINT.");
  add_common(f, fleet);
  f->add_option("--interval", fleet.cfg.interval, "seconds between two health reports of a node")
    ->capture_default_str();
  f->add_option("--duration", fleet.cfg.duration, "seconds to run; 0 runs until SIGINT/SIGTERM")
    ->capture_default_str();
  f->add_option("--install-seconds", fleet.cfg.install_seconds,
                "seconds a simulated install takes (jittered +-25%); the step reports go out "
                "at 10%, 50% and 100% of it")
    ->capture_default_str();
  f->add_option("--fail-rate", fleet.cfg.fail_rate,
                "probability 0..1 that a job fails on a node (reported failed, result 8)")
    ->capture_default_str();
  f->add_option("--fail-first", fleet.cfg.fail_first,
                "share 0..1 of the nodes whose first attempt of a job fails, spread evenly over "
                "node ids (exactly that share of every wave); a retry succeeds")
    ->capture_default_str();
  f->add_option("--timeout-rate", fleet.cfg.timeout_rate,
                "probability 0..1 that a job never ends on a node (it reports installing, "
                "then nothing: the server's node timeout ends it)")
    ->capture_default_str();
  f->add_option("--label", fleet.labels,
                "a label of every node, KEY=VALUE, or KEY=V1,V2,... (node i gets V[i % n]); "
                "repeatable")
    ->take_all();
  f->add_option("--inventory", fleet.inventory,
                "what every node runs at the start, NAME=VERSION (repeatable); a successful "
                "job adds its name and version, and its success report carries the inventory")
    ->take_all();
  f->add_option("--late", fleet.cfg.late_nodes,
                "the last N nodes register only --late-after seconds after the start (late "
                "joiners)");
  f->add_option("--late-after", fleet.cfg.late_after, "seconds after the start that --late nodes register");
  f->add_option("--unhealthy-rate", fleet.cfg.unhealthy_rate,
                "probability 0..1 that a health report is unhealthy (a service not running)")
    ->capture_default_str();
  f->add_option("--report-every", fleet.cfg.report_every, "seconds between progress lines")
    ->capture_default_str();

  cli_state load;
  load.cfg.nodes = 100;
  load.cfg.duration = 10;
  auto* l = app.add_subcommand(
    "load",
    "load generator: registers every node (unless --no-register), then each node sends PUT "
    "/health back to back with at most --inflight requests in flight (or all nodes together "
    "at --rate requests/s). Prints requests, answers, throughput, latency p50/p90/p99/max "
    "(first transmission to answer, CLOCK_MONOTONIC), codes and losses.");
  add_common(l, load);
  l->add_option("--duration", load.cfg.duration, "seconds of load (the measured window)")
    ->capture_default_str();
  l->add_option("--inflight", load.cfg.inflight, "requests in flight per node (1..64)")
    ->capture_default_str();
  l->add_option("--rate", load.cfg.rate,
                "total requests per second over all nodes, paced; 0 sends as fast as answered")
    ->capture_default_str();
  l->add_option("--window", load.cfg.window,
                "at most this many requests in flight over all nodes, the nodes taking turns "
                "(0: nodes x inflight); keeps 10,000 addresses busy without flooding the "
                "server's socket buffer")
    ->capture_default_str();
  auto* path_opt = l->add_option("--path", load.cfg.path, "URI path of the PUT requests")
                     ->capture_default_str();
  l->add_flag("--register,!--no-register", load.cfg.do_register,
              "register every node with POST /nodes before the load (default: register)");
  l->add_option("--target", load.target,
                "coapfleet: a coapfleet-server; libcoap: libcoap's example server "
                "(coap-server -A 127.0.0.1 -p PORT), then no registration and path example_data")
    ->check(CLI::IsMember({"coapfleet", "libcoap"}))
    ->capture_default_str();
  l->add_option("--drain", load.cfg.drain,
                "seconds to wait after --duration for the answers still outstanding")
    ->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  if (f->parsed())
    return run(fleet, sim_mode::fleet);
  if (load.target == "libcoap" && path_opt->count() == 0)
    load.cfg.path = "example_data";
  return run(load, sim_mode::load);
}
