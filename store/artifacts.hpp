// Artifacts in the store, for the members of a cluster: what one member
// acknowledged is in the store they share, so a campaign another member
// takes over finds its artifact, and a member that dies loses none.
//
// `artifacts` describes each artifact (name, size, SHA-256, upload time);
// `artifact_chunks` holds contents in chunks of at most chunk_size bytes,
// keyed by SHA-256 and sequence (no statement carries a whole image, and
// names with the same content share one copy). A deleted artifact leaves
// its name, with `deleted_at` and no content: a member that was away when
// it was deleted then drops its copy, while an artifact the store never had
// (a server's files from before it joined a cluster) is added to it. Every
// write is one
// transaction, serialized with the others by a lock on `artifacts`, so a
// description never names content that is not all there; what no
// description names any more is deleted with the write that let it go.
//
// Each member serves copies in its own artifacts directory (the artifact
// store actor keeps them in step); this table is what they are copies of.
// It works on both engines; a single server on SQLite keeps its artifacts
// as files and does not use it.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/types.hpp"

namespace coapfleet::server {

namespace db {
class connection;
class statement;
}  // namespace db

class artifact_table {
public:
  static constexpr size_t chunk_size = 1024 * 1024;

  /// Opens the store at `location` on a connection of its own (the schema
  /// must exist: store::open made it). Null with `error` set on failure.
  static std::unique_ptr<artifact_table> open(const std::string& location, std::string& error);
  ~artifact_table();
  artifact_table(const artifact_table&) = delete;
  artifact_table& operator=(const artifact_table&) = delete;

  /// Every artifact's description, by name (deleted ones left out).
  bool list(std::vector<model::artifact_info>& out);

  /// The description of `name`; `found` says whether there is one.
  bool find(const std::string& name, model::artifact_info& out, bool& found);

  /// Whether the store ever had `name` (now, or deleted).
  bool known(const std::string& name, bool& ever);

  /// Stores `body` as `a`, replacing whatever version `a.name` had, in one
  /// transaction. Content that is not `a`'s size and SHA-256 is refused
  /// (content_mismatch()).
  bool put(const model::artifact_info& a, std::string_view body);

  /// put(), but only if the store never had `a.name` (now or deleted),
  /// decided in the same transaction; `added` says whether it did.
  bool add_if_new(const model::artifact_info& a, std::string_view body, bool& added);

  /// Deletes `name` at time `at`; `found` says whether there was one.
  bool remove(const std::string& name, model::millis at, bool& found);

  /// The content `a` describes, checked against its size and SHA-256 (a
  /// replacement committed since `a` was read fails the check: read the
  /// description again).
  bool read(const model::artifact_info& a, std::string& body);

  /// Whether the last put() or read() failed because the content was not
  /// the version described (the store answered), not for want of an answer.
  bool content_mismatch() const { return mismatch_; }

  /// How long a call waits for the store.
  void set_timeout(int ms);
  const std::string& last_error() const { return error_; }

private:
  artifact_table() = default;
  bool fail(const std::string& what);
  bool begin();
  bool rollback(const std::string& what);
  bool write(const model::artifact_info& a, std::string_view body, bool only_new, bool& added);
  std::unique_ptr<db::connection> db_;
  std::unique_ptr<db::statement> list_, find_, known_, has_content_, put_chunk_, upsert_, delete_,
    drop_unnamed_, read_;
  std::string path_, error_;
  bool pg_ = false;
  bool mismatch_ = false;
};

}  // namespace coapfleet::server
