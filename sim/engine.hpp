// The simulator's engine: N simulated nodes, each with its own UDP socket on
// its own loopback address, driven by one single-threaded epoll loop.
//
// Every node speaks the agent's protocol with the hand-rolled codec of
// coap_codec.hpp: CON requests with RFC 7252 retransmission (ACK_TIMEOUT x
// random 1..ACK_RANDOM_FACTOR, doubling, MAX_RETRANSMIT), piggybacked or
// separate responses (a separate CON response is acknowledged), incoming CON
// requests deduplicated by message id. Two modes:
//
// - fleet: register (POST /nodes), then PUT /health every --interval seconds
//   (phases spread evenly over the interval), re-register on 4.04, answer
//   POST /updates/available and report the job's steps (POST /updates
//   {"action":"report"}).
// - load: register every node, then PUT /health as fast as the server answers
//   with at most --inflight requests per node (or paced at --rate requests/s),
//   measuring latency from the first transmission to the answer.
#pragma once

#include <cstdint>
#include <cstdio>
#include <deque>
#include <string>
#include <vector>

#include <netinet/in.h>

#include "sim/bodies.hpp"
#include "sim/coap_codec.hpp"
#include "sim/config.hpp"
#include "sim/stats.hpp"
#include "sim/timer_queue.hpp"

namespace coapfleet::sim {

/// Everything the engine counted; printed by report.hpp.
struct run_result {
  sim_mode mode = sim_mode::fleet;
  uint32_t nodes = 0;
  uint32_t registered = 0;            ///< nodes registered at the end
  uint64_t registrations = 0;         ///< POST /nodes answered 2.01 (incl. re-registrations)
  uint64_t reregistrations = 0;       ///< after a 4.04 to PUT /health
  uint64_t register_failures = 0;     ///< POST /nodes not answered 2.xx or lost
  double register_seconds = 0;        ///< load: time to register all nodes
  code_counts register_codes;
  latency_histogram register_latency;

  // requests of the measured kind (load: the load requests; fleet: health)
  uint64_t sent = 0;                  ///< first transmissions
  uint64_t answered = 0;              ///< answers of any code
  uint64_t answered_in_window = 0;    ///< load: answers received before --duration ended
  code_counts codes;                  ///< answers by code (load: load requests; fleet: all)
  latency_histogram latency;          ///< first transmission → answer
  uint64_t lost = 0;                  ///< no answer after all retransmissions (or separate timeout)
  uint64_t failovers = 0;             ///< a node moved to the next --server after a lost request
  uint64_t unanswered_at_end = 0;     ///< still in flight when the run ended
  uint64_t rst = 0;                   ///< answered with RST
  uint64_t retransmissions = 0;       ///< all kinds
  uint64_t backoffs = 0;              ///< load: pauses after 5.03
  uint64_t rate_misses = 0;           ///< load --rate: sends due but every node had --inflight out
  double window_seconds = 0;          ///< load: the measured window
  double throughput = 0;              ///< load: answered_in_window / window_seconds

  // fleet
  uint64_t health_sent = 0, health_answered = 0, health_skipped = 0;
  uint64_t notifications = 0, notification_duplicates = 0, notification_rejected = 0;
  uint64_t reports_sent = 0, reports_answered = 0;
  uint64_t jobs_succeeded = 0, jobs_failed = 0, jobs_abandoned = 0, jobs_hung = 0;
  latency_histogram report_latency;

  // datagrams
  uint64_t datagrams_in = 0, datagrams_out = 0, decode_errors = 0, send_errors = 0,
           unexpected = 0;
  double elapsed_seconds = 0;         ///< whole run
  double cpu_seconds = 0;             ///< the simulator's own user+system CPU
  bool interrupted = false;           ///< stopped by SIGINT/SIGTERM
};

class engine {
public:
  /// `progress` receives the progress lines (fleet; load: phase lines), may be null.
  engine(config c, FILE* progress);
  ~engine();
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;

