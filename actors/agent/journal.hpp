// The agent's durable state in its state directory, written atomically and
// durably (common/durable_file): the installer's job journal and the
// reporter's outbox (their values and JSON form: model/journal.hpp).
#pragma once

#include <deque>
#include <string>

#include "model/journal.hpp"
#include "model/types.hpp"

namespace coapfleet::agent {

using model::job_journal;
using model::job_phase;
using model::journaled_job;

/// Loads `path`; an absent file is an empty journal; a damaged one is
/// reported in `error` and treated as empty.
job_journal load_journal(const std::string& path, std::string& error);
bool save_journal(const std::string& path, const job_journal& j, std::string& error);

std::deque<model::update_report> load_outbox(const std::string& path, std::string& error);
bool save_outbox(const std::string& path, const std::deque<model::update_report>& outbox,
                 std::string& error);

/// The node's version inventory (inventory.json in the state directory:
/// software name → version, what successful jobs installed). Empty when
/// there is none; `error` says when the file is damaged.
model::string_map load_inventory(const std::string& path, std::string& error);
bool save_inventory(const std::string& path, const model::string_map& inventory,
                    std::string& error);

}  // namespace coapfleet::agent
