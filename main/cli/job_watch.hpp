// Following one update job live: observes coap /updates/<job>/status and
// shows each notification — a redrawn progress bar on a terminal, one plain
// line per change when piped, the server's JSON (one document per line) with
// --json — and reports every node failure once.
#pragma once

#include "main/cli/context.hpp"

#include <string>

namespace coapfleet::cli {

/// Watches `job` until it ends. Exit codes: 0 completed; 1 failed,
/// partially_failed or cancelled; 3 the server ended the observation with an
/// error (4.04: no such job); 4 no answer; 130 interrupted (Ctrl-C).
int watch_job(context& ctx, const std::string& job);

/// "8 (update failed)": an LwM2M firmware-update result code with its meaning.
std::string result_text(long long code);

}  // namespace coapfleet::cli
