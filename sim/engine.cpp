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
#include "sim/engine_internal.hpp"

namespace coapfleet::sim {

using namespace internal;

int64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}


engine::engine(config c, FILE* progress) : cfg_(std::move(c)), out_(progress), rng_(cfg_.seed) {
  r_.mode = cfg_.mode;
  r_.nodes = cfg_.nodes;
}

engine::~engine() {
  for (auto& s : socks_)
    if (s.fd >= 0)
      ::close(s.fd);
  for (int fd : {epoll_fd_, signal_fd_, stop_fd_})
    if (fd >= 0)
      ::close(fd);
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
    } else if (tag < socks_.size()) {
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

void engine::receive(uint32_t j) {
  alignas(8) uint8_t buf[2048];
  sockaddr_in src{};
  socklen_t sl = sizeof src;
  ssize_t len = ::recvfrom(socks_[j].fd, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC,
                           reinterpret_cast<sockaddr*>(&src), &sl);
  if (len < 0)
    return;
  int64_t now = mono_ns();
  ++r_.datagrams_in;
  if (static_cast<size_t>(len) > sizeof buf) {
    ++r_.decode_errors;  // larger than anything this protocol sends
    return;
  }
  handle(j, buf, static_cast<size_t>(len), src, now);
}

void engine::send_on(uint32_t j, const uint8_t* data, size_t len, const sockaddr_in& dst) {
  ++r_.datagrams_out;
  if (::sendto(socks_[j].fd, data, len, 0, reinterpret_cast<const sockaddr*>(&dst), sizeof dst)
      < 0)
    ++r_.send_errors;  // a full buffer is a lost datagram: retransmission covers it
}

void engine::send_to(uint32_t n, const uint8_t* data, size_t len, const sockaddr_in& dst) {
  send_on(nodes_[n].sock, data, len, dst);
}

void engine::send_to_server(uint32_t n, const uint8_t* data, size_t len) {
  send_to(n, data, len, servers_.size() > 1 ? servers_[nodes_[n].server] : server_);
}

void engine::handle(uint32_t j, const uint8_t* data, size_t len, const sockaddr_in& src,
                    int64_t now) {
  coap::message m;
  auto err = coap::decode(data, len, m);
  if (err != coap::decode_error::ok) {
    ++r_.decode_errors;
    // A malformed CON is rejected with RST (RFC 7252 §4.2) when its header is readable.
    if (len >= 4 && data[0] >> 6 == 1 && m.type == coap::msg_type::con) {
      uint8_t rst[4];
      send_on(j, rst, coap::encode_empty(coap::msg_type::rst, m.mid, rst), src);
    }
    return;
  }
  bool from_server = false;
  for (auto& sv : servers_)
    from_server = from_server
                  || (src.sin_addr.s_addr == sv.sin_addr.s_addr && src.sin_port == sv.sin_port);
  switch (m.type) {
    case coap::msg_type::ack: {
      uint32_t slot = from_server ? find_on_socket(j, m.mid) : none;
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
      uint32_t slot = from_server ? find_on_socket(j, m.mid) : none;
      if (slot == none)
        return;
      ++r_.rst;
      auto kind = ex_[slot].kind;
      auto n = ex_[slot].node;
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
        send_on(j, rst, coap::encode_empty(coap::msg_type::rst, m.mid, rst), src);
        return;
      }
      if (coap::is_request(m.code)) {
        handle_request(j, m, src, now);
        return;
      }
      if (coap::is_response(m.code)) {
        // A separate response: acknowledge it (again, if it is a retransmission).
        if (m.type == coap::msg_type::con) {
          uint8_t ack[4];
          send_on(j, ack, coap::encode_empty(coap::msg_type::ack, m.mid, ack), src);
        }
        if (from_server && m.token_length == 8) {
          uint32_t slot = get_be32(m.token);
          if (slot < ex_.size() && ex_[slot].live && nodes_[ex_[slot].node].sock == j
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

uint32_t engine::addressee(uint32_t j, const coap::message& m) const {
  auto& s = socks_[j];
  if (cfg_.nodes_per_socket == 1 || !m.path_is("updates/available"))
    return s.first_node;
  // Shared: the node the notification names (ids are PREFIX + index + 1);
  // one that names none is refused by the first node's handler (4.00).
  auto d = model::decode_update_notification(m.payload_text());
  if (!d.ok())
    return s.first_node;
  if (d.value.node_id.compare(0, cfg_.id_prefix.size(), cfg_.id_prefix) != 0)
    return none;
  auto digits = d.value.node_id.substr(cfg_.id_prefix.size());
  if (digits.empty() || digits.size() > 7
      || digits.find_first_not_of("0123456789") != std::string::npos)
    return none;
  auto index = static_cast<uint32_t>(std::stoul(digits));
  if (index == 0 || index > nodes_.size() || nodes_[index - 1].sock != j
      || nodes_[index - 1].id != d.value.node_id)
    return none;
  return index - 1;
}

void engine::handle_request(uint32_t j, const coap::message& m, const sockaddr_in& src,
                            int64_t now) {
  bool con = m.type == coap::msg_type::con;
  uint32_t n = addressee(j, m);
  if (n == none) {
    // None of this socket's nodes: 4.04, as an agent answers another node's notification.
    uint8_t reply[16];
    coap::writer w(reply, sizeof reply);
    w.header(con ? coap::msg_type::ack : coap::msg_type::non, coap::code::not_found,
             con ? m.mid : socks_[j].next_mid++, m.token, m.token_length);
    ++r_.notification_rejected;
    send_on(j, reply, w.size(), src);
    return;
  }
  auto& nd = nodes_[n];
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
  std::string job_id, job_name, job_version;
  uint32_t job_attempt = 1;
  if (m.path_is("updates/available")) {
    if (m.code != coap::code::post) {
      code = coap::code::method_not_allowed;
    } else {
      auto d = model::decode_update_notification(m.payload_text());
      if (d.ok()) {
        code = coap::code::changed;
        if (!d.value.cancel) {  // a cancel is taken (the node runs on; nothing is queued twice)
          job_id = d.value.job_id;
          job_name = d.value.name;
          job_version = d.value.version;
          job_attempt = d.value.attempt;
        }
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
           con ? m.mid : socks_[j].next_mid++, m.token, m.token_length);
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
    accept_job(n, job_id, job_attempt, job_name, job_version, now);
}

}  // namespace coapfleet::sim
