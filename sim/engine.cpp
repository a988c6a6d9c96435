#include "sim/engine.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstring>
#include <ctime>

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "model/json.hpp"

namespace coapfleet::sim {

int64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

namespace {

constexpr int64_t second = 1000000000;
constexpr int64_t exchange_lifetime = 247 * second;  // RFC 7252 EXCHANGE_LIFETIME
constexpr uint32_t stop_tag = UINT32_MAX - 1;
constexpr uint32_t signal_tag = UINT32_MAX - 2;
constexpr int max_events = 1024;
constexpr size_t max_body = 1024;  // everything fits one datagram: no Block1

int64_t to_ns(double seconds) { return static_cast<int64_t>(seconds * 1e9); }

sockaddr_in make_addr(uint32_t ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(ip);
  a.sin_port = htons(port);
  return a;
}

void put_be32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

uint32_t get_be32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16
         | static_cast<uint32_t>(p[2]) << 8 | p[3];
}

bool code_ok(uint8_t code) { return code >> 5 == 2; }

}  // namespace

engine::engine(config c, FILE* progress) : cfg_(std::move(c)), out_(progress), rng_(cfg_.seed) {
  r_.mode = cfg_.mode;
  r_.nodes = cfg_.nodes;
}

engine::~engine() {
  for (auto& n : nodes_)
    if (n.fd >= 0)
      ::close(n.fd);
  for (int fd : {epoll_fd_, signal_fd_, stop_fd_})
    if (fd >= 0)
      ::close(fd);
}

// -- setup -------------------------------------------------------------------------------

std::string engine::raise_fd_limit() {
  rlim_t need = static_cast<rlim_t>(cfg_.nodes) + 64;
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return std::string("getrlimit(RLIMIT_NOFILE): ") + std::strerror(errno);
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
    if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need) {
      rl.rlim_cur = need;
      if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return std::string("setrlimit(RLIMIT_NOFILE): ") + std::strerror(errno);
    } else {
      rlimit more{need, need};
      if (setrlimit(RLIMIT_NOFILE, &more) != 0)
        return std::to_string(cfg_.nodes) + " nodes need " + std::to_string(need)
               + " open files (one UDP socket per node), but the hard limit is "
               + std::to_string(rl.rlim_max)
               + "; raise it (ulimit -Hn as root, LimitNOFILE=, /etc/security/limits.conf) "
                 "or simulate fewer nodes";
    }
  }
  return {};
}

std::string engine::open(bool signals, bool probe) {
  if (auto e = validate(cfg_); !e.empty())
    return e;
  if (auto e = raise_fd_limit(); !e.empty())
    return e;
  server_ = make_addr(cfg_.server_ip, cfg_.server_port);
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0)
    return std::string("epoll_create1: ") + std::strerror(errno);
  auto watch = [&](int fd, uint32_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = tag;
    return epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) == 0;
  };
  stop_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (stop_fd_ < 0 || !watch(stop_fd_, stop_tag))
    return std::string("eventfd: ") + std::strerror(errno);
  if (signals) {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &mask, nullptr);
    signal_fd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (signal_fd_ < 0 || !watch(signal_fd_, signal_tag))
      return std::string("signalfd: ") + std::strerror(errno);
  }
  nodes_.resize(cfg_.nodes);
  for (uint32_t i = 0; i < cfg_.nodes; ++i) {
    auto& n = nodes_[i];
    n.ip = node_address(cfg_.base_ip, i);
    n.id = node_id(cfg_.id_prefix, i);
    n.walk.init(rng_);
    n.next_mid = static_cast<uint16_t>(rng_.next());
    n.fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (n.fd < 0)
      return "socket() for node " + std::to_string(i + 1) + ": " + std::strerror(errno);
    auto addr = make_addr(n.ip, cfg_.node_port);
    if (::bind(n.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      int err = errno;
      std::string where = format_ipv4(n.ip) + ":" + std::to_string(cfg_.node_port);
      if (err == EADDRINUSE)
        return "cannot bind " + where + ": address in use (another coapfleet-sim or agent on "
               "these addresses? choose another --base or --node-port)";
      return "cannot bind " + where + ": " + std::strerror(err);
    }
    if (!watch(n.fd, i))
      return std::string("epoll_ctl: ") + std::strerror(errno);
  }
  if (probe)
    return probe_server();
  return {};
}