  /// Raises RLIMIT_NOFILE, opens and binds the node sockets, the epoll and
  /// (when `signals`) a signalfd for SIGINT/SIGTERM, then checks with a CoAP
  /// ping that the server is there. Returns an error message, empty on success.
  std::string open(bool signals = true, bool probe = true);
  /// Runs the configured mode until --duration or a stop. Returns the result.
  run_result run();
  /// Thread-safe: makes run() wind down as on SIGINT.
  void request_stop();

  const config& cfg() const { return cfg_; }

private:
  static constexpr uint32_t none = UINT32_MAX;
  enum class ex_kind : uint8_t { reg, health, report, load };
  enum timer_what : uint8_t { t_exchange, t_health, t_job, t_register, t_resume };

  struct exchange {
    uint32_t node = 0;
    uint32_t gen = 0;
    uint32_t next = none;   ///< next of the same node, or next free slot
    uint16_t mid = 0;
    ex_kind kind = ex_kind::health;
    uint8_t retransmits = 0;
    bool acked = false;     ///< empty ACK seen: waiting for the separate response
    bool live = false;
    int64_t first_sent = 0;
    int64_t timeout = 0;    ///< current retransmission timeout, ns
    int64_t deadline = 0;   ///< when its timer fires
    std::vector<uint8_t> dgram;
  };

  struct seen_request {
    uint32_t src_ip = 0;
    uint16_t src_port = 0;
    uint16_t mid = 0;
    int64_t at = 0;
    uint8_t len = 0;
    uint8_t reply[16] = {};
  };

  struct job {
    std::string id;
    std::string name, version;  ///< the notification's hints (what it installs)
    uint32_t attempt = 1;       ///< the node's attempt of the job (a retry is another run)
    bool fail = false;
    bool hang = false;      ///< never ends (--timeout-rate): no final report
    uint8_t step = 0;       ///< 0 downloading, 1 installing, 2 final
    uint8_t tries = 0;      ///< attempts of the current step's report
    int64_t started = 0;
    int64_t install = 0;    ///< ns
  };

  enum reg_state : uint8_t { unregistered, registering, registered };

  /// A UDP socket: one node's, or --nodes-per-socket nodes' (message ids
  /// are the socket's, so that none repeats on one endpoint).
  struct sock {
    int fd = -1;
    uint32_t ip = 0;
    uint16_t next_mid = 0;
    uint32_t first_node = 0;  ///< nodes first_node .. first_node + nodes_per_socket - 1
  };

  struct node {
    uint32_t sock = 0;            ///< index in socks_
    uint8_t server = 0;           ///< index in servers_ (the --server it talks to)
    uint8_t state = unregistered;
    uint8_t inflight = 0;         ///< load requests in flight
    uint8_t reg_tries = 0;
    uint8_t seen_next = 0;
    bool queued = false;          ///< in the registration queue
    bool paused = false;          ///< load: backing off after 5.03
    uint32_t first_ex = none;     ///< its live exchanges
    uint32_t health_ex = none, report_ex = none, reg_ex = none;
    int64_t tick_at = 0, job_at = 0, reg_at = 0, resume_at = 0;
    int64_t body_at = INT64_MIN;
    std::string id;
    std::string body;             ///< load: cached health body
    health_walk walk;
    seen_request seen[4];
    std::vector<job> jobs;        ///< front is the running one
    std::vector<std::string> done;  ///< last finished runs (model::run_key)
    /// What successful jobs installed (beside --inventory): name → version.
    std::vector<std::pair<std::string, std::string>> installed;
  };

  // setup
  std::string raise_fd_limit();
  std::string probe_server();

  // loop
  void loop_until(int64_t end, bool (engine::*done)() const);
  void poll_once(int64_t max_wait_ns);
  void run_timers(int64_t now);
  void receive(uint32_t sock);
  void handle(uint32_t sock, const uint8_t* data, size_t len, const sockaddr_in& src,
              int64_t now);
  void handle_request(uint32_t sock, const coap::message& m, const sockaddr_in& src,
                      int64_t now);
  /// The node of socket `sock` a request is for (its body's node_id when
  /// the socket is shared); `none` when it is none of them.
  uint32_t addressee(uint32_t sock, const coap::message& m) const;
  void send_to(uint32_t n, const uint8_t* data, size_t len, const sockaddr_in& dst);
  void send_on(uint32_t sock, const uint8_t* data, size_t len, const sockaddr_in& dst);
  void send_to_server(uint32_t n, const uint8_t* data, size_t len);

