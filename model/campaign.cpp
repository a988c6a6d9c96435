#include "model/campaign.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "model/rules.hpp"

namespace coapfleet::model {

namespace {

constexpr millis minute_ms = 60 * 1000;
constexpr millis day_ms = 24 * 60 * minute_ms;

bool two_digits(std::string_view s, size_t at, int32_t& out) {
  if (at + 2 > s.size() || s[at] < '0' || s[at] > '9' || s[at + 1] < '0' || s[at + 1] > '9')
    return false;
  out = (s[at] - '0') * 10 + (s[at + 1] - '0');
  return true;
}

bool unfinished_attempt(const node_job_state& n) {
  return n.started_at > 0 && !is_terminal(n.state);
}

bool bad(node_update_state s) {
  return s == node_update_state::failed || s == node_update_state::timed_out
         || s == node_update_state::rolled_back;
}

int32_t last_wave(const job_spec& spec) {
  return spec.waves.empty() ? 0 : static_cast<int32_t>(spec.waves.size()) - 1;
}

}  // namespace

std::optional<daily_window> parse_window(std::string_view text) {
  int32_t h1, m1, h2, m2;
  if (text.size() != 11 || text[2] != ':' || text[5] != '-' || text[8] != ':'
      || !two_digits(text, 0, h1) || !two_digits(text, 3, m1) || !two_digits(text, 6, h2)
      || !two_digits(text, 9, m2) || h1 > 23 || h2 > 23 || m1 > 59 || m2 > 59)
    return std::nullopt;
  daily_window w{h1 * 60 + m1, h2 * 60 + m2};
  if (w.from == w.to)
    return std::nullopt;
  return w;
}

bool in_window(const daily_window& w, millis now) {
  auto minute = static_cast<int32_t>(((now % day_ms) + day_ms) % day_ms / minute_ms);
  return w.from < w.to ? minute >= w.from && minute < w.to : minute >= w.from || minute < w.to;
}

millis window_opens(const daily_window& w, millis now) {
  if (in_window(w, now))
    return now;
  auto day_start = now - (((now % day_ms) + day_ms) % day_ms);
  auto opens = day_start + w.from * minute_ms;
  return opens > now ? opens : opens + day_ms;
}

void assign_waves(std::vector<node_job_state>& nodes, const std::vector<int32_t>& waves) {
  auto n = nodes.size();
  size_t i = 0;
  for (size_t w = 0; w < waves.size(); ++w) {
    auto upto = std::min(n, static_cast<size_t>(std::ceil(static_cast<double>(n) * waves[w] / 100.0)));
    for (; i < upto; ++i)
      nodes[i].wave = static_cast<int32_t>(w);
  }
  for (; i < n; ++i)
    nodes[i].wave = waves.empty() ? 0 : static_cast<int32_t>(waves.size()) - 1;
}

int32_t late_wave(const job_record& j) {
  return std::min(j.campaign.wave + 1, last_wave(j.spec));
}

bool awaits_retry(const job_spec& spec, const node_job_state& n) {
  return bad(n.state)
         && (n.retry_at > 0 || (spec.retries > 0 && n.attempt <= static_cast<uint32_t>(spec.retries)));
}

bool failed_for_good(const job_spec& spec, const node_job_state& n) {
  return bad(n.state) && !awaits_retry(spec, n);
}

std::vector<wave_summary> summarize_waves(const job_record& j) {
  auto count = j.spec.waves.empty() ? size_t{1} : j.spec.waves.size();
  std::vector<wave_summary> out(count);
  for (size_t i = 0; i < count; ++i) {
    out[i].index = static_cast<int32_t>(i);
    out[i].percent = j.spec.waves.empty() ? 100 : j.spec.waves[i];
  }
  for (auto& n : j.nodes) {
    auto w = static_cast<size_t>(std::clamp<int32_t>(n.wave, 0, static_cast<int32_t>(count) - 1));
    auto& s = out[w];
    ++s.nodes;
    if (n.started_at > 0 || n.state != node_update_state::pending)
      ++s.started;
    if (n.state == node_update_state::succeeded)
      ++s.succeeded;
    if (failed_for_good(j.spec, n))
      ++s.failed;
    if (is_terminal(n.state) && !awaits_retry(j.spec, n))
      ++s.finished;
  }
  auto threshold = j.spec.success_threshold;
  for (auto& s : out) {
    bool met = threshold > 0 ? s.nodes > 0 && s.succeeded * 100 >= static_cast<uint32_t>(threshold) * s.nodes
                             : s.finished == s.nodes;
    if (s.nodes == 0)
      s.state = "empty";  // fewer targets than waves: passed at once
    else if (met)
      s.state = "succeeded";
    else if (s.finished == s.nodes)
      s.state = "failed";
    else if (s.started > 0)
      s.state = "running";
    else
      s.state = "waiting";
  }
  return out;
}

bool is_campaign(const job_record& j) {
  auto& s = j.spec;
  return !s.waves.empty() || s.success_threshold > 0 || s.error_threshold > 0
         || s.soak_seconds > 0 || s.max_parallel > 0 || s.retries > 0 || !s.window.empty()
         || s.dynamic || j.campaign.paused;
}

millis retry_delay(const job_spec& spec, uint32_t attempt) {
  millis base = spec.retry_backoff_seconds > 0 ? spec.retry_backoff_seconds : 30;
  auto shift = std::min<uint32_t>(attempt > 0 ? attempt - 1 : 0, 20);
  return std::min<millis>(base << shift, 3600) * 1000;
}

bool campaign_plan::changes() const {
  return changed_state || !start.empty() || !retry.empty() || !schedule_retry.empty();
}

campaign_plan plan_campaign(const job_record& j, millis now) {
  campaign_plan p;
  p.next = j.campaign;
  if (j.status != job_status::in_progress)
    return p;
  auto& spec = j.spec;
  auto& c = p.next;
  auto wake = [&](millis at) {
    if (at > now && (p.wake_at == 0 || at < p.wake_at))
      p.wake_at = at;
  };

  // Automatic retries: failed nodes with attempts left get a time.
  for (auto& n : j.nodes)
    if (bad(n.state) && n.retry_at == 0 && spec.retries > 0
        && n.attempt <= static_cast<uint32_t>(spec.retries))
      p.schedule_retry.emplace_back(n.node_id, now + retry_delay(spec, n.attempt));

  // The error threshold: failed for good among the started nodes.
  // After an operator's resume only the nodes started since count.
  uint32_t started = 0, failed = 0, in_flight = 0;
  for (auto& n : j.nodes) {
    if (unfinished_attempt(n))
      ++in_flight;
    if (c.resumed_at > 0 && n.started_at < c.resumed_at)
      continue;
    if (n.started_at > 0 || n.state != node_update_state::pending)
      ++started;
    if (failed_for_good(spec, n))
      ++failed;
  }
  if (!c.paused && spec.error_threshold > 0 && started > 0
      && failed * 100 >= static_cast<uint32_t>(spec.error_threshold) * started) {
    c.paused = true;
    c.pause_reason = "error threshold reached: " + std::to_string(failed) + " of "
                     + std::to_string(started) + " started nodes failed (error_threshold "
                     + std::to_string(spec.error_threshold) + "%)";
  }

  // Waves: the next one starts once the newest met its success condition
  // (and soaked); one that ended below it pauses the campaign.
  auto waves = summarize_waves(j);
  auto last = last_wave(spec);
  while (!c.paused && c.wave < last) {
    auto& w = waves[static_cast<size_t>(c.wave)];
    if (w.state == "failed" && c.wave > c.accepted_wave) {
      c.paused = true;
      c.pause_reason = "wave " + std::to_string(c.wave) + " ended with " + std::to_string(w.succeeded)
                       + " of " + std::to_string(w.nodes) + " nodes succeeded (success_threshold "
                       + std::to_string(spec.success_threshold) + "%)";
      break;
    }
    if (w.state == "empty") {
      ++c.wave;
      continue;
    }
    if (w.state != "succeeded" && w.state != "failed")
      break;
    if (spec.soak_seconds > 0) {
      if (c.soak_until == 0)
        c.soak_until = now + static_cast<millis>(spec.soak_seconds) * 1000;
      if (now < c.soak_until) {
        wake(c.soak_until);
        break;
      }
    }
    ++c.wave;
    c.soak_until = 0;
  }

  // Starts: unstarted nodes of the started waves and due retries, within
  // the window and max_parallel.
  if (!c.paused) {
    auto window = spec.window.empty() ? std::nullopt : parse_window(spec.window);
    if (window && !in_window(*window, now)) {
      bool waiting = std::any_of(j.nodes.begin(), j.nodes.end(), [&](const node_job_state& n) {
        return (n.started_at == 0 && n.state == node_update_state::pending && n.wave <= c.wave)
               || n.retry_at > 0;
      });
      if (waiting)
        wake(window_opens(*window, now));
    } else {
      auto room = spec.max_parallel > 0
                    ? (in_flight >= static_cast<uint32_t>(spec.max_parallel)
                         ? 0u
                         : static_cast<uint32_t>(spec.max_parallel) - in_flight)
                    : std::numeric_limits<uint32_t>::max();
      for (auto& n : j.nodes) {
        if (room == 0)
          break;
        if (n.retry_at > 0 && bad(n.state)) {
          if (n.retry_at <= now) {
            p.retry.push_back(n.node_id);
            --room;
          } else {
            wake(n.retry_at);
          }
        } else if (n.started_at == 0 && n.state == node_update_state::pending
                   && n.wave <= c.wave) {
          p.start.push_back(n.node_id);
          --room;
        }
      }
    }
  }
  p.changed_state = c.wave != j.campaign.wave || c.paused != j.campaign.paused
                    || c.pause_reason != j.campaign.pause_reason
                    || c.soak_until != j.campaign.soak_until || c.closed != j.campaign.closed;
  return p;
}

}  // namespace coapfleet::model
