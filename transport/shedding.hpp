// When the server takes more health reports than it can absorb, it says so:
// PUT /health is answered 5.03 Service Unavailable with a Max-Age, telling
// the node to wait, instead of letting requests pile up in the actors'
// mailboxes (memory) or in the kernel's receive queue (where they wait, are
// dropped and come back as retransmissions). Pure policy, fed with gauges.
//
// Two gauges, two rules:
// - busy: for how long the transport has not found its sockets empty, i.e.
//   how long requests have been waiting in the kernel for it. (A time, not
//   the queue's bytes: Linux accounts a UDP queue's memory in chunks of a
//   quarter of the buffer, too coarse to steer by.) While it is over
//   `busy_high_ms` the refused share grows in steps, up to `max_share`;
//   while the sockets are found empty it falls by a step per `decay_ms`
//   that passed, so a quiet server refuses nothing. Refusing is cheaper
//   than storing, but not free, and a client that ignores Max-Age comes
//   straight back: the cap keeps most of the capacity for reports.
// - backlog: answered reports not yet taken by the persistence actor. Above
//   `backlog_high` every report is refused until it is down to half: this
//   bounds the memory the actors' mailboxes can take.
#pragma once

#include <algorithm>
#include <cstdint>

namespace coapfleet::transport {

struct shedding_config {
  int64_t busy_high_ms = 50;  ///< sockets not found empty for this long: overloaded
  int64_t decay_ms = 5;       ///< the share falls a step per this much calm
  double max_share = 0.5;     ///< at most this share refused
  double step = 0.05;         ///< share change per step
  uint64_t backlog_high = 4096;
  uint32_t max_age_s = 2;     ///< seconds a refused client is asked to wait
};

class shedder {
public:
  explicit shedder(shedding_config cfg = {})
    : cfg_(cfg), cap_(permille(cfg.max_share)), step_(std::max(1, permille(cfg.step))) {}

  /// A reading of the busy gauge (0: the sockets were found empty) and the
  /// milliseconds since the previous reading.
  void update_busy(int64_t busy_ms, int64_t elapsed_ms) {
    if (cfg_.busy_high_ms <= 0)  // this rule is off
      return;
    if (busy_ms >= cfg_.busy_high_ms) {
      share_ = std::min(cap_, share_ + step_);
    } else if (busy_ms == 0) {
      auto steps = std::max<int64_t>(1, elapsed_ms / std::max<int64_t>(1, cfg_.decay_ms));
      share_ = static_cast<int>(std::max<int64_t>(0, share_ - steps * step_));
      if (share_ == 0)
        credit_ = 0;
    }
  }
  void update_backlog(uint64_t backlog) {
    if (backlog_full_)
      backlog_full_ = backlog >= cfg_.backlog_high / 2;
    else
      backlog_full_ = backlog >= cfg_.backlog_high;
  }

  /// Decides one request: true when it is to be refused.
  bool refuse() {
    bool no = backlog_full_;
    if (!no && share_ > 0) {
      credit_ += share_;  // every (1000/share)-th request, evenly spread
      if (credit_ >= 1000) {
        credit_ -= 1000;
        no = true;
      }
    }
    no ? ++refused_ : ++admitted_;
    return no;
  }

  bool active() const { return backlog_full_ || share_ > 0; }
  bool backlog_full() const { return backlog_full_; }
  double share() const { return share_ / 1000.0; }
  uint64_t refused_total() const { return refused_; }
  uint64_t admitted_total() const { return admitted_; }
  const shedding_config& config() const { return cfg_; }

private:
  static int permille(double x) { return static_cast<int>(std::clamp(x, 0.0, 1.0) * 1000 + 0.5); }

  shedding_config cfg_;
  int cap_;
  int step_;
  int share_ = 0;   ///< refused share, per mille
  int credit_ = 0;
  bool backlog_full_ = false;
  uint64_t refused_ = 0;
  uint64_t admitted_ = 0;
};

}  // namespace coapfleet::transport
