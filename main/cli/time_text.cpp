#include "main/cli/time_text.hpp"

#include <cstdio>
#include <ctime>

namespace coapfleet::cli {

std::optional<double> parse_utc(const std::string& iso) {
  int y, mo, d, h, mi;
  double s;
  if (std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%lf", &y, &mo, &d, &h, &mi, &s) != 6)
    return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = 0;
  return static_cast<double>(timegm(&tm)) + s;
}

std::string relative_time(const std::string& iso) {
  auto t = parse_utc(iso);
  if (!t)
    return "-";
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  double age = static_cast<double>(now.tv_sec) + now.tv_nsec / 1e9 - *t;
  if (age < 0)
    age = 0;  // clocks of server and operator differ a little
  auto secs = static_cast<long long>(age);
  char buf[32];
  if (secs < 60)
    std::snprintf(buf, sizeof(buf), "%llds ago", secs);
  else if (secs < 3600)
    std::snprintf(buf, sizeof(buf), "%lldm ago", secs / 60);
  else if (secs < 86400)
    std::snprintf(buf, sizeof(buf), "%lldh ago", secs / 3600);
  else
    std::snprintf(buf, sizeof(buf), "%lldd ago", secs / 86400);
  return buf;
}

}  // namespace coapfleet::cli
