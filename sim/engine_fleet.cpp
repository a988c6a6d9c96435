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
  std::string body;
  if (cfg_.mode == sim_mode::fleet) {
    auto inventory = inventory_of(n);
    body = registration_body(nd.id, format_ipv4(socks_[nd.sock].ip), cfg_.node_port,
                             cfg_.services, n, labels_of(n), &inventory);
  } else {
    body = registration_body(nd.id, format_ipv4(socks_[nd.sock].ip), cfg_.node_port,
                             cfg_.services, n);
  }
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

model::string_map engine::labels_of(uint32_t n) const {
  model::string_map out;
  for (auto& [key, values] : cfg_.labels)
    if (!values.empty())
      out.emplace_back(key, values[n % values.size()]);
  std::sort(out.begin(), out.end());
  return out;
}

model::string_map engine::inventory_of(uint32_t n) const {
  model::string_map out(cfg_.inventory.begin(), cfg_.inventory.end());
  for (auto& e : nodes_[n].installed) {
    auto i = std::find_if(out.begin(), out.end(), [&](auto& x) { return x.first == e.first; });
    if (i != out.end())
      i->second = e.second;
    else
      out.push_back(e);
  }
  std::sort(out.begin(), out.end());
  return out;
}

void engine::accept_job(uint32_t n, const std::string& job_id, uint32_t attempt,
                        const std::string& name, const std::string& version, int64_t now) {
  auto& nd = nodes_[n];
  if (cfg_.mode != sim_mode::fleet)
    return;
  auto key = model::run_key(job_id, attempt);
  for (auto& j : nd.jobs)
    if (model::run_key(j.id, j.attempt) == key) {
      ++r_.notification_duplicates;
      return;
    }
  for (auto& d : nd.done)
    if (d == key) {
      ++r_.notification_duplicates;
      return;
    }
  job j;
  j.id = job_id;
  j.name = name;
  j.version = version;
  auto roll = rng_.uniform(0.0, 1.0);
  j.attempt = attempt;
  j.fail = roll < cfg_.fail_rate;
  if (attempt == 1 && cfg_.fail_first > 0)  // evenly spread over node ids
    j.fail = j.fail
             || static_cast<uint64_t>((n + 1) * cfg_.fail_first)
                  > static_cast<uint64_t>(n * cfg_.fail_first);
  j.hang = !j.fail && roll < cfg_.fail_rate + cfg_.timeout_rate;
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
    body = report_body(j.id, nd.id, st::downloading, 0, -1, {}, nullptr, j.attempt);
  else if (j.step == 1)
    body = report_body(j.id, nd.id, st::installing, 50, -1, {}, nullptr, j.attempt);
  else if (j.fail)
    body = report_body(j.id, nd.id, st::failed, -1, 8,
                       "simulated failure: install command exited with code 1", nullptr,
                       j.attempt);
  else if (j.hang) {  // it never ends: no final report (the server times it out)
    ++r_.jobs_hung;
    nd.done.push_back(model::run_key(j.id, j.attempt));
    if (nd.done.size() > 8)
      nd.done.erase(nd.done.begin());
    nd.jobs.erase(nd.jobs.begin());
    start_next_job(n, now);
    return;
  } else {
    // What it installed joins its inventory, which the success carries.
    if (!j.name.empty()) {
      auto& inst = nd.installed;
      auto i = std::find_if(inst.begin(), inst.end(), [&](auto& x) { return x.first == j.name; });
      if (i != inst.end())
        i->second = j.version;
      else
        inst.emplace_back(j.name, j.version);
    }
    auto inventory = inventory_of(n);
    body = report_body(j.id, nd.id, st::succeeded, 100, 1, {}, &inventory, j.attempt);
  }
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
  // Like the agent's outbox: a report the server did not take (no answer;
  // 5.xx or 4.29: down, restarting, busy) is sent again until it is taken,
  // later each time (1, 2, 4, 8, then every 10 s; or the server's Max-Age,
  // 1 to 5 s).
  if (lost || code >> 5 == 5 || code == coap::code::too_many_requests) {
    if (j.tries < 255)
      ++j.tries;
    double wait = lost ? std::min(10.0, std::ldexp(1.0, std::min<int>(j.tries, 5) - 1))
                       : std::clamp<double>(max_age, 1.0, 5.0);
    nd.job_at = now + to_ns(wait * rng_.uniform(0.5, 1.0));
    timers_.push(nd.job_at, n, 0, t_job);
    return;
  }
  finish_job(n, true);  // refused (another 4.xx): it can never be taken
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
  nd.done.push_back(model::run_key(j.id, j.attempt));
  if (nd.done.size() > 8)
    nd.done.erase(nd.done.begin());
  nd.jobs.erase(nd.jobs.begin());
}

}  // namespace coapfleet::sim
