// Structured log lines: "<time> <LEVEL> <actor>: <message> key=value ...".
// Every line names the actor (or component) that writes it.
#pragma once

#include <sstream>
#include <string>
#include <string_view>

namespace coapfleet::log {

enum class level : int { trace = 0, debug, info, warn, error, off };

void set_level(level l);
level current_level();
/// Parses trace|debug|info|warn|error|off.
bool parse_level(std::string_view text, level& out);
inline bool enabled(level l) { return static_cast<int>(l) >= static_cast<int>(current_level()); }
void write(level l, std::string_view who, std::string_view message);
/// The line write() writes (with its newline), for a writer of its own.
std::string format_line(level l, std::string_view who, std::string_view message);

template <class... Ts>
std::string concat(const Ts&... xs) {
  std::ostringstream out;
  (out << ... << xs);
  return out.str();
}

}  // namespace coapfleet::log

#define CF_LOG(lvl, who, ...)                                                     \
  do {                                                                            \
    if (::coapfleet::log::enabled(::coapfleet::log::level::lvl))                  \
      ::coapfleet::log::write(::coapfleet::log::level::lvl, who,                  \
                              ::coapfleet::log::concat(__VA_ARGS__));             \
  } while (false)
#define CF_TRACE(who, ...) CF_LOG(trace, who, __VA_ARGS__)
#define CF_DEBUG(who, ...) CF_LOG(debug, who, __VA_ARGS__)
#define CF_INFO(who, ...) CF_LOG(info, who, __VA_ARGS__)
#define CF_WARN(who, ...) CF_LOG(warn, who, __VA_ARGS__)
#define CF_ERROR(who, ...) CF_LOG(error, who, __VA_ARGS__)
