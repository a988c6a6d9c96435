// Configuration of the fleet simulator, and the pure helpers around it:
// parsing and checking the --server address (loopback only), the address and
// id of each simulated node, RFC 7252 retransmission timing.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace coapfleet::sim {

enum class sim_mode : uint8_t { fleet, load };
enum class target_kind : uint8_t { coapfleet, libcoap };

struct config {
  sim_mode mode = sim_mode::fleet;

  // -- where (IPv4, host byte order)
  uint32_t server_ip = 0x7F000001;  ///< 127.0.0.1
  uint16_t server_port = 5683;
  /// The other members of the server's cluster (--server given again): a
  /// node whose request goes unanswered fails over to the next in turn and
  /// registers there.
  std::vector<std::pair<uint32_t, uint16_t>> other_servers;
  uint32_t base_ip = 0x7F020000;    ///< 127.2.0.0: node i is base + (i/250)*256 + i%250 + 1
  uint16_t node_port = 5683;        ///< 0: an ephemeral port per node (no notifications)
  std::string id_prefix = "sim-";

  // -- how many, how long
  uint32_t nodes = 100;
  /// Nodes sharing one UDP socket (one address and port): a million node ids
  /// on a machine that allows far fewer open files. Node i uses socket
  /// i / nodes_per_socket; socket j is on BASE + (j/250)*256 + j%250 + 1.
  uint32_t nodes_per_socket = 1;
  uint32_t sockets() const { return (nodes + nodes_per_socket - 1) / nodes_per_socket; }
  double duration = 0;              ///< seconds; 0 = until SIGINT (fleet), load needs > 0
  double report_every = 5;          ///< seconds between progress lines (fleet)
  uint64_t seed = 1;
  bool json = false;
  bool quiet = false;

  // -- CoAP transmission parameters (RFC 7252 §4.8)
  double ack_timeout = 2.0;
  double ack_random_factor = 1.5;
  unsigned max_retransmit = 4;
  /// After an empty ACK, how long to wait for the separate response.
  double separate_timeout = 30.0;

  // -- fleet
  double interval = 10;             ///< seconds between two health reports of a node
  double install_seconds = 2;       ///< simulated install time of one job (jittered ±25 %)
  double fail_rate = 0;             ///< probability that a job fails on a node
  /// Probability that a job never ends on a node: it reports installing and
  /// then nothing (the server's node timeout ends it).
  double timeout_rate = 0;
  /// Deterministic failures: the first attempt of a job fails on this share
  /// of the nodes, spread evenly over node ids (exactly that share of any
  /// run of consecutive nodes, to within one); a retry succeeds.
  double fail_first = 0;
  /// --label KEY=V1[,V2...]: node i registers KEY with value V[i % n].
  std::vector<std::pair<std::string, std::vector<std::string>>> labels;
  /// --inventory NAME=VERSION: what every node runs at the start; a
  /// successful job adds its name and version (the notification's hints).
  std::vector<std::pair<std::string, std::string>> inventory;
  /// --late N --late-after S: the last N nodes register only S seconds after
  /// the start (late joiners of a running campaign).
  uint32_t late_nodes = 0;
  double late_after = 0;
  double unhealthy_rate = 0.02;     ///< probability that a health report is unhealthy
  unsigned register_window = 256;   ///< registrations in flight at most (whole fleet)
  std::vector<std::string> services = {"systemd", "network", "ssh", "docker"};

  // -- load
  unsigned inflight = 1;            ///< requests in flight per node
  double rate = 0;                  ///< total requests/s, paced; 0 = as fast as answered
  /// At most this many load requests in flight over all nodes (0: nodes x
  /// inflight). Nodes take turns, so all addresses stay in use.
  unsigned window = 0;
  std::string path = "health";
  bool do_register = true;
  target_kind target = target_kind::coapfleet;
  double drain = 5;                 ///< seconds to wait for answers after --duration
};

/// coap://HOST[:PORT][/] with HOST an IPv4 literal in 127.0.0.0/8 or
/// "localhost". Fills ip/port; on failure returns false and says why
/// (non-loopback addresses are refused: the simulator is for loopback and
/// network-namespace testing only).
bool parse_server_uri(const std::string& uri, uint32_t& ip, uint16_t& port, std::string& err);

/// Dotted IPv4 to host-order integer; false when not an IPv4 literal.
bool parse_ipv4(const std::string& text, uint32_t& ip);
std::string format_ipv4(uint32_t ip);
inline bool is_loopback(uint32_t ip) { return ip >> 24 == 127; }

/// Address of node i (0-based): base + (i / 250) * 256 + (i % 250) + 1, so
/// the last octet runs 1..250 and never hits .0 or .255.
uint32_t node_address(uint32_t base, uint32_t index);
/// "sim-00001" for index 0 (at least 5 digits).
std::string node_id(const std::string& prefix, uint32_t index);

/// Checks a complete configuration: node addresses stay in 127.0.0.0/8 and do
/// not collide with the server's, counts and times are sane. Empty when fine.
std::string validate(const config& c);

/// Initial retransmission timeout (seconds) for a random r in [0,1):
/// ACK_TIMEOUT * (1 + r * (ACK_RANDOM_FACTOR - 1)).
double initial_timeout(const config& c, double r);
/// Total time from the first transmission until a CON without any answer is
/// given up: initial * (2^(MAX_RETRANSMIT+1) - 1), i.e. the last
/// retransmission's timeout expires (RFC 7252 MAX_TRANSMIT_WAIT for r = 1).
double give_up_after(const config& c, double initial);

}  // namespace coapfleet::sim
