// A min-heap of deadlines with lazy cancellation: an entry names its owner
// (id, generation) and the deadline it was pushed for; the owner keeps its
// current deadline, and a popped entry that no longer matches is dropped.
#pragma once

#include <cstdint>
#include <queue>
#include <vector>

namespace coapfleet::sim {

struct timer_entry {
  int64_t at = 0;      ///< CLOCK_MONOTONIC nanoseconds
  uint32_t id = 0;     ///< exchange slot or node index
  uint32_t gen = 0;    ///< exchange generation (0 for node timers)
  uint8_t what = 0;    ///< which timer of the owner
  friend bool operator>(const timer_entry& a, const timer_entry& b) { return a.at > b.at; }
};

class timer_queue {
public:
  void push(int64_t at, uint32_t id, uint32_t gen, uint8_t what) {
    heap_.push(timer_entry{at, id, gen, what});
  }
  bool empty() const { return heap_.empty(); }
  size_t size() const { return heap_.size(); }
  /// Deadline of the earliest entry (INT64_MAX when empty).
  int64_t next() const { return heap_.empty() ? INT64_MAX : heap_.top().at; }
  /// Pops the earliest entry if it is due at `now`.
  bool pop_due(int64_t now, timer_entry& out) {
    if (heap_.empty() || heap_.top().at > now)
      return false;
    out = heap_.top();
    heap_.pop();
    return true;
  }

private:
  std::priority_queue<timer_entry, std::vector<timer_entry>, std::greater<timer_entry>> heap_;
};

}  // namespace coapfleet::sim