std::string engine::probe_server() {
  // A CoAP ping (empty CON, answered with RST) from a connected socket, so
  // that ICMP port unreachable reports a missing server at once.
  std::string where = format_ipv4(cfg_.server_ip) + ":" + std::to_string(cfg_.server_port);
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return std::string("socket(): ") + std::strerror(errno);
  auto local = make_addr(nodes_.empty() ? INADDR_LOOPBACK : nodes_[0].ip, 0);
  std::string result = "no answer to a CoAP ping of " + where + " within 3 s: is the server up?";
  if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0
      || ::connect(fd, reinterpret_cast<const sockaddr*>(&server_), sizeof server_) != 0) {
    result = "cannot reach " + where + ": " + std::strerror(errno);
    ::close(fd);
    return result;
  }
  auto mid = static_cast<uint16_t>(rng_.next());
  for (int attempt = 0; attempt < 6; ++attempt) {
    uint8_t ping[4];
    coap::encode_empty(coap::msg_type::con, mid, ping);
    if (::send(fd, ping, sizeof ping, 0) < 0 && errno == ECONNREFUSED) {
      result = "nothing listens on udp " + where + " (port unreachable): is the server up?";
      break;
    }
    pollfd p{fd, POLLIN, 0};
    int64_t until = mono_ns() + 500 * 1000000LL;
    bool done = false;
    while (!done) {
      int64_t left = until - mono_ns();
      if (left <= 0 || ::poll(&p, 1, static_cast<int>(left / 1000000 + 1)) <= 0)
        break;
      uint8_t buf[2048];
      ssize_t len = ::recv(fd, buf, sizeof buf, 0);
      if (len < 0) {
        if (errno == ECONNREFUSED) {
          result = "nothing listens on udp " + where + " (port unreachable): is the server up?";
          done = true;
          attempt = 6;
        }
        break;
      }
      coap::message m;
      if (coap::decode(buf, static_cast<size_t>(len), m) == coap::decode_error::ok
          && m.mid == mid) {
        result.clear();
        done = true;
        attempt = 6;
      }
    }
  }
  ::close(fd);
  return result;
}

void engine::request_stop() {
  uint64_t one = 1;
  if (stop_fd_ >= 0) {
    ssize_t rc = ::write(stop_fd_, &one, sizeof one);
    (void)rc;
  }
}

// -- the loop --------------------------------------------------------------------------

