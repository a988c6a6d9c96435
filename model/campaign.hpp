// Campaigns: how a job's nodes are started over time. Waves (cumulative
// percentages of the targets), thresholds that pause a campaign or hold the
// next wave, a soak time between waves, a cap on nodes installing at once,
// automatic retries with backoff and a daily maintenance window. Pure
// functions of a job record and the time: the job actor asks what to do and
// does it (actors/server/job_campaign.cpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/types.hpp"

namespace coapfleet::model {

/// A daily window in minutes since 00:00 UTC; `from` == `to` never.
/// When from > to it crosses midnight ("22:00-02:00").
struct daily_window {
  int32_t from = 0;
  int32_t to = 0;
};

/// "HH:MM-HH:MM" (00:00..23:59 each, two different times).
std::optional<daily_window> parse_window(std::string_view text);
bool in_window(const daily_window& w, millis now);
/// The next time the window opens after `now` (now itself when it is open).
millis window_opens(const daily_window& w, millis now);

/// Assigns each node (in the vector's order: node id order) to its wave:
/// wave i holds the nodes up to ceil(waves[i]% of them). Without waves every
/// node is in wave 0.
void assign_waves(std::vector<node_job_state>& nodes, const std::vector<int32_t>& waves);

/// The wave a node that joins a running campaign belongs to: the one after
/// the newest started, or the last.
int32_t late_wave(const job_record& j);

/// One wave as a job's status shows it.
struct wave_summary {
  int32_t index = 0;
  int32_t percent = 100;  ///< cumulative, as the spec says
  uint32_t nodes = 0, started = 0, succeeded = 0, failed = 0, finished = 0;
  /// "waiting" (not started), "running", "succeeded" (its success condition
  /// met), "failed" (every node finished, the condition not met), "empty"
  /// (fewer targets than waves).
  std::string state;
};
std::vector<wave_summary> summarize_waves(const job_record& j);

/// Whether node `n` failed (or timed out) and gets an automatic retry
/// (scheduled, or attempts left under the spec's `retries`).
bool awaits_retry(const job_spec& spec, const node_job_state& n);
/// Failed or timed out with no automatic retry ahead.
bool failed_for_good(const job_spec& spec, const node_job_state& n);

/// What a campaign does next, from its record at `now`.
struct campaign_plan {
  campaign_state next;                   ///< the campaign's state after the plan
  std::vector<std::string> start;        ///< nodes whose first attempt starts now
  std::vector<std::string> retry;        ///< failed nodes whose automatic retry starts now
  /// Failed nodes that get an automatic retry: (node, when).
  std::vector<std::pair<std::string, millis>> schedule_retry;
  millis wake_at = 0;  ///< ask again then (soak end, window, a retry); 0: on the next change
  bool changes() const;  ///< anything to do or write
  bool changed_state = false;  ///< `next` differs from the record's
};

/// The plan of a running (in_progress) job; nothing for any other.
campaign_plan plan_campaign(const job_record& j, millis now);

/// Whether a job uses any campaign feature (waves, thresholds, soak,
/// max_parallel, retries, a window, dynamic) or was paused.
bool is_campaign(const job_record& j);

/// How long before automatic retry number `attempt` (1 = the first retry).
millis retry_delay(const job_spec& spec, uint32_t attempt);

}  // namespace coapfleet::model
