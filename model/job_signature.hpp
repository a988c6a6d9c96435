// What an operator's signature of a job covers: the canonical text of the
// spec fields that decide what an agent runs (not where, and not the
// server's bookkeeping). The CLI signs this text with Ed25519 (--sign-key),
// the agent verifies it (--verify-key); both build it here, so the two can
// never disagree on the bytes.
#pragma once

#include <string>

#include "model/types.hpp"

namespace coapfleet::model {

/// The first line of the canonical text; a new version of the form gets a
/// new first line (and old signatures stop verifying).
constexpr const char* signed_job_header = "coapfleet-job-signature-v1";

/// The canonical text of a job spec:
///
///     coapfleet-job-signature-v1\n
///     name=<len>:<bytes>\n
///     version=<len>:<bytes>\n
///     package_type=<len>:<bytes>\n
///     packages=<count>:<len>:<bytes><len>:<bytes>...\n
///     artifact=<len>:<bytes>\n
///     artifact_sha256=<len>:<bytes>\n
///     target_path=<len>:<bytes>\n
///     mode=<len>:<bytes>\n
///     script=<len>:<bytes>\n
///     timeout_seconds=<len>:<decimal>\n
///
/// in this order, every field present (an absent one is `0:`), <len> the
/// value's length in bytes as a decimal number, the bytes as they are (UTF-8,
/// no escaping): the lengths make it unambiguous whatever a value contains.
/// Not covered: target_nodes (where it runs is the server's part),
/// description, artifact_size (the SHA-256 pins the content) and the
/// signature itself.
std::string signed_job_text(const job_spec& spec);

}  // namespace coapfleet::model