void engine::poll_once(int64_t max_wait_ns) {
  epoll_event evs[max_events];
  max_wait_ns = std::max<int64_t>(0, std::min<int64_t>(max_wait_ns, second));
  int n;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
  timespec ts{static_cast<time_t>(max_wait_ns / second), static_cast<long>(max_wait_ns % second)};
  n = epoll_pwait2(epoll_fd_, evs, max_events, &ts, nullptr);
  if (n < 0 && errno == ENOSYS)
#endif
    n = epoll_wait(epoll_fd_, evs, max_events,
                   static_cast<int>((max_wait_ns + 999999) / 1000000));
  for (int i = 0; i < n; ++i) {
    uint32_t tag = evs[i].data.u32;
    if (tag == stop_tag) {
      uint64_t v;
      ssize_t rc = ::read(stop_fd_, &v, sizeof v);
      (void)rc;
      hard_stop_ = stopping_;
      stopping_ = true;
    } else if (tag == signal_tag) {
      signalfd_siginfo si;
      while (::read(signal_fd_, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        hard_stop_ = stopping_;
        stopping_ = true;
        r_.interrupted = true;
      }
    } else if (tag < nodes_.size()) {
      receive(tag);
    }
  }
}

void engine::loop_until(int64_t end, bool (engine::*done)() const) {
  // `done` also ends the phase; a stop request ends every phase except a drain
  // (which a second stop ends).
  for (;;) {
    if (hard_stop_)
      return;
    int64_t now = mono_ns();
    run_timers(now);
    pump_registrations(now);
    pace(now);
    if (cfg_.mode == sim_mode::fleet && fleet_running_ && now >= next_line_)
      progress_line(now);
    if (done && (this->*done)())
      return;
    if (now >= end || (stopping_ && !draining_))
      return;
    int64_t wake = std::min(end, timers_.next());
    if (cfg_.mode == sim_mode::fleet && fleet_running_)
      wake = std::min(wake, next_line_);
    if (load_running_ && cfg_.rate > 0 && !ready_.empty())
      wake = std::min(wake, window_start_
                              + static_cast<int64_t>(static_cast<double>(issued_ + 1) * 1e9
                                                     / cfg_.rate));
    poll_once(wake - now);
  }
}

void engine::run_timers(int64_t now) {
  timer_entry t;
  size_t budget = timers_.size() + 16;  // entries pushed now lie in the future
  while (budget-- > 0 && timers_.pop_due(now, t)) {
    switch (t.what) {
      case t_exchange:
        if (t.id < ex_.size() && ex_[t.id].live && ex_[t.id].gen == t.gen
            && ex_[t.id].deadline == t.at)
          exchange_timer(t.id, now);
        break;
      case t_health:
        if (nodes_[t.id].tick_at == t.at)
          health_tick(t.id, now);
        break;
      case t_job:
        if (nodes_[t.id].job_at == t.at)
          job_timer(t.id, now);
        break;
      case t_register:
        if (nodes_[t.id].reg_at == t.at) {
          nodes_[t.id].reg_at = 0;
          queue_registration(t.id);
        }
        break;
      case t_resume:
        if (nodes_[t.id].resume_at == t.at) {
          auto& n = nodes_[t.id];
          n.paused = false;
          n.resume_at = 0;
          if (load_running_ && !draining_) {
            if (cfg_.rate > 0 || cfg_.window > 0) {
              for (unsigned k = n.inflight; k < cfg_.inflight; ++k)
                ready_.push_back(t.id);
              if (cfg_.rate <= 0)
                fill_window(now);
            } else {
              while (n.inflight < cfg_.inflight && !n.paused)
                send_load(t.id, now);
            }
          }
        }
        break;
    }
  }
}

void engine::receive(uint32_t n) {
  alignas(8) uint8_t buf[2048];
  sockaddr_in src{};
  socklen_t sl = sizeof src;
  ssize_t len = ::recvfrom(nodes_[n].fd, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC,
                           reinterpret_cast<sockaddr*>(&src), &sl);
  if (len < 0)
    return;
  int64_t now = mono_ns();
  ++r_.datagrams_in;
  if (static_cast<size_t>(len) > sizeof buf) {
    ++r_.decode_errors;  // larger than anything this protocol sends
    return;
  }
  handle(n, buf, static_cast<size_t>(len), src, now);
}

void engine::send_to(uint32_t n, const uint8_t* data, size_t len, const sockaddr_in& dst) {
  ++r_.datagrams_out;
  if (::sendto(nodes_[n].fd, data, len, 0, reinterpret_cast<const sockaddr*>(&dst), sizeof dst)
      < 0)
    ++r_.send_errors;  // a full buffer is a lost datagram: retransmission covers it
}

void engine::send_to_server(uint32_t n, const uint8_t* data, size_t len) {
  send_to(n, data, len, server_);
}

void engine::handle(uint32_t n, const uint8_t* data, size_t len, const sockaddr_in& src,
                    int64_t now) {
  coap::message m;
  auto err = coap::decode(data, len, m);
  if (err != coap::decode_error::ok) {
    ++r_.decode_errors;
    // A malformed CON is rejected with RST (RFC 7252 §4.2) when its header is readable.
    if (len >= 4 && data[0] >> 6 == 1 && m.type == coap::msg_type::con) {
      uint8_t rst[4];
      send_to(n, rst, coap::encode_empty(coap::msg_type::rst, m.mid, rst), src);
    }
    return;
  }
  bool from_server = src.sin_addr.s_addr == server_.sin_addr.s_addr
                     && src.sin_port == server_.sin_port;
  switch (m.type) {
    case coap::msg_type::ack: {
      uint32_t slot = from_server ? find_by_mid(n, m.mid) : none;
      if (slot == none) {
        ++r_.unexpected;  // a late or duplicated ACK
        return;
      }
      auto& e = ex_[slot];
      if (m.code == coap::code::empty) {
        if (!e.acked) {
          e.acked = true;
          e.deadline = now + to_ns(cfg_.separate_timeout);
          timers_.push(e.deadline, slot, e.gen, t_exchange);
        }
        return;
      }
      if (!coap::is_response(m.code) || m.token_length != 8
          || get_be32(m.token) != slot || get_be32(m.token + 4) != e.gen) {
        ++r_.unexpected;
        return;
      }
      complete(slot, m, now);
      return;
    }
    case coap::msg_type::rst: {
      uint32_t slot = from_server ? find_by_mid(n, m.mid) : none;
      if (slot == none)
        return;
      ++r_.rst;
      auto kind = ex_[slot].kind;
      finish_exchange(slot);
      if (kind == ex_kind::reg)
        registration_done(n, false, now);
      else if (kind == ex_kind::report)
        report_answered(n, 0, 1, true, now);
      else if (kind == ex_kind::load)
        load_answered(n, 0, 0, now);
      return;
    }
    case coap::msg_type::con:
    case coap::msg_type::non:
      if (m.code == coap::code::empty) {
        uint8_t rst[4];  // CoAP ping
        send_to(n, rst, coap::encode_empty(coap::msg_type::rst, m.mid, rst), src);
        return;
      }
      if (coap::is_request(m.code)) {
        handle_request(n, m, src, now);
        return;
      }
      if (coap::is_response(m.code)) {
        // A separate response: acknowledge it (again, if it is a retransmission).
        if (m.type == coap::msg_type::con) {
          uint8_t ack[4];
          send_to(n, ack, coap::encode_empty(coap::msg_type::ack, m.mid, ack), src);
        }
        if (from_server && m.token_length == 8) {
          uint32_t slot = get_be32(m.token);
          if (slot < ex_.size() && ex_[slot].live && ex_[slot].node == n
              && ex_[slot].gen == get_be32(m.token + 4)) {
            complete(slot, m, now);
            return;
          }
        }
        ++r_.unexpected;
        return;
      }
      ++r_.unexpected;
      return;
  }
}

void engine::handle_request(uint32_t n, const coap::message& m, const sockaddr_in& src,
                            int64_t now) {
  auto& nd = nodes_[n];
  bool con = m.type == coap::msg_type::con;
  uint32_t sip = ntohl(src.sin_addr.s_addr);
  uint16_t sport = ntohs(src.sin_port);
  if (con) {
    for (auto& s : nd.seen) {
      if (s.len && s.mid == m.mid && s.src_ip == sip && s.src_port == sport
          && now - s.at < exchange_lifetime) {
        ++r_.notification_duplicates;
        send_to(n, s.reply, s.len, src);
        return;
      }
    }
  }
  uint8_t code = coap::code::not_found;
  std::string job_id;
  if (m.path_is("updates/available")) {
    if (m.code != coap::code::post) {
      code = coap::code::method_not_allowed;
    } else {
      auto d = model::decode_update_notification(m.payload_text());
      if (d.ok()) {
        code = coap::code::changed;
        job_id = d.value.job_id;
        ++r_.notifications;
      } else {
        code = coap::code::bad_request;
        ++r_.notification_rejected;
      }
    }
  }
  uint8_t reply[16];
  coap::writer w(reply, sizeof reply);
  w.header(con ? coap::msg_type::ack : coap::msg_type::non, code,
           con ? m.mid : nd.next_mid++, m.token, m.token_length);
  if (con) {
    auto& s = nd.seen[nd.seen_next++ % 4];
    s.src_ip = sip;
    s.src_port = sport;
    s.mid = m.mid;
    s.at = now;
    s.len = static_cast<uint8_t>(w.size());
    std::memcpy(s.reply, reply, w.size());
  }
  send_to(n, reply, w.size(), src);
  // The answer leaves before the first step report.
  if (!job_id.empty())
    accept_job(n, job_id, now);
}

// -- exchanges -------------------------------------------------------------------------

int64_t engine::jitter_timeout() {
  return to_ns(initial_timeout(cfg_, rng_.uniform()));
}

uint32_t engine::start_exchange(uint32_t n, ex_kind kind, uint8_t method, const char* path,
                                const char* body, size_t body_len, int64_t now) {
  uint32_t slot;
  if (free_ex_ != none) {
    slot = free_ex_;
    free_ex_ = ex_[slot].next;
  } else {
    slot = static_cast<uint32_t>(ex_.size());
    ex_.emplace_back();
  }
  auto& e = ex_[slot];
  auto& nd = nodes_[n];
  e.node = n;
  e.gen = gen_++;
  if (gen_ == 0)
    gen_ = 1;
  e.kind = kind;
  e.mid = nd.next_mid++;
  e.retransmits = 0;
  e.acked = false;
  e.live = true;
  uint8_t token[8];
  put_be32(token, slot);
  put_be32(token + 4, e.gen);
  e.dgram.resize(64 + std::strlen(path) + body_len);
  coap::writer w(e.dgram.data(), e.dgram.size());
  w.header(coap::msg_type::con, method, e.mid, token, sizeof token);
  w.uri_path(path);
  if (body_len)
    w.uint_option(coap::option::content_format, coap::format::json);
  w.payload(body, body_len);
  e.dgram.resize(w.size());
  e.next = nd.first_ex;
  nd.first_ex = slot;
  ++live_ex_;
  if (kind == ex_kind::load) {
    ++nd.inflight;
    ++live_load_;
  }
  e.timeout = jitter_timeout();
  e.first_sent = mono_ns();
  (void)now;
  e.deadline = e.first_sent + e.timeout;
  timers_.push(e.deadline, slot, e.gen, t_exchange);
  send_to_server(n, e.dgram.data(), e.dgram.size());
  return slot;
}

uint32_t engine::find_by_mid(uint32_t n, uint16_t mid) const {
  for (uint32_t s = nodes_[n].first_ex; s != none; s = ex_[s].next)
    if (ex_[s].mid == mid)
      return s;
  return none;
}

void engine::finish_exchange(uint32_t slot) {
  auto& e = ex_[slot];
  auto& nd = nodes_[e.node];
  for (uint32_t* p = &nd.first_ex; *p != none; p = &ex_[*p].next) {
    if (*p == slot) {
      *p = e.next;
      break;
    }
  }
  if (nd.health_ex == slot)
    nd.health_ex = none;
  if (nd.report_ex == slot)
    nd.report_ex = none;
  if (nd.reg_ex == slot)
    nd.reg_ex = none;
  if (e.kind == ex_kind::load) {
    --nd.inflight;
    --live_load_;
  }
  e.live = false;
  --live_ex_;
  e.next = free_ex_;
  free_ex_ = slot;
}

void engine::complete(uint32_t slot, const coap::message& m, int64_t now) {
  auto& e = ex_[slot];
  uint32_t n = e.node;
  auto kind = e.kind;
  uint64_t micros = static_cast<uint64_t>(std::max<int64_t>(0, now - e.first_sent) / 1000);
  uint8_t code = m.code;
  uint32_t max_age = m.uint_option(coap::option::max_age, 60);
  finish_exchange(slot);
  switch (kind) {
    case ex_kind::reg:
      r_.register_latency.record(micros);
      r_.register_codes.add(code);
      if (cfg_.mode == sim_mode::fleet)
        r_.codes.add(code);
      registration_done(n, code_ok(code), now);
      break;
    case ex_kind::health:
      r_.latency.record(micros);
      r_.codes.add(code);
      ++r_.health_answered;
      ++r_.answered;
      if (code == coap::code::not_found && nodes_[n].state == registered) {
        nodes_[n].state = unregistered;
        --r_.registered;
        ++r_.reregistrations;
        queue_registration(n);
      }
      break;
    case ex_kind::report:
      r_.report_latency.record(micros);
      r_.codes.add(code);
      ++r_.reports_answered;
      report_answered(n, code, max_age, false, now);
      break;
    case ex_kind::load:
      r_.latency.record(micros);
      r_.codes.add(code);
      ++r_.answered;
      if (now <= window_end_)
        ++r_.answered_in_window;
      load_answered(n, code, max_age, now);
      break;
  }
}

void engine::exchange_timer(uint32_t slot, int64_t now) {
  auto& e = ex_[slot];
  if (e.acked || e.retransmits >= cfg_.max_retransmit) {
    give_up(slot, now);
    return;
  }
  ++e.retransmits;
  ++r_.retransmissions;
  e.timeout *= 2;
  e.deadline = now + e.timeout;
  timers_.push(e.deadline, slot, e.gen, t_exchange);
  send_to_server(e.node, e.dgram.data(), e.dgram.size());
}

void engine::give_up(uint32_t slot, int64_t now) {
  uint32_t n = ex_[slot].node;
  auto kind = ex_[slot].kind;
  finish_exchange(slot);
  switch (kind) {
    case ex_kind::reg:
      registration_done(n, false, now);
      break;
    case ex_kind::health:
      ++r_.lost;
      break;
    case ex_kind::report:
      ++r_.lost;
      report_answered(n, 0, 1, true, now);
      break;
    case ex_kind::load:
      ++r_.lost;
      load_answered(n, 0, 0, now);
      break;
  }
}

// -- registration --------------------------------------------------------------------------

void engine::queue_registration(uint32_t n) {
  auto& nd = nodes_[n];
  if (nd.queued || nd.state != unregistered || nd.reg_at != 0)
    return;
  nd.queued = true;
  reg_queue_.push_back(n);
}

void engine::pump_registrations(int64_t now) {
  while (!draining_ && !stopping_ && reg_inflight_ < cfg_.register_window
         && !reg_queue_.empty()) {
    uint32_t n = reg_queue_.front();
    reg_queue_.pop_front();
    nodes_[n].queued = false;
    send_registration(n, now);
  }
}

void engine::send_registration(uint32_t n, int64_t now) {
  auto& nd = nodes_[n];
  auto body = registration_body(nd.id, format_ipv4(nd.ip), cfg_.node_port, cfg_.services, n);
  nd.state = registering;
  ++reg_inflight_;
  nd.reg_ex = start_exchange(n, ex_kind::reg, coap::code::post, "nodes", body.data(),
                             body.size(), now);
}

void engine::registration_done(uint32_t n, bool ok, int64_t now) {
  auto& nd = nodes_[n];
  if (reg_inflight_ > 0)
    --reg_inflight_;
  if (ok) {
    nd.state = registered;
    nd.reg_tries = 0;
    ++r_.registered;
    ++r_.registrations;
    if (cfg_.mode == sim_mode::fleet)
      schedule_health(n, now);
    return;
  }
  nd.state = unregistered;
  ++r_.register_failures;
  ++nd.reg_tries;
  if (cfg_.mode == sim_mode::load && nd.reg_tries >= 3)
    return;  // given up: load goes on without it
  // Back off 1, 2, 4 ... s (at most --interval, at most 30 s), jittered.
  double wait = std::min({std::ldexp(1.0, std::min<int>(nd.reg_tries, 5) - 1),
                          std::max(1.0, cfg_.interval), 30.0});
  nd.reg_at = now + to_ns(wait * rng_.uniform(0.5, 1.0));
  timers_.push(nd.reg_at, n, 0, t_register);
}

bool engine::all_registered_or_failed() const {
  if (r_.registered >= cfg_.nodes)
    return true;
  if (!reg_queue_.empty() || reg_inflight_ > 0)
    return false;
  for (auto& nd : nodes_)
    if (nd.state != registered && (nd.reg_at != 0 || nd.reg_tries < 3))
      return false;
  return true;
}

// -- health (fleet) ------------------------------------------------------------------------

const char* engine::timestamp_now() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  if (ts.tv_sec != ts_second_) {
    ts_second_ = ts.tv_sec;
    auto s = iso_time(ts.tv_sec);
    std::snprintf(ts_, sizeof ts_, "%s", s.c_str());
  }
  return ts_;
}

