// Unit tests of the simulator's engine against an in-process fake server on
// loopback: separate registration responses (which the nodes must ACK), lost
// datagrams (retransmission), 4.04 (re-registration), 5.03 (back-off),
// notifications (piggybacked 2.04, deduplicated by message id) and the step
// reports of a job. Nodes live on 127.3.R.x with a random port, so that the
// test never meets the integration tests' addresses.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "model/json_value.hpp"
#include "sim/coap_codec.hpp"
#include "sim/engine.hpp"

using namespace coapfleet::sim;
namespace cp = coapfleet::sim::coap;

namespace {

sockaddr_in addr(uint32_t ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(ip);
  a.sin_port = htons(port);
  return a;
}

int udp_socket(uint32_t ip, uint16_t port, uint16_t* bound = nullptr) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  auto a = addr(ip, port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  if (bound) {
    socklen_t l = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &l);
    *bound = ntohs(a.sin_port);
  }
  return fd;
}

/// A coapfleet-server stand-in: POST /nodes (empty ACK + separate CON 2.01),
/// PUT /health (piggybacked 2.04 or a scripted code), POST /updates reports.
class fake_server {
public:
  // behaviour (set before start)
  int drop_every = 0;                 ///< leave every Nth new request unanswered once
  bool not_found_first_health = false;  ///< the first PUT /health of sim-00001 gets 4.04
  bool busy_first_health = false;     ///< the first PUT /health of each node gets 5.03

  fake_server() {
    fd_ = udp_socket(INADDR_LOOPBACK, 0, &port_);
    REQUIRE(fd_ >= 0);
  }
  ~fake_server() {
    stop();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  void start() {
    thread_ = std::thread([this] { loop(); });
  }
  void stop() {
    stop_ = true;
    if (thread_.joinable())
      thread_.join();
  }

  struct node_info {
    uint32_t ip = 0;
    uint16_t port = 0;
    int registrations = 0;
    int health = 0;
    std::vector<std::string> reports;  ///< statuses in arrival order
    int last_result = -1;
    std::string last_error;
  };
  std::map<std::string, node_info> nodes() {
    std::lock_guard<std::mutex> g(mu_);
    return nodes_;
  }
  int separate_acks() {
    std::lock_guard<std::mutex> g(mu_);
    return separate_acks_;
  }
  std::set<uint32_t> health_peers() {
    std::lock_guard<std::mutex> g(mu_);
    return health_peers_;
  }

private:
  void reply(const sockaddr_in& to, const std::string& d) {
    ::sendto(fd_, d.data(), d.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
  }

  void loop() {
    uint16_t mid = 1000;
    std::set<std::pair<uint64_t, uint16_t>> seen;  // (peer, mid) already dropped once
    // (peer, mid) -> the answer it got: a retransmission (the nodes retransmit
    // after 50 ms here, sooner than a loaded machine may run this thread) gets
    // the same answer and is not counted again, as RFC 7252 4.5 has it.
    std::map<std::pair<uint64_t, uint16_t>, std::string> answered;
    int counter = 0;
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0)
        continue;
      uint8_t buf[2048];
      sockaddr_in src{};
      socklen_t sl = sizeof src;
      ssize_t len = ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&src), &sl);
      if (len <= 0)
        continue;
      cp::message m;
      if (cp::decode(buf, static_cast<size_t>(len), m) != cp::decode_error::ok)
        continue;
      std::string token(reinterpret_cast<char*>(m.token), m.token_length);
      if (m.type == cp::msg_type::con && m.code == cp::code::empty) {
        uint8_t rst[4];  // CoAP ping
        cp::encode_empty(cp::msg_type::rst, m.mid, rst);
        reply(src, std::string(reinterpret_cast<char*>(rst), 4));
        continue;
      }
      if (m.type == cp::msg_type::ack && m.code == cp::code::empty) {
        std::lock_guard<std::mutex> g(mu_);
        ++separate_acks_;
        continue;
      }
      if (m.type != cp::msg_type::con || !cp::is_request(m.code))
        continue;
      uint64_t peer = static_cast<uint64_t>(src.sin_addr.s_addr) << 16 | src.sin_port;
      if (drop_every > 0 && !seen.count({peer, m.mid}) && ++counter % drop_every == 0) {
        seen.insert({peer, m.mid});
        continue;  // lost: the node must retransmit
      }
      if (auto it = answered.find({peer, m.mid}); it != answered.end()) {
        reply(src, it->second);
        continue;
      }
      auto respond = [&](const std::string& d) {
        answered[{peer, m.mid}] = d;
        reply(src, d);
      };
      auto doc = coapfleet::model::json_document::parse(
        std::string_view(reinterpret_cast<const char*>(m.payload), m.payload_length));
      auto d = doc.root();
      std::string node_id = d["node_id"].as_string();
      std::lock_guard<std::mutex> g(mu_);
      if (m.path_is("nodes") && m.code == cp::code::post) {
        auto& n = nodes_[node_id];
        inet_pton(AF_INET, d["ip_address"].as_string().c_str(), &n.ip);
        n.ip = ntohl(n.ip);
        n.port = static_cast<uint16_t>(d["port"].as_int());
        ++n.registrations;
        uint8_t ack[4];
        cp::encode_empty(cp::msg_type::ack, m.mid, ack);
        respond(std::string(reinterpret_cast<char*>(ack), 4));  // the 2.01 follows once
        reply(src, cp::encode_response(cp::msg_type::con, cp::code::created, mid++, token,
                                       cp::format::json, "{\"message\":\"registered\"}"));
      } else if (m.path_is("health") && m.code == cp::code::put) {
        health_peers_.insert(ntohl(src.sin_addr.s_addr));
        auto& n = nodes_[node_id];
        ++n.health;
        uint8_t code = cp::code::changed;
        if (not_found_first_health && node_id == "sim-00001" && n.health == 1)
          code = cp::code::not_found;
        if (busy_first_health && n.health == 1) {
          uint8_t out[32];
          cp::writer w(out, sizeof out);
          w.header(cp::msg_type::ack, cp::code::service_unavailable, m.mid, m.token,
                   m.token_length);
          w.uint_option(cp::option::max_age, 0);
          respond(std::string(reinterpret_cast<char*>(out), w.size()));
          continue;
        }
        respond(cp::encode_response(cp::msg_type::ack, code, m.mid, token));
      } else if (m.path_is("updates") && m.code == cp::code::post) {
        auto& n = nodes_[node_id];
        n.reports.push_back(d["status"].as_string());
        if (d["result"].exists())
          n.last_result = static_cast<int>(d["result"].as_int());
        if (d["error_message"].exists())
          n.last_error = d["error_message"].as_string();
        respond(cp::encode_response(cp::msg_type::ack, cp::code::changed, m.mid, token));
      } else {
        respond(cp::encode_response(cp::msg_type::ack, cp::code::not_found, m.mid, token));
      }
    }
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, node_info> nodes_;
  std::set<uint32_t> health_peers_;
  int separate_acks_ = 0;
};

