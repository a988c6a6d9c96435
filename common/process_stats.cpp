#include "common/process_stats.hpp"

#include <cstdio>
#include <cstring>
#include <unistd.h>

namespace coapfleet::common {

process_sampler::sample process_sampler::take(int64_t now_ms) {
  sample out;
  long pages_total = 0, pages_rss = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages_total, &pages_rss) == 2)
      out.rss_bytes =
        static_cast<uint64_t>(pages_rss) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    std::fclose(f);
  }
  char line[1024];
  FILE* f = std::fopen("/proc/self/stat", "r");
  if (!f)
    return out;
  size_t n = std::fread(line, 1, sizeof line - 1, f);
  std::fclose(f);
  line[n] = '\0';
  // Fields after the command name: state is field 3, utime 14, stime 15.
  const char* close = std::strrchr(line, ')');
  if (!close || close[1] == '\0')
    return out;
  const char* p = close + 2;
  int field = 3;
  while (*p && field < 14) {
    if (*p == ' ')
      ++field;
    ++p;
  }
  unsigned long utime = 0, stime = 0;
  if (std::sscanf(p, "%lu %lu", &utime, &stime) != 2)
    return out;
  double secs = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  if (last_at_ms_ > 0 && now_ms > last_at_ms_)
    out.cpu_percent = 100.0 * (secs - last_cpu_seconds_) / ((now_ms - last_at_ms_) / 1000.0);
  last_cpu_seconds_ = secs;
  last_at_ms_ = now_ms;
  return out;
}

}  // namespace coapfleet::common