size_t engine::health_body(uint32_t n, char* buf, size_t cap, int64_t now) {
  auto& nd = nodes_[n];
  double dt = nd.body_at == INT64_MIN ? 0 : static_cast<double>(now - nd.body_at) / 1e9;
  nd.body_at = now;
  nd.walk.step(rng_, dt, cfg_.unhealthy_rate);
  return format_health(buf, cap, nd.id, nd.walk, cfg_.services, timestamp_now());
}

void engine::schedule_health(uint32_t n, int64_t now) {
  auto& nd = nodes_[n];
  if (nd.tick_at != 0)
    return;  // already ticking (a re-registration)
  int64_t period = std::max<int64_t>(1, to_ns(cfg_.interval));
  int64_t phase = static_cast<int64_t>(static_cast<double>(period) * n / cfg_.nodes);
  int64_t first = fleet_start_ + phase;
  if (first <= now)
    first += ((now - first) / period + 1) * period;
  nd.tick_at = first;
  timers_.push(first, n, 0, t_health);
}

void engine::health_tick(uint32_t n, int64_t now) {
  auto& nd = nodes_[n];
  int64_t period = std::max<int64_t>(1, to_ns(cfg_.interval));
  nd.tick_at += period;
  if (nd.tick_at <= now)  // fell behind (a stalled loop): skip missed ticks
    nd.tick_at += ((now - nd.tick_at) / period + 1) * period;
  timers_.push(nd.tick_at, n, 0, t_health);
  if (draining_ || stopping_)
    return;
  if (nd.state != registered || nd.health_ex != none) {
    ++r_.health_skipped;
    return;
  }
  send_health(n, now);
}

