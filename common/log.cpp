#include "common/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace coapfleet::log {

namespace {
std::atomic<int> the_level{static_cast<int>(level::info)};
const char* names[] = {"TRACE", "DEBUG", "INFO ", "WARN ", "ERROR", "OFF  "};
}  // namespace

void set_level(level l) { the_level = static_cast<int>(l); }
level current_level() { return static_cast<level>(the_level.load(std::memory_order_relaxed)); }

bool parse_level(std::string_view text, level& out) {
  static const std::string_view keys[] = {"trace", "debug", "info", "warn", "error", "off"};
  for (int i = 0; i < 6; ++i)
    if (text == keys[i]) {
      out = static_cast<level>(i);
      return true;
    }
  return false;
}

std::string format_line(level l, std::string_view who, std::string_view message) {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[80];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  std::string line;
  line.reserve(48 + who.size() + message.size());
  line += stamp;
  line += ' ';
  line += names[static_cast<int>(l)];
  line += ' ';
  line += who;
  line += ": ";
  line += message;
  line += '\n';
  return line;
}

void write(level l, std::string_view who, std::string_view message) {
  auto line = format_line(l, who, message);
  // One fwrite per line: stdio locks the stream, so lines never interleave.
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace coapfleet::log
