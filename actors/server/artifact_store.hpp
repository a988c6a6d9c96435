// The artifact store owns the artifacts directory beside the database:
// uploads are written to a temporary file, fsync'd and renamed over the old
// version (with a metadata file holding size, SHA-256 and upload time);
// downloads are served from a read-only mapping of the file.
//
// Layout: <directory>/<name> holds an artifact's bytes and nothing else is
// written there; the store's own files (metadata <name>.json and every
// temporary file) are in <directory>/.store/, which no artifact name reaches
// (model::valid_artifact_name never starts with '.'). Earlier versions kept
// .meta-<name>.json beside the artifacts; the start moves them (checked
// against the content, since an upload could have written one).
//
// The members of a cluster share their artifacts through the store
// (store/artifacts.hpp): an upload is acknowledged once the shared store
// has it, and each member's directory holds its copies to serve, kept in
// step at every refresh and whenever a request names an artifact it lacks.
#pragma once

#include <chrono>
#include <string>

#include "actors/interfaces.hpp"

namespace coapfleet::server {

struct artifact_store_config {
  std::string directory = "artifacts";
  /// Own thread for the blocking file I/O (off in deterministic tests).
  bool detached = true;
  /// The store the members of a cluster share (a PostgreSQL URI); empty: a
  /// single server, whose directory is the artifacts' only home.
  std::string shared_store;
  /// How often the copies are brought in step with the shared store.
  std::chrono::milliseconds refresh{1000};
};

/// Spawns the store (detached: it does blocking file I/O). Announces every
/// stored artifact to the transport so /artifacts/<name> is served.
artifact_store_actor spawn_artifact_store(caf::actor_system& sys, artifact_store_config cfg,
                                          transport_actor transport);

}  // namespace coapfleet::server