void engine::send_health(uint32_t n, int64_t now) {
  char buf[max_body];
  size_t len = health_body(n, buf, sizeof buf, now);
  if (len == 0)
    return;
  nodes_[n].health_ex = start_exchange(n, ex_kind::health, coap::code::put, "health", buf, len,
                                       now);
  ++r_.health_sent;
  ++r_.sent;
}

// -- jobs (fleet) ------------------------------------------------------------------------

void engine::accept_job(uint32_t n, const std::string& job_id, int64_t now) {
  auto& nd = nodes_[n];
  if (cfg_.mode != sim_mode::fleet)
    return;
  for (auto& j : nd.jobs)
    if (j.id == job_id) {
      ++r_.notification_duplicates;
      return;
    }
  for (auto& d : nd.done)
    if (d == job_id) {
      ++r_.notification_duplicates;
      return;
    }
  job j;
  j.id = job_id;
  j.fail = rng_.chance(cfg_.fail_rate);
  nd.jobs.push_back(std::move(j));
  if (nd.jobs.size() == 1)
    start_next_job(n, now);
}

namespace {
/// When each step's report is due, as a fraction of the install time.
constexpr double step_at[3] = {0.1, 0.5, 1.0};
}  // namespace

void engine::start_next_job(uint32_t n, int64_t now) {
  auto& nd = nodes_[n];
  if (nd.jobs.empty() || draining_)
    return;
  auto& j = nd.jobs.front();
  j.started = now;
  j.install = to_ns(cfg_.install_seconds * rng_.uniform(0.75, 1.25));
  j.step = 0;
  j.tries = 0;
  nd.job_at = now + static_cast<int64_t>(static_cast<double>(j.install) * step_at[0]);
  timers_.push(nd.job_at, n, 0, t_job);
}