  // exchanges
  uint32_t start_exchange(uint32_t n, ex_kind kind, uint8_t method, const char* path,
                          const char* body, size_t body_len, int64_t now);
  void finish_exchange(uint32_t slot);
  void complete(uint32_t slot, const coap::message& m, int64_t now);
  void exchange_timer(uint32_t slot, int64_t now);
  void give_up(uint32_t slot, int64_t now);
  /// After a lost request: node n moves to the next server and registers there.
  void fail_over(uint32_t n);
  uint32_t find_by_mid(uint32_t n, uint16_t mid) const;
  /// The live exchange with message id `mid` of any node on socket `sock`.
  uint32_t find_on_socket(uint32_t sock, uint16_t mid) const;

  // node behaviour
  void queue_registration(uint32_t n);
  void pump_registrations(int64_t now);
  void send_registration(uint32_t n, int64_t now);
  void registration_done(uint32_t n, bool ok, int64_t now);
  void schedule_health(uint32_t n, int64_t now);
  void health_tick(uint32_t n, int64_t now);
  void send_health(uint32_t n, int64_t now);
  void accept_job(uint32_t n, const std::string& job_id, uint32_t attempt,
                  const std::string& name, const std::string& version, int64_t now);
  /// Node n's labels (--label) and what it runs (--inventory and its jobs).
  model::string_map labels_of(uint32_t n) const;
  model::string_map inventory_of(uint32_t n) const;
  void start_next_job(uint32_t n, int64_t now);
  void job_timer(uint32_t n, int64_t now);
  void send_report(uint32_t n, int64_t now);
  void report_answered(uint32_t n, uint8_t code, uint32_t max_age, bool lost, int64_t now);
  void finish_job(uint32_t n, bool counted_as_abandoned);
  void send_load(uint32_t n, int64_t now);
  void load_answered(uint32_t n, uint8_t code, uint32_t max_age, int64_t now);
  void pace(int64_t now);
  void fill_window(int64_t now);

  // modes
  void run_fleet();
  void run_load();
  void register_all();
  void drain(int64_t until, bool load_only);
  bool all_registered_or_failed() const;
  bool nothing_in_flight() const;
  bool load_drained() const;
  void progress_line(int64_t now);

  size_t health_body(uint32_t n, char* buf, size_t cap, int64_t now);
  const char* timestamp_now();
  int64_t jitter_timeout();

  config cfg_;
  FILE* out_;
  sockaddr_in server_{};
  std::vector<sockaddr_in> servers_;  ///< server_ and the other --server, in turn
  int epoll_fd_ = -1, signal_fd_ = -1, stop_fd_ = -1;
  bool stopping_ = false, hard_stop_ = false;
  bool load_running_ = false;   ///< load window open
  bool fleet_running_ = false;
  bool draining_ = false;       ///< winding down: no new exchanges
  std::vector<node> nodes_;
  std::vector<sock> socks_;
  std::vector<exchange> ex_;
  uint32_t free_ex_ = none;
  uint32_t gen_ = 1;
  uint64_t live_ex_ = 0, live_load_ = 0;
  timer_queue timers_;
  std::deque<uint32_t> reg_queue_;
  unsigned reg_inflight_ = 0;
  std::deque<uint32_t> ready_;   ///< --rate: nodes with room for one more request
  uint64_t issued_ = 0;
  int64_t start_ = 0, window_start_ = 0, window_end_ = 0, fleet_start_ = 0;
  int64_t next_line_ = 0;
  int64_t ts_second_ = -1;
  char ts_[32] = {};
  rng rng_;
  run_result r_;
  // progress deltas
  uint64_t last_health_answered_ = 0;
  int64_t last_line_at_ = 0;
};

/// CLOCK_MONOTONIC in nanoseconds.
int64_t mono_ns();

}  // namespace coapfleet::sim
