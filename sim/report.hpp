// The simulator's summaries: a readable text block and one JSON object.
#pragma once

#include <string>

#include "sim/config.hpp"
#include "sim/engine.hpp"

namespace coapfleet::sim {

/// Several lines for people (ends with a newline).
std::string summary_text(const config& c, const run_result& r);
/// One JSON object (no newline) for scripts. Latencies in milliseconds.
std::string summary_json(const config& c, const run_result& r);

}  // namespace coapfleet::sim