void engine::job_timer(uint32_t n, int64_t now) {
  auto& nd = nodes_[n];
  nd.job_at = 0;
  if (nd.jobs.empty() || nd.report_ex != none || draining_)
    return;
  send_report(n, now);
}

void engine::send_report(uint32_t n, int64_t now) {
  auto& nd = nodes_[n];
  auto& j = nd.jobs.front();
  using st = model::node_update_state;
  std::string body;
  if (j.step == 0)
    body = report_body(j.id, nd.id, st::downloading, 0, -1, {});
  else if (j.step == 1)
    body = report_body(j.id, nd.id, st::installing, 50, -1, {});
  else if (j.fail)
    body = report_body(j.id, nd.id, st::failed, -1, 8,
                       "simulated failure: install command exited with code 1");
  else
    body = report_body(j.id, nd.id, st::succeeded, 100, 1, {});
  nd.report_ex = start_exchange(n, ex_kind::report, coap::code::post, "updates", body.data(),
                                body.size(), now);
  ++r_.reports_sent;
}

void engine::report_answered(uint32_t n, uint8_t code, uint32_t max_age, bool lost,
                             int64_t now) {
  auto& nd = nodes_[n];
  if (nd.jobs.empty())
    return;
  auto& j = nd.jobs.front();
  if (!lost && code_ok(code)) {
    ++j.step;
    j.tries = 0;
    if (j.step > 2) {
      finish_job(n, false);
      start_next_job(n, now);
      return;
    }
    int64_t due = j.started + static_cast<int64_t>(static_cast<double>(j.install)
                                                   * step_at[j.step]);
    if (due <= now) {
      send_report(n, now);
    } else {
      nd.job_at = due;
      timers_.push(due, n, 0, t_job);
    }
    return;
  }
  bool retry = lost || code >> 5 == 5;
  if (retry && ++j.tries < 5) {
    double wait = lost ? 1.0 : std::min<double>(max_age, 5.0);
    nd.job_at = now + to_ns(std::max(0.1, wait) * rng_.uniform(0.5, 1.0));
    timers_.push(nd.job_at, n, 0, t_job);
    return;
  }
  finish_job(n, true);  // refused (4.xx) or never taken
  start_next_job(n, now);
}

