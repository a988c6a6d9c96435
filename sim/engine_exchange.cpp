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
  e.mid = socks_[nd.sock].next_mid++;
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

uint32_t engine::find_on_socket(uint32_t j, uint16_t mid) const {
  auto end = std::min<uint64_t>(nodes_.size(), uint64_t{socks_[j].first_node} + cfg_.nodes_per_socket);
  for (uint32_t n = socks_[j].first_node; n < end; ++n) {
    auto slot = find_by_mid(n, mid);
    if (slot != none)
      return slot;
  }
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

void engine::fail_over(uint32_t n) {
  auto& nd = nodes_[n];
  nd.server = static_cast<uint8_t>((nd.server + 1) % servers_.size());
  ++r_.failovers;
  if (nd.state == registered) {  // the next server learns it first
    nd.state = unregistered;
    --r_.registered;
    ++r_.reregistrations;
    queue_registration(n);
  }
}

void engine::give_up(uint32_t slot, int64_t now) {
  uint32_t n = ex_[slot].node;
  auto kind = ex_[slot].kind;
  finish_exchange(slot);
  if (servers_.size() > 1)
    fail_over(n);
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

}  // namespace coapfleet::sim