/// A configuration on 127.3.R.0 with a random node port, fast timers.
config test_config(sim_mode mode, uint16_t server_port, uint32_t nodes) {
  static std::mt19937 gen(std::random_device{}());
  config c;
  c.mode = mode;
  c.server_port = server_port;
  c.nodes = nodes;
  c.base_ip = 0x7F030000 | (gen() % 200) << 8;
  c.node_port = static_cast<uint16_t>(20000 + gen() % 30000);
  c.ack_timeout = 0.05;
  c.separate_timeout = 2;
  c.drain = 2;
  c.report_every = 60;
  return c;
}

/// Opens an engine, trying other addresses when the random ones are taken.
std::unique_ptr<engine> open_engine(config c) {
  std::string err;
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto e = std::make_unique<engine>(c, nullptr);
    err = e->open(false, true);
    if (err.empty())
      return e;
    c.node_port = static_cast<uint16_t>(c.node_port + 7);
    c.base_ip += 256;
  }
  FAIL("cannot open the engine: " << err);
  return nullptr;
}

template <class F>
bool wait_for(F f, double seconds) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (f())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return f();
}

}  // namespace

TEST_CASE("engine refuses to start without a server") {
  uint16_t port = 0;
  int fd = udp_socket(INADDR_LOOPBACK, 0, &port);
  ::close(fd);  // nothing listens there now
  auto c = test_config(sim_mode::load, port, 2);
  c.duration = 1;
  engine e(c, nullptr);
  auto err = e.open(false, true);
  INFO(err);
  CHECK(err.find("is the server up?") != std::string::npos);
}

TEST_CASE("load: registration with separate responses, retransmission of lost requests") {
  fake_server srv;
  srv.drop_every = 5;
  srv.start();
  auto c = test_config(sim_mode::load, srv.port(), 10);
  c.duration = 1.0;
  auto e = open_engine(c);
  auto r = e->run();
  srv.stop();
  CHECK(r.registered == 10);
  CHECK(r.register_codes.of(cp::code::created) == 10);
  CHECK(srv.separate_acks() >= 10);  // every separate 2.01 was acknowledged
  CHECK(r.sent > 100);
  CHECK(r.answered == r.sent);
  CHECK(r.codes.of(cp::code::changed) == r.answered);
  CHECK(r.retransmissions > 0);
  CHECK(r.lost == 0);
  CHECK(r.unanswered_at_end == 0);
  CHECK(r.throughput > 0);
  CHECK(r.latency.count() == r.answered);
  // A retransmitted request's latency counts from its first transmission.
  CHECK(r.latency.max() >= 50000);
  CHECK(r.health_sent == 0);
  CHECK(srv.health_peers().size() == 10);  // ten distinct source addresses
}

