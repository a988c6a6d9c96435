// The fleet's state machines (see rules.hpp for the rules themselves).
#include "model/rules.hpp"

#include <algorithm>
#include <iterator>

namespace coapfleet::model {

node_status liveness(millis last_seen, millis now, millis stale_after, millis offline_after) {
  millis silent = now - last_seen;
  if (silent < stale_after)
    return node_status::online;
  if (silent < offline_after)
    return node_status::stale;
  return node_status::offline;
}

namespace {

/// Position in the forward chain pending → … → succeeded, or -1.
int chain_index(node_update_state s) {
  return s <= node_update_state::succeeded ? static_cast<int>(s) : -1;
}

bool server_only(node_update_state s) {
  return s == node_update_state::pending || s == node_update_state::timed_out
         || s == node_update_state::skipped;
}

}  // namespace

std::string check_transition(node_update_state from, node_update_state to) {
  if (server_only(to))
    return std::string{"status "} + to_string(to) + " is set by the server only";
  if (from == to)
    return {};
  if (is_terminal(from))
    return std::string{"node is already "} + to_string(from) + " and cannot become "
           + to_string(to);
  // From here on `from` is non-terminal, hence in the forward chain.
  if (to == node_update_state::failed || to == node_update_state::cancelled
      || to == node_update_state::rolled_back)
    return {};
  if (chain_index(to) > chain_index(from))
    return {};
  return std::string{"cannot go back from "} + to_string(from) + " to " + to_string(to);
}

job_counts count_states(const std::vector<node_job_state>& nodes) {
  job_counts c;
  c.total = static_cast<uint32_t>(nodes.size());
  for (auto& n : nodes) {
    auto i = static_cast<size_t>(n.state);
    if (i < std::size(c.by_state))
      ++c.by_state[i];
  }
  return c;
}

namespace {

int step_estimate(node_update_state s) {
  switch (s) {
    case node_update_state::notified: return 5;
    case node_update_state::downloading: return 25;
    case node_update_state::downloaded: return 50;
    case node_update_state::installing: return 75;
    default: return 0;
  }
}

}  // namespace

int job_progress(const std::vector<node_job_state>& nodes) {
  if (nodes.empty())
    return 0;
  int64_t sum = 0;
  for (auto& n : nodes) {
    if (is_terminal(n.state))
      sum += 100;
    else if (n.progress >= 0)
      sum += std::min(n.progress, 100);
    else
      sum += step_estimate(n.state);
  }
  // Rounded down: a job shows 100 only when every node got there.
  return static_cast<int>(sum / static_cast<int64_t>(nodes.size()));
}

job_status derive_job_status(job_status current, const job_counts& counts) {
  if (current == job_status::created || current == job_status::cancelled)
    return current;
  if (counts.total == 0 || counts.finished() < counts.total)
    return job_status::in_progress;
  auto succeeded = counts.of(node_update_state::succeeded);
  if (succeeded == counts.total)
    return job_status::completed;
  if (succeeded == 0)
    return job_status::failed;
  return job_status::partially_failed;
}

const char* fleet_status(uint32_t total, uint32_t online_and_healthy) {
  if (total == 0)
    return "unknown";
  if (online_and_healthy >= total)
    return "healthy";
  if (online_and_healthy == 0)
    return "unhealthy";
  return "degraded";
}

bool job_unsettled(const job_record& j) {
  if (j.status == job_status::in_progress)
    return true;
  if (j.status != job_status::cancelled)
    return false;
  for (auto& n : j.nodes)
    if (!is_terminal(n.state))
      return true;
  return false;
}

}  // namespace coapfleet::model
