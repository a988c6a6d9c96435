// Campaigns as pure functions: waves, thresholds, soak, max_parallel,
// automatic retries, the maintenance window.
#include <doctest/doctest.h>

#include "model/campaign.hpp"

using namespace coapfleet::model;

namespace {

constexpr millis t0 = 1'800'000'000'000;  // a Tuesday, 2027-01-15T08:00:00Z
constexpr millis minute = 60'000;

job_record campaign(size_t nodes, std::vector<int32_t> waves) {
  job_record j;
  j.job_id = "c";
  j.status = job_status::in_progress;
  j.spec.waves = std::move(waves);
  for (size_t i = 0; i < nodes; ++i) {
    node_job_state n;
    char id[32];
    std::snprintf(id, sizeof id, "n%04zu", i);
    n.node_id = id;
    j.nodes.push_back(n);
  }
  assign_waves(j.nodes, j.spec.waves);
  return j;
}

/// Starts what the plan says at `now` (all reachable).
campaign_plan step(job_record& j, millis now) {
  auto p = plan_campaign(j, now);
  j.campaign = p.next;
  for (auto& [id, at] : p.schedule_retry)
    for (auto& n : j.nodes)
      if (n.node_id == id)
        n.retry_at = at;
  for (auto* list : {&p.start, &p.retry})
    for (auto& id : *list)
      for (auto& n : j.nodes)
        if (n.node_id == id) {
          if (list == &p.retry)
            ++n.attempt;
          n.state = node_update_state::notified;
          n.started_at = now;
          n.retry_at = 0;
        }
  return p;
}

void finish(job_record& j, int32_t wave, node_update_state s, size_t count = SIZE_MAX) {
  for (auto& n : j.nodes)
    if (count > 0 && n.wave == wave && n.started_at > 0 && !is_terminal(n.state)) {
      n.state = s;
      --count;
    }
}

}  // namespace

TEST_CASE("waves hold cumulative percentages of the targets in node order") {
  auto j = campaign(200, {1, 10, 50, 100});
  std::vector<int> per(4);
  for (auto& n : j.nodes)
    ++per[static_cast<size_t>(n.wave)];
  CHECK(per == std::vector<int>{2, 18, 80, 100});
  CHECK(j.nodes.front().wave == 0);
  CHECK(j.nodes.back().wave == 3);
  // Fewer nodes than waves: empty waves pass at once.
  auto small = campaign(3, {1, 10, 100});
  CHECK(small.nodes[0].wave == 0);
  CHECK(small.nodes[1].wave == 2);
  step(small, t0);
  finish(small, 0, node_update_state::succeeded);
  auto p = step(small, t0 + 1);
  CHECK(small.campaign.wave == 2);
  CHECK(p.start.size() == 2);
}

