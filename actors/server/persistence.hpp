// The persistence actor owns the SQLite store (the only code that touches it)
// and group-commits: every write queued while a commit runs joins the next one.
// A stop commits what is pending; supervisors read a dead child back from it.
#pragma once

#include <chrono>
#include <memory>

#include "actors/interfaces.hpp"
#include "store/store.hpp"

namespace coapfleet::server {

struct persistence_config {
  /// Latest-health telemetry is committed at least this often.
  std::chrono::milliseconds health_flush{500};
  /// Own thread, at a lower CPU priority than the transport: a commit of
  /// thousands of health rows must not delay the answers on the hot path.
  /// (Off in deterministic tests.)
  bool detached = true;
  /// Told how many health reports this actor has taken (every
  /// `absorbed_every` and at each commit), so it can bound the backlog.
  transport_actor transport;
  uint64_t absorbed_every = 256;
  /// Node-state history older than this is dropped (checked at start and
  /// hourly); zero keeps it all.
  std::chrono::hours history_keep{24 * 90};
};

/// The error of a key operation that did not happen (none for `done`):
/// conflict (`exists`), not_found (`unknown`), internal with the database's
/// message (`failed`). Shared with `coapfleet-server keys`.
caf::error key_error(store::key_outcome outcome, const std::string& id,
                     const std::string& database_error);

/// Spawns the persistence actor on an opened store.
persistence_actor spawn_persistence(caf::actor_system& sys, std::unique_ptr<store> db,
                                    persistence_config cfg);

}  // namespace coapfleet::server
