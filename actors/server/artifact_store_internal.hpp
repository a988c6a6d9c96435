// Internal to the artifact store (artifact_store*.cpp): its state, and what
// both its own files and the shared store's copies are written with.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "actors/server/artifact_store.hpp"
#include "common/durable_file.hpp"
#include "store/artifacts.hpp"

namespace coapfleet::server::artifacts_internal {

/// A read-only mapping of an artifact file.
class mapped_file : public shared_bytes {
public:
  static std::shared_ptr<const mapped_file> open(const std::string& path, std::string& error) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      error = std::strerror(errno);
      return nullptr;
    }
    struct stat st {};
    ::fstat(fd, &st);
    auto out = std::shared_ptr<mapped_file>(new mapped_file);
    out->size_ = static_cast<size_t>(st.st_size);
    if (out->size_ > 0) {
      void* p = ::mmap(nullptr, out->size_, PROT_READ, MAP_SHARED, fd, 0);
      if (p == MAP_FAILED) {
        error = std::strerror(errno);
        ::close(fd);
        return nullptr;
      }
      out->data_ = static_cast<const uint8_t*>(p);
    }
    ::close(fd);
    return out;
  }
  ~mapped_file() override {
    if (data_)
      ::munmap(const_cast<uint8_t*>(data_), size_);
  }
  const uint8_t* data() const override { return data_ ? data_ : &empty_; }
  size_t size() const override { return size_; }

private:
  mapped_file() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  static inline const uint8_t empty_ = 0;
};

/// The store's own directory inside the artifacts directory.
constexpr const char* own_dir = ".store";

struct artifact_store_state {
  static inline const char* name = "artifact-store";
  artifact_store_config cfg;
  transport_actor transport;
  std::map<std::string, artifact_info> index;
  std::map<std::string, std::shared_ptr<const mapped_file>> mapped;  ///< serving cache
  /// The shared store (cfg.shared_store; opened on first use), and whether
  /// its last call was answered (a change is logged once).
  std::unique_ptr<artifact_table> table;
  bool store_answered = true;
  /// When the store is asked again after it did not answer (the timer's
  /// refreshes wait; a request always asks).
  model::millis store_retry_at = 0;
  /// When the refresh timer is due (a refresh asked for otherwise adds none).
  model::millis next_refresh_at = 0;
  /// What could not be brought in step here (a full disk, an unreadable
  /// file): tried again after `wait`, doubled each time, logged once.
  struct failure {
    std::string version;  ///< the SHA-256 it was about
    model::millis next_try = 0;
    model::millis wait = 0;
  };
  std::map<std::string, failure> failed;

  std::string artifact_path(const std::string& a) const { return cfg.directory + "/" + a; }
  std::string own_path() const { return cfg.directory + "/" + own_dir; }
  std::string meta_path(const std::string& a) const { return own_path() + "/" + a + ".json"; }

  /// Writes `data` to `path` atomically and durably, the temporary file in .store/.
  bool write(const std::string& path, std::string_view data, std::string& error) const {
    return common::write_file_atomically(path, data, error, 0644, own_path());
  }
};

using self_ptr = artifact_store_actor::stateful_pointer<artifact_store_state>;

/// Reads the directory at the start (artifact_store_files.cpp): every
/// artifact with its metadata, the old layout's moved into .store/.
void scan(self_ptr self);

/// Removes the metadata of `name`, durably.
bool forget_metadata(const artifact_store_state& st, const std::string& name,
                     std::string& error);

/// Hands the transport an artifact's contents (mapped from its file) to
/// serve; without them (unreadable), GET /artifacts/<name> answers 4.04.
void publish(self_ptr self, const artifact_info& a);

/// Writes `body` as this member's file of `a` (durably, the metadata after
/// the content), then indexes, serves and announces it.
bool keep_file(self_ptr self, const artifact_info& a, std::string_view body,
               std::string& error);

/// Removes this member's file of `name` (the metadata first), and stops
/// serving and announces it.
bool drop_file(self_ptr self, const std::string& name, std::string& error);

// -- the shared store (artifact_store_shared.cpp) ---------------------------------------

/// Whether the artifacts are the shared store's (cfg.shared_store).
inline bool shared(const artifact_store_state& st) {
  return !st.cfg.shared_store.empty();
}

/// The shared store's table, opened if it is not yet; null (logged) if it
/// cannot be.
artifact_table* table_of(self_ptr self);

/// Notes whether the shared store answered (logs a change, not every call).
bool answered(self_ptr self, bool ok);

/// Brings this member's files in step with the shared store: copies what
/// it has that they lack or hold another version of, drops what it
/// deleted, and adds to it what it never had (files of a server from before
/// it shared its store). False if the store did not answer.
bool sync_with_store(self_ptr self);

/// Copies `a` from the shared store into this member's files.
bool copy_from_store(self_ptr self, const artifact_info& a);

}  // namespace coapfleet::server::artifacts_internal