TEST_CASE("load: --rate paces, --window bounds what is in flight, 5.03 backs off") {
  fake_server srv;
  srv.busy_first_health = true;
  srv.start();
  SUBCASE("rate") {
    auto c = test_config(sim_mode::load, srv.port(), 5);
    c.duration = 1.0;
    c.rate = 200;
    auto e = open_engine(c);
    auto r = e->run();
    // Every send due in the second went out, or was counted as missed (all
    // nodes busy or backing off after their 5.03).
    CHECK(r.sent + r.rate_misses >= 190);
    CHECK(r.sent + r.rate_misses <= 205);
    CHECK(r.sent >= 120);
    CHECK(r.codes.of(cp::code::service_unavailable) == 5);
    CHECK(r.lost == 0);
  }
  SUBCASE("window") {
    auto c = test_config(sim_mode::load, srv.port(), 12);
    c.duration = 1.5;
    c.window = 3;
    c.do_register = false;
    auto e = open_engine(c);
    auto r = e->run();
    CHECK(r.registered == 0);
    CHECK(r.sent > 100);
    CHECK(r.backoffs == 12);  // the first answer of each node was 5.03 with Max-Age 0
    CHECK(r.codes.of(cp::code::service_unavailable) == 12);
    CHECK(srv.health_peers().size() == 12);  // the nodes took turns
    CHECK(r.lost == 0);
  }
  srv.stop();
}

TEST_CASE("fleet: health, re-registration on 4.04, notifications and job reports") {
  fake_server srv;
  srv.not_found_first_health = true;
  srv.start();
  auto c = test_config(sim_mode::fleet, srv.port(), 4);
  c.interval = 0.2;
  c.install_seconds = 0.3;
  c.duration = 30;  // stopped by request_stop below
  bool fail = false;
  SUBCASE("succeeding") { fail = false; }
  SUBCASE("failing") { fail = true; }
  c.fail_rate = fail ? 1.0 : 0.0;
  auto e = open_engine(c);
  run_result r;
  std::thread runner([&] { r = e->run(); });

  REQUIRE(wait_for([&] {
    auto ns = srv.nodes();
    if (ns.size() < 4)
      return false;
    for (auto& kv : ns)
      if (kv.second.health < 2)
        return false;
    return true;
  }, 10));
  auto before = srv.nodes();
  CHECK(before["sim-00001"].registrations == 2);  // again after its 4.04
  CHECK(before["sim-00002"].registrations == 1);

  // The server's notification: a CON from another port of the server's host.
  uint16_t notify_port = 0;
  int nfd = udp_socket(INADDR_LOOPBACK, 0, &notify_port);
  REQUIRE(nfd >= 0);
  std::string body =
    "{\"job_id\":\"job-7\",\"node_id\":\"sim-00002\",\"name\":\"t\",\"version\":\"1\","
    "\"package_type\":\"script\",\"script\":\"true\"}";
  cp::request_spec rq;
  rq.method = cp::code::post;
  rq.mid = 0x4242;
  rq.token = "tok1";
  rq.path = "updates/available";
  rq.content_format = cp::format::json;
  rq.payload = body;
  auto dgram = cp::encode_request(rq);
  auto target = addr(before["sim-00002"].ip, before["sim-00002"].port);
  auto exchange = [&](const std::string& d) {
    ::sendto(nfd, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&target), sizeof target);
    pollfd p{nfd, POLLIN, 0};
    REQUIRE(::poll(&p, 1, 2000) == 1);
    uint8_t buf[256];
    ssize_t len = ::recv(nfd, buf, sizeof buf, 0);
    return std::string(reinterpret_cast<char*>(buf), static_cast<size_t>(len));
  };
  auto first = exchange(dgram);
  cp::message m;
  REQUIRE(cp::decode(reinterpret_cast<const uint8_t*>(first.data()), first.size(), m)
          == cp::decode_error::ok);
  CHECK(m.type == cp::msg_type::ack);
  CHECK(m.code == cp::code::changed);
  CHECK(m.mid == 0x4242);
  CHECK(m.token_view() == "tok1");
  CHECK(exchange(dgram) == first);  // a retransmission gets the same answer, once more

  // Invalid body: 4.00; unknown path: 4.04 (new message ids).
  rq.mid = 0x4243;
  rq.payload = "{}";
  auto bad = exchange(cp::encode_request(rq));
  REQUIRE(cp::decode(reinterpret_cast<const uint8_t*>(bad.data()), bad.size(), m)
          == cp::decode_error::ok);
  CHECK(m.code == cp::code::bad_request);
  rq.mid = 0x4244;
  rq.path = "nothing";
  auto none = exchange(cp::encode_request(rq));
  REQUIRE(cp::decode(reinterpret_cast<const uint8_t*>(none.data()), none.size(), m)
          == cp::decode_error::ok);
  CHECK(m.code == cp::code::not_found);
  ::close(nfd);

  const char* last = fail ? "failed" : "succeeded";
  REQUIRE(wait_for([&] {
    auto rs = srv.nodes()["sim-00002"].reports;
    return !rs.empty() && rs.back() == last;
  }, 10));
  e->request_stop();
  runner.join();
  srv.stop();
  auto n2 = srv.nodes()["sim-00002"];
  CHECK(n2.reports == std::vector<std::string>{"downloading", "installing", last});
  CHECK(n2.last_result == (fail ? 8 : 1));
  if (fail)
    CHECK(n2.last_error.find("exited with code 1") != std::string::npos);
  CHECK(srv.nodes()["sim-00003"].reports.empty());
  CHECK(r.notifications == 1);
  CHECK(r.notification_duplicates == 1);
  CHECK(r.notification_rejected == 1);
  CHECK(r.reports_sent == 3);
  CHECK(r.reports_answered == 3);
  CHECK((fail ? r.jobs_failed : r.jobs_succeeded) == 1);
  CHECK(r.reregistrations == 1);
  CHECK(r.registered == 4);
  CHECK(r.health_answered >= 8);
  CHECK(r.codes.of(cp::code::not_found) == 1);
  CHECK(r.lost == 0);
}