TEST_CASE("a wave starts once the one before finished, and soaks first") {
  auto j = campaign(100, {10, 100});
  j.spec.soak_seconds = 60;
  auto p = step(j, t0);
  CHECK(p.start.size() == 10);
  CHECK(step(j, t0 + 1).start.empty());
  finish(j, 0, node_update_state::succeeded, 9);
  CHECK(step(j, t0 + 2).start.empty());  // one still runs
  finish(j, 0, node_update_state::failed);
  p = step(j, t0 + 3);
  CHECK(p.start.empty());
  CHECK(j.campaign.wave == 0);
  CHECK(j.campaign.soak_until == t0 + 3 + 60'000);
  CHECK(p.wake_at == j.campaign.soak_until);
  p = step(j, t0 + 3 + 60'000);
  CHECK(j.campaign.wave == 1);
  CHECK(j.campaign.soak_until == 0);
  CHECK(p.start.size() == 90);
  auto waves = summarize_waves(j);
  REQUIRE(waves.size() == 2);
  CHECK(waves[0].state == "succeeded");
  CHECK(waves[0].succeeded == 9);
  CHECK(waves[0].failed == 1);
  CHECK(waves[1].state == "running");
}

TEST_CASE("a success threshold holds the next wave; below it the campaign pauses") {
  auto j = campaign(100, {10, 100});
  j.spec.success_threshold = 90;
  step(j, t0);
  finish(j, 0, node_update_state::succeeded, 8);
  finish(j, 0, node_update_state::failed);
  auto p = step(j, t0 + 1);
  CHECK(p.start.empty());
  CHECK(j.campaign.paused);
  CHECK(j.campaign.pause_reason.find("8 of 10") != std::string::npos);
  CHECK(summarize_waves(j)[0].state == "failed");
}

TEST_CASE("the error threshold pauses; nothing starts while paused") {
  auto j = campaign(1000, {1, 10, 100});
  j.spec.error_threshold = 20;
  step(j, t0);
  finish(j, 0, node_update_state::succeeded, 8);
  finish(j, 0, node_update_state::failed);  // 2 of 10 started: 20%
  auto p = step(j, t0 + 1);
  CHECK(j.campaign.paused);
  CHECK(j.campaign.pause_reason.find("2 of 10 started nodes failed") != std::string::npos);
  CHECK(p.start.empty());
  CHECK(p.changed_state);
  // Resumed by an operator (the job actor records when): the failures so
  // far no longer count; new ones among the nodes started since do.
  j.campaign.paused = false;
  j.campaign.resumed_at = t0 + 2;
  j.campaign.accepted_wave = j.campaign.wave;
  p = step(j, t0 + 2);
  CHECK_FALSE(j.campaign.paused);
  CHECK(j.campaign.wave == 1);
  CHECK(p.start.size() == 90);
  finish(j, 1, node_update_state::succeeded, 70);
  finish(j, 1, node_update_state::failed, 20);  // 20 of 90 since the resume: 22%
  step(j, t0 + 3);
  CHECK(j.campaign.paused);
  CHECK(j.campaign.pause_reason.find("20 of 90") != std::string::npos);
}

TEST_CASE("a resume passes a wave that ended below its success threshold") {
  auto j = campaign(20, {50, 100});
  j.spec.success_threshold = 100;
  step(j, t0);
  finish(j, 0, node_update_state::succeeded, 9);
  finish(j, 0, node_update_state::failed);
  step(j, t0 + 1);
  REQUIRE(j.campaign.paused);
  j.campaign.paused = false;
  j.campaign.resumed_at = t0 + 2;
  j.campaign.accepted_wave = j.campaign.wave;
  auto p = step(j, t0 + 2);
  CHECK_FALSE(j.campaign.paused);
  CHECK(j.campaign.wave == 1);
  CHECK(p.start.size() == 10);
}

TEST_CASE("max_parallel caps the nodes in flight") {
  auto j = campaign(10, {});
  j.spec.max_parallel = 3;
  CHECK(step(j, t0).start.size() == 3);
  CHECK(step(j, t0 + 1).start.empty());
  finish(j, 0, node_update_state::succeeded, 2);
  CHECK(step(j, t0 + 2).start.size() == 2);
}

TEST_CASE("automatic retries back off and count as failures only once exhausted") {
  auto j = campaign(2, {});
  j.spec.retries = 2;
  j.spec.retry_backoff_seconds = 10;
  j.spec.error_threshold = 50;
  step(j, t0);
  finish(j, 0, node_update_state::failed, 1);
  auto p = step(j, t0 + 1);
  CHECK_FALSE(j.campaign.paused);  // a retry is ahead
  REQUIRE(p.schedule_retry.size() == 1);
  CHECK(p.schedule_retry[0].second == t0 + 1 + 10'000);
  p = step(j, t0 + 2);
  CHECK(p.retry.empty());
  CHECK(p.wake_at == t0 + 1 + 10'000);
  p = step(j, t0 + 1 + 10'000);
  REQUIRE(p.retry.size() == 1);
  CHECK(j.nodes[0].attempt == 2);
  finish(j, 0, node_update_state::failed, 1);
  p = step(j, t0 + 20'000);
  REQUIRE(p.schedule_retry.size() == 1);
  CHECK(p.schedule_retry[0].second == t0 + 20'000 + 20'000);  // doubled
  step(j, t0 + 40'000);
  finish(j, 0, node_update_state::failed, 1);  // attempt 3 fails: no retries left
  p = step(j, t0 + 50'000);
  CHECK(p.schedule_retry.empty());
  CHECK(j.campaign.paused);  // 1 of 2 failed for good: 50%
  CHECK(retry_delay(j.spec, 30) == 3'600'000);
}

TEST_CASE("the maintenance window: nothing starts outside it, the plan wakes when it opens") {
  auto w = parse_window("02:00-04:00");
  REQUIRE(w);
  CHECK(w->from == 120);
  CHECK(w->to == 240);
  auto midnight = t0 - 8 * 60 * minute;  // 2027-01-15T00:00Z
  CHECK_FALSE(in_window(*w, midnight + 60 * minute));
  CHECK(in_window(*w, midnight + 150 * minute));
  CHECK(window_opens(*w, midnight + 60 * minute) == midnight + 120 * minute);
  CHECK(window_opens(*w, midnight + 300 * minute) == midnight + (24 * 60 + 120) * minute);
  auto night = parse_window("22:00-02:00");
  REQUIRE(night);
  CHECK(in_window(*night, midnight + 30 * minute));
  CHECK(in_window(*night, midnight + 23 * 60 * minute));
  CHECK_FALSE(in_window(*night, midnight + 12 * 60 * minute));
  for (auto* bad : {"2:00-04:00", "02:00-02:00", "24:00-01:00", "02:60-03:00", "02:00 04:00", ""})
    CHECK_FALSE(parse_window(bad));

  auto j = campaign(5, {});
  j.spec.window = "02:00-04:00";
  auto p = step(j, t0);  // 08:00: outside
  CHECK(p.start.empty());
  CHECK(p.wake_at == midnight + (24 * 60 + 120) * minute);
  p = step(j, midnight + (24 * 60 + 121) * minute);
  CHECK(p.start.size() == 5);
}

TEST_CASE("a job that does not run plans nothing") {
  auto j = campaign(5, {});
  j.status = job_status::created;
  CHECK_FALSE(plan_campaign(j, t0).changes());
  j.status = job_status::cancelled;
  CHECK_FALSE(plan_campaign(j, t0).changes());
}
