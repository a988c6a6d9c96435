// When the server takes more health reports than it can absorb, it says so:
// PUT /health is answered 5.03 Service Unavailable with a Max-Age, telling
// the node to wait, instead of letting requests pile up in the actors'
// mailboxes (memory) or in the kernel's receive queue (where they wait, are
// dropped and come back as retransmissions). Pure policy, fed with gauges.
//
// Two gauges, two rules:
// - backlog: answered reports not yet taken by the persistence actor. Above
//   `backlog_high` every report is refused until it is down to half: this
//   bounds the memory the actors' mailboxes can take.
// - receive queue: how full the listening socket's kernel buffer is. While it
//   is above `queue_high` the refused share grows (in steps, up to
//   `max_share`), below `queue_low` it shrinks. Refusing is cheaper than
//   storing, but not free, and a client that ignores Max-Age comes straight
//   back: the share is capped so that most of the capacity still goes to
//   reports that are stored.
#pragma once

#include <algorithm>
#include <cstdint>

namespace coapfleet::transport {

struct shedding_config {
  double queue_high = 0.25;  ///< receive queue fill (queued bytes / buffer) that means overload
  double queue_low = 0.05;   ///< and the fill below which it is over
  double max_share = 0.5;    ///< at most this share refused for a full queue
  double step = 0.05;        ///< share change per reading
  uint64_t backlog_high = 4096;
  uint32_t max_age_s = 2;    ///< seconds a refused client is asked to wait
};

class shedder {
public:
  explicit shedder(shedding_config cfg = {})
    : cfg_(cfg), cap_(permille(cfg.max_share)), step_(std::max(1, permille(cfg.step))) {}

  /// A new reading of the gauges (the queue fill is read every few requests).
  void update_queue(double queue_fill) {
    if (cfg_.queue_high >= 1.0)  // this rule is off
      return;
    if (queue_fill >= cfg_.queue_high)
      share_ = std::min(cap_, share_ + step_);
    else if (queue_fill < cfg_.queue_low)
      share_ = std::max(0, share_ - step_);
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
