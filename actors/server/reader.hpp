// The reader: GET /nodes straight from the database (store_reader), on
// connections of its own, on its own thread. A page is one read; a whole
// listing is a snapshot (a read transaction) read a chunk at a time as the
// client asks for its blocks, so it is never built whole. The persistence
// actor stays the only writer.
#pragma once

#include <chrono>
#include <memory>

#include "actors/interfaces.hpp"
#include "store/store_reader.hpp"

namespace coapfleet::server {

struct reader_config {
  liveness_limits liveness;
  transport_actor transport;
  /// Bytes of a whole listing read per chunk.
  size_t chunk_bytes = 64 * 1024;
  /// Snapshots open at once (each holds a connection, with a page cache of
  /// at most 512 KiB, and a read transaction); beyond, a whole listing is
  /// answered 5.03 with Max-Age.
  size_t max_streams = 64;
  /// A snapshot nobody read from for this long is closed: a safety net (the
  /// transport closes a listing 60 s after its last block; a slow client
  /// may take longer than that over one chunk's 64 blocks).
  std::chrono::milliseconds idle{std::chrono::minutes(10)};
  /// Own thread (blocking reads), off in deterministic tests.
  bool detached = true;
};

reader_actor spawn_reader(caf::actor_system& sys, std::unique_ptr<store_reader> db,
                          reader_config cfg);

}  // namespace coapfleet::server