void engine::finish_job(uint32_t n, bool abandoned) {
  auto& nd = nodes_[n];
  auto& j = nd.jobs.front();
  if (abandoned)
    ++r_.jobs_abandoned;
  else if (j.fail)
    ++r_.jobs_failed;
  else
    ++r_.jobs_succeeded;
  nd.done.push_back(j.id);
  if (nd.done.size() > 8)
    nd.done.erase(nd.done.begin());
  nd.jobs.erase(nd.jobs.begin());
}

// -- load --------------------------------------------------------------------------------

void engine::send_load(uint32_t n, int64_t now) {
  auto& nd = nodes_[n];
  if (now - nd.body_at > second || nd.body.empty()) {
    char buf[max_body];
    size_t len = health_body(n, buf, sizeof buf, now);
    nd.body.assign(buf, len);
  }
  start_exchange(n, ex_kind::load, coap::code::put, cfg_.path.c_str(), nd.body.data(),
                 nd.body.size(), now);
  ++r_.sent;
  ++issued_;
}

void engine::load_answered(uint32_t n, uint8_t code, uint32_t max_age, int64_t now) {
  auto& nd = nodes_[n];
  if (!load_running_ || draining_)
    return;
  if (code == coap::code::service_unavailable && !nd.paused) {
    // Shed: this node waits Max-Age (RFC 7252 5.9.3.4; at most 10 s here),
    // spread over up to half as much again so that refused nodes do not
    // all come back at once, then goes on.
    ++r_.backoffs;
    nd.paused = true;
    double wait = std::min(10.0, std::max<double>(0.05, max_age));
    nd.resume_at = now + to_ns(wait * rng_.uniform(1.0, 1.5));
    timers_.push(nd.resume_at, n, 0, t_resume);
    return;
  }
  if (nd.paused)
    return;
  if (cfg_.rate > 0) {
    ready_.push_back(n);
  } else if (cfg_.window > 0) {
    ready_.push_back(n);
    fill_window(now);
  } else if (nd.inflight < cfg_.inflight) {
    send_load(n, now);
  }
}

void engine::fill_window(int64_t now) {
  // Nodes take turns (FIFO), so every address keeps being used.
  while (live_load_ < cfg_.window && !ready_.empty()) {
    uint32_t n = ready_.front();
    ready_.pop_front();
    if (nodes_[n].paused || nodes_[n].inflight >= cfg_.inflight)
      continue;
    send_load(n, now);
  }
}

void engine::pace(int64_t now) {
  if (!load_running_ || draining_ || cfg_.rate <= 0 || now >= window_end_)
    return;
  auto due = static_cast<uint64_t>(static_cast<double>(now - window_start_) * cfg_.rate / 1e9);
  while (issued_ < due) {
    if (ready_.empty()) {
      r_.rate_misses += due - issued_;
      issued_ = due;
      break;
    }
    uint32_t n = ready_.front();
    ready_.pop_front();
    if (nodes_[n].paused || nodes_[n].inflight >= cfg_.inflight)
      continue;
    if (cfg_.window > 0 && live_load_ >= cfg_.window) {
      ready_.push_front(n);
      r_.rate_misses += due - issued_;
      issued_ = due;
      break;
    }
    send_load(n, now);
  }
}

bool engine::nothing_in_flight() const { return live_ex_ == 0; }
bool engine::load_drained() const { return live_load_ == 0; }

// -- modes -------------------------------------------------------------------------------

void engine::drain(int64_t until, bool load_only) {
  draining_ = true;
  reg_queue_.clear();
  loop_until(until, load_only ? &engine::load_drained : &engine::nothing_in_flight);
}

