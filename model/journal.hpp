// The agent's durable state as values: the installer's job journal (queued
// and current jobs with their phase, recently finished job ids) and the
// reporter's outbox of step reports the server has not taken yet, with their
// JSON form (the files in the agent's state directory).
#pragma once

#include <algorithm>
#include <deque>
#include <string>
#include <string_view>

#include "model/types.hpp"

namespace coapfleet::model {

/// Where a journaled job stands.
enum class job_phase : uint8_t { queued, downloading, installing };

struct journaled_job {
  update_notification note;
  job_phase phase = job_phase::queued;
};

struct job_journal {
  std::deque<journaled_job> jobs;  ///< front: the current job (when not queued)
  /// Finished (or cancelled) runs, most recent last: run_key(job, attempt).
  std::deque<std::string> done;
  static constexpr size_t done_capacity = 256;

  /// Whether run `key` (run_key) is queued, current or finished.
  bool knows(const std::string& key) const {
    for (auto& j : jobs)
      if (run_key(j.note.job_id, j.note.attempt) == key)
        return true;
    return std::find(done.begin(), done.end(), key) != done.end();
  }
  /// Notes run `key` as finished.
  void note_done(std::string key) {
    done.push_back(std::move(key));
    while (done.size() > done_capacity)
      done.pop_front();
  }
  /// Pops the current job into `done`.
  void finish_front() {
    if (jobs.empty())
      return;
    note_done(run_key(jobs.front().note.job_id, jobs.front().note.attempt));
    jobs.pop_front();
  }
};

/// {"jobs":[{"phase","note"}...],"done":[ids]}
std::string encode_journal(const job_journal& j);
/// False when the text is not a journal; jobs whose notification is invalid
/// are dropped and named in `warning`.
bool decode_journal(std::string_view text, job_journal& out, std::string& warning);

/// [report, ...] in the shape of `POST /updates {"action":"report"}`.
std::string encode_outbox(const std::deque<update_report>& outbox);
/// False when the text is not an outbox; invalid entries are skipped.
bool decode_outbox(std::string_view text, std::deque<update_report>& out);

}  // namespace coapfleet::model