TEST_CASE("fleet: nodes sharing sockets (--nodes-per-socket) register one address each, "
          "notifications reach the node they name") {
  fake_server srv;
  srv.start();
  auto c = test_config(sim_mode::fleet, srv.port(), 4);
  c.nodes_per_socket = 2;
  c.interval = 0.2;
  c.install_seconds = 0.1;
  c.duration = 30;
  auto e = open_engine(c);
  run_result r;
  std::thread runner([&] { r = e->run(); });
  REQUIRE(wait_for([&] {
    auto ns = srv.nodes();
    if (ns.size() < 4)
      return false;
    for (auto& kv : ns)
      if (kv.second.health < 1)
        return false;
    return true;
  }, 10));
  auto ns = srv.nodes();
  // Two sockets: nodes 1 and 2 on one address and port, 3 and 4 on another.
  CHECK(ns["sim-00001"].ip == ns["sim-00002"].ip);
  CHECK(ns["sim-00001"].port == ns["sim-00002"].port);
  CHECK(ns["sim-00003"].ip == ns["sim-00004"].ip);
  CHECK(ns["sim-00001"].ip != ns["sim-00003"].ip);

  uint16_t notify_port = 0;
  int nfd = udp_socket(INADDR_LOOPBACK, 0, &notify_port);
  REQUIRE(nfd >= 0);
  auto target = addr(ns["sim-00001"].ip, ns["sim-00001"].port);
  auto notify = [&](const std::string& node, uint16_t mid) {
    // request_spec views its strings: they live here.
    std::string token = "t" + std::to_string(mid);
    std::string body = "{\"job_id\":\"job-" + std::to_string(mid) + "\",\"node_id\":\"" + node
                       + "\",\"name\":\"t\",\"version\":\"1\",\"package_type\":\"script\","
                         "\"script\":\"true\"}";
    cp::request_spec rq;
    rq.method = cp::code::post;
    rq.mid = mid;
    rq.token = token;
    rq.path = "updates/available";
    rq.content_format = cp::format::json;
    rq.payload = body;
    auto d = cp::encode_request(rq);
    ::sendto(nfd, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&target), sizeof target);
    pollfd p{nfd, POLLIN, 0};
    REQUIRE(::poll(&p, 1, 2000) == 1);
    uint8_t buf[256];
    ssize_t len = ::recv(nfd, buf, sizeof buf, 0);
    cp::message m;
    REQUIRE(cp::decode(buf, static_cast<size_t>(len), m) == cp::decode_error::ok);
    CHECK(m.mid == mid);
    return m.code;
  };
  // The second node of the shared socket takes its job; a node of the other
  // socket (or none of the fleet) is not here: 4.04.
  CHECK(notify("sim-00002", 0x5001) == cp::code::changed);
  CHECK(notify("sim-00003", 0x5002) == cp::code::not_found);
  CHECK(notify("other-1", 0x5003) == cp::code::not_found);
  ::close(nfd);
  REQUIRE(wait_for([&] {
    auto rs = srv.nodes()["sim-00002"].reports;
    return !rs.empty() && rs.back() == "succeeded";
  }, 10));
  CHECK(srv.nodes()["sim-00001"].reports.empty());
  e->request_stop();
  runner.join();
  srv.stop();
  CHECK(r.notifications == 1);
  CHECK(r.notification_rejected == 2);
}
