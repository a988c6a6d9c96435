// When the server takes more health reports than it can absorb, it says so:
// PUT /health is answered 5.03 Service Unavailable with a Max-Age, telling
// the node to wait, instead of letting requests pile up in the actors'
// mailboxes (memory) or in the kernel's receive queue (where they wait, are
// dropped and come back as retransmissions). Pure policy, fed with gauges.
//
// Two rules:
// - the socket: requests are waiting in the kernel when the transport has
//   not found its sockets empty for `busy_high_ms` AND the receive queue
//   reads at least `fill_high` of its buffer. Either alone misleads: a
//   saturating closed loop of a few hundred clients keeps the socket busy
//   forever with a few milliseconds of queue, and Linux accounts a UDP
//   queue's memory in chunks of a quarter of the buffer, so a byte count
//   alone reads up to 25% high. While both hold, the refused share grows
//   in steps, up to `max_share`; when the sockets are found empty, or the
//   queue is below `fill_low`, it falls a step per `decay_ms` that passed,
//   so a quiet server refuses nothing. Refusing is cheaper than storing,
//   but not free, and a client that ignores Max-Age comes straight back:
//   the cap keeps most of the capacity for reports.
// - backlog: answered reports not yet taken by the persistence actor. Above
//   `backlog_high` every report is refused until it is down to half: this
//   bounds the memory the actors' mailboxes can take.
#pragma once

#include <algorithm>
#include <cstdint>

namespace coapfleet::transport {

struct shedding_config {
  int64_t busy_high_ms = 50;  ///< sockets not found empty for this long ...
  /// ... with this much of the receive buffer queued: overloaded. Linux
  /// counts in quarters of the buffer, so 0.75 reads "more than half": at
  /// 80% of capacity a commit of the health batch or a burst of the paced
  /// senders keeps the socket busy for ~300 ms with readings of 0.5, and the
  /// queue drains; under a real overload it grows on to a full buffer.
  double fill_high = 0.75;
  double fill_low = 0.25;     ///< less queued than this: not
  int64_t decay_ms = 5;       ///< the share falls a step per this much calm
  double max_share = 0.5;     ///< at most this share refused
  double step = 0.05;         ///< share change per step
  /// One health commit of 10,000 nodes takes ~150 ms, while reports keep
  /// coming at ~30,000/s: at 4,096 a fleet of 10,000 peers at 80% of
  /// capacity was refused thousands of reports. 32,768 reports in the
  /// mailboxes are ~15 MB.
  uint64_t backlog_high = 32768;
  uint32_t max_age_s = 2;     ///< seconds a refused client is asked to wait
};

class shedder {
public:
  explicit shedder(shedding_config cfg = {})
    : cfg_(cfg), cap_(permille(cfg.max_share)), step_(std::max(1, permille(cfg.step))) {}

  /// A reading of the socket gauges: `busy_ms` (0: the sockets were found
  /// empty), the queue's `fill` (queued bytes / buffer), and the
  /// milliseconds since the previous reading.
  void update_socket(int64_t busy_ms, double fill, int64_t elapsed_ms) {
    if (cfg_.busy_high_ms <= 0)  // this rule is off
      return;
    if (busy_ms >= cfg_.busy_high_ms && fill >= cfg_.fill_high) {
      share_ = std::min(cap_, share_ + step_);
    } else if (busy_ms == 0 || fill < cfg_.fill_low) {
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
