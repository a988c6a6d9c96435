// The agent's durable state in its state directory, written atomically
// (temp file, fsync, rename): the installer's job journal (queued and current
// jobs with their phase, recently finished job ids) and the reporter's
// outbox of step reports the server has not yet taken.
#pragma once

#include <deque>
#include <string>
#include <vector>

#include "model/types.hpp"

namespace coapfleet::agent {

/// Where a journaled job stands.
enum class job_phase : uint8_t { queued, downloading, installing };

struct journaled_job {
  model::update_notification note;
  job_phase phase = job_phase::queued;
};

struct job_journal {
  std::deque<journaled_job> jobs;  ///< front: the current job (when not queued)
  std::deque<std::string> done;    ///< ids of finished jobs (most recent last)
  static constexpr size_t done_capacity = 256;

  bool knows(const std::string& job_id) const;
  void finish_front();  ///< pops the current job into `done`
};

/// Loads `path`; an absent file is an empty journal; a damaged one is
/// reported in `error` and treated as empty.
job_journal load_journal(const std::string& path, std::string& error);
bool save_journal(const std::string& path, const job_journal& j, std::string& error);

std::deque<model::update_report> load_outbox(const std::string& path, std::string& error);
bool save_outbox(const std::string& path, const std::deque<model::update_report>& outbox,
                 std::string& error);

/// Writes `content` to `path` atomically and durably.
bool write_file_atomically(const std::string& path, const std::string& content,
                           std::string& error);
/// The whole file, or nullopt-like empty + false when it cannot be read.
bool read_whole_file(const std::string& path, std::string& out);

}  // namespace coapfleet::agent
