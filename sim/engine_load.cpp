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

// -- load --------------------------------------------------------------------------------

void engine::send_load(uint32_t n, int64_t now) {
  auto& nd = nodes_[n];
  // Empty first: before the first body, body_at is INT64_MIN and `now - body_at`
  // would overflow.
  if (nd.body.empty() || now - nd.body_at > second) {
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
  uint32_t on_time = cfg_.nodes - cfg_.late_nodes;
  for (uint32_t i = 0; i < on_time; ++i)
    queue_registration(i);
  for (uint32_t i = on_time; i < cfg_.nodes; ++i) {  // late joiners
    nodes_[i].reg_at = now + to_ns(cfg_.late_after);
    timers_.push(nodes_[i].reg_at, i, 0, t_register);
  }
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
