// The artifact store owns the artifacts directory beside the database:
// uploads are written to a temporary file, fsync'd and renamed over the old
// version (with a metadata file holding size, SHA-256 and upload time);
// downloads are served from a read-only mapping of the file.
#pragma once

#include <string>

#include "actors/interfaces.hpp"

namespace coapfleet::server {

struct artifact_store_config {
  std::string directory = "artifacts";
  /// Own thread for the blocking file I/O (off in deterministic tests).
  bool detached = true;
};

/// Spawns the store (detached: it does blocking file I/O). Announces every
/// stored artifact to the transport so /artifacts/<name> is served.
artifact_store_actor spawn_artifact_store(caf::actor_system& sys, artifact_store_config cfg,
                                          transport_actor transport);

/// True for 1..128 characters of [A-Za-z0-9._-], not "." or "..".
bool valid_artifact_name(const std::string& name);

}  // namespace coapfleet::server
