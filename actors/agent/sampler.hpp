// Health samples of the node the agent runs on: CPU (from /proc/stat deltas),
// memory (/proc/meminfo MemAvailable), disk (statvfs), temperature (thermal
// zones, absent when the board has none), uptime, and configured services
// (systemd's state where systemd runs, else whether a process of that name
// runs). Thresholds turn readings into error messages and overall_healthy.
// The parsers are pure functions of file contents, so they are unit-tested;
// the roots are configurable so tests can point them at fixture trees.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/types.hpp"

namespace coapfleet::agent {

enum class service_probe : uint8_t { automatic, systemd, process };

struct sampler_config {
  std::string proc_root = "/proc";
  std::string sys_root = "/sys";
  std::string etc_root = "/etc";
  std::string disk_path = "/";
  std::vector<std::string> services;
  service_probe probe = service_probe::automatic;  ///< automatic: systemd if /run/systemd/system exists
  double cpu_threshold = 90;          ///< percent; above → error message
  double memory_threshold = 90;       ///< percent
  double disk_threshold = 90;         ///< percent
  double temperature_threshold = 85;  ///< degrees Celsius
};

// -- pure parsers ---------------------------------------------------------------

struct cpu_times {
  uint64_t busy = 0;   ///< user+nice+system+irq+softirq+steal
  uint64_t total = 0;  ///< busy + idle + iowait
};
/// The aggregate "cpu " line of /proc/stat.
bool parse_proc_stat(std::string_view text, cpu_times& out);
/// Percent busy between two samples; NaN when total did not advance.
double cpu_percent(const cpu_times& before, const cpu_times& after);
/// (MemTotal - MemAvailable) / MemTotal * 100.
bool parse_meminfo(std::string_view text, double& used_percent, uint64_t& total_bytes);
/// First number of /proc/uptime.
bool parse_uptime(std::string_view text, double& seconds);
/// A thermal zone's temp file (millidegrees) → degrees.
bool parse_millidegrees(std::string_view text, double& celsius);
/// PRETTY_NAME (else NAME) of an os-release file.
std::string parse_os_release(std::string_view text);

/// Error messages and overall_healthy from readings and service states, e.g.
/// "Service docker is not running", "CPU usage 97.1% above 90%".
void apply_thresholds(model::health_report& h, const sampler_config& cfg);

// -- sampling --------------------------------------------------------------------

/// Keeps the previous CPU reading between samples; not thread-safe (one
/// owner: the metrics actor).
class sampler {
public:
  explicit sampler(sampler_config cfg);
  /// One complete sample. The first one's cpu_percent comes from a short
  /// reading taken at construction.
  model::health_report sample(const std::string& node_id, model::millis now);
  const sampler_config& config() const { return cfg_; }

private:
  bool service_running(const std::string& name);
  sampler_config cfg_;
  cpu_times last_cpu_;
  bool systemd_ = false;
};

/// Facts for the agent's GET /system.
struct system_facts {
  std::string hostname;
  std::string os;      ///< e.g. "Debian GNU/Linux 12 (bookworm)"
  std::string arch;    ///< uname machine, e.g. "x86_64", "aarch64"
  std::string kernel;  ///< uname release
  uint32_t cpus = 0;
  uint64_t memory_total_bytes = 0;
  double uptime_seconds = 0;
};
system_facts collect_system_facts(const sampler_config& cfg);

}  // namespace coapfleet::agent