void engine::progress_line(int64_t now) {
  double dt = static_cast<double>(now - last_line_at_) / 1e9;
  double rate = dt > 0 ? static_cast<double>(r_.health_answered - last_health_answered_) / dt
                       : 0;
  last_health_answered_ = r_.health_answered;
  last_line_at_ = now;
  next_line_ = now + to_ns(std::max(0.2, cfg_.report_every));
  if (!out_)
    return;
  size_t running = 0;
  for (auto& nd : nodes_)
    running += nd.jobs.empty() ? 0 : 1;
  std::fprintf(out_,
               "[%7.1fs] registered %u/%u  reports/s %.1f  answers %s  retrans %llu  lost %llu"
               "  jobs: notified %llu running %zu succeeded %llu failed %llu\n",
               static_cast<double>(now - start_) / 1e9, r_.registered, cfg_.nodes, rate,
               r_.codes.text().c_str(), static_cast<unsigned long long>(r_.retransmissions),
               static_cast<unsigned long long>(r_.lost),
               static_cast<unsigned long long>(r_.notifications), running,
               static_cast<unsigned long long>(r_.jobs_succeeded),
               static_cast<unsigned long long>(r_.jobs_failed + r_.jobs_abandoned));
  std::fflush(out_);
}

void engine::run_fleet() {
  int64_t now = mono_ns();
  fleet_start_ = now;
  last_line_at_ = now;
  next_line_ = now + to_ns(std::max(0.2, cfg_.report_every));
  fleet_running_ = true;
  for (uint32_t i = 0; i < cfg_.nodes; ++i)
    queue_registration(i);
  int64_t end = cfg_.duration > 0 ? now + to_ns(cfg_.duration) : INT64_MAX;
  loop_until(end, nullptr);
  now = mono_ns();
  progress_line(now);
  fleet_running_ = false;
  // Let what is in flight finish (at most 2 s; a second SIGINT ends it at once).
  drain(now + 2 * second, false);
  r_.unanswered_at_end = live_ex_;
}

void engine::register_all() {
  int64_t t0 = mono_ns();
  for (uint32_t i = 0; i < cfg_.nodes; ++i)
    queue_registration(i);
  // Bounded: every registration ends within ~93 s (all retransmissions) plus
  // the separate-response timeout, and is tried at most 3 times.
  int64_t deadline = t0 + to_ns(120 + cfg_.separate_timeout + cfg_.nodes / 500.0);
  loop_until(deadline, &engine::all_registered_or_failed);
  r_.register_seconds = static_cast<double>(mono_ns() - t0) / 1e9;
  reg_queue_.clear();
  if (out_)
    std::fprintf(out_, "registered %u/%u nodes in %.2f s (%llu failed attempts)\n",
                 r_.registered, cfg_.nodes, r_.register_seconds,
                 static_cast<unsigned long long>(r_.register_failures)),
      std::fflush(out_);
}

void engine::run_load() {
  if (cfg_.do_register) {
    register_all();
    if (stopping_)
      return;
  }
  int64_t now = mono_ns();
  window_start_ = now;
  window_end_ = now + to_ns(cfg_.duration);
  load_running_ = true;
  if (out_) {
    std::fprintf(out_, "load: %u nodes, %u in flight each%s, %s for %.1f s\n", cfg_.nodes,
                 cfg_.inflight,
                 cfg_.window > 0
                   ? (", at most " + std::to_string(cfg_.window) + " in all").c_str()
                   : "",
                 cfg_.rate > 0
                   ? ("paced at " + std::to_string(static_cast<long long>(cfg_.rate + 0.5))
                      + " req/s").c_str()
                   : "as fast as answered",
                 cfg_.duration);
    std::fflush(out_);
  }
  if (cfg_.rate > 0 || cfg_.window > 0) {
    for (unsigned k = 0; k < cfg_.inflight; ++k)
      for (uint32_t i = 0; i < cfg_.nodes; ++i)
        ready_.push_back(i);
    if (cfg_.rate <= 0)
      fill_window(mono_ns());
  } else {
    for (unsigned k = 0; k < cfg_.inflight; ++k)
      for (uint32_t i = 0; i < cfg_.nodes && !stopping_; ++i)
        send_load(i, mono_ns());
  }
  loop_until(window_end_, nullptr);
  now = mono_ns();
  r_.window_seconds = static_cast<double>(std::min(now, window_end_) - window_start_) / 1e9;
  if (stopping_)
    window_end_ = std::min(now, window_end_);
  load_running_ = false;
  drain(mono_ns() + to_ns(cfg_.drain), true);
  r_.unanswered_at_end = live_load_;
  r_.throughput = r_.window_seconds > 0
                    ? static_cast<double>(r_.answered_in_window) / r_.window_seconds
                    : 0;
}

run_result engine::run() {
  start_ = mono_ns();
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  if (cfg_.mode == sim_mode::fleet)
    run_fleet();
  else
    run_load();
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  auto secs = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  r_.cpu_seconds = secs(after.ru_utime) + secs(after.ru_stime) - secs(before.ru_utime)
                   - secs(before.ru_stime);
  r_.elapsed_seconds = static_cast<double>(mono_ns() - start_) / 1e9;
  return r_;
}

}  // namespace coapfleet::sim
