// Times as the server writes them (ISO 8601 UTC) and as people read them
// ("3m ago").
#pragma once

#include <optional>
#include <string>

namespace coapfleet::cli {

/// Seconds since the epoch of an ISO 8601 UTC time ("2026-11-22T02:33:20Z",
/// fractions allowed), or nothing.
std::optional<double> parse_utc(const std::string& iso);

/// "12s ago", "3m ago", "2h ago", "4d ago"; "-" when `iso` does not parse.
std::string relative_time(const std::string& iso);

}  // namespace coapfleet::cli
