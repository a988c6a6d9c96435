// Durable file writes: a file appears whole under its name, or not at all,
// and survives a power loss once the call returned (temp file beside the
// target, fsync, rename, fsync of the directory). The one implementation the
// server's artifact store and the agent's journal and file installs share.
#pragma once

#include <string>
#include <string_view>
#include <sys/types.h>

namespace coapfleet::common {

/// write() until all of `n` bytes are written, retrying on EINTR.
bool write_all(int fd, const void* data, size_t n);

/// A file being written that replaces `path` atomically on commit(). The
/// temporary file lives in the same directory (a rename never crosses file
/// systems) and is named `.<name>.tmp.XXXXXX` (or lives in a directory of
/// the caller's, see open()). Not committed = removed.
/// Everything after open happens relative to the directory's descriptor, so
/// a directory reached safely (see common/beneath.hpp) stays the one written.
class atomic_file {
public:
  atomic_file() = default;
  ~atomic_file();
  atomic_file(const atomic_file&) = delete;
  atomic_file& operator=(const atomic_file&) = delete;

  /// Creates the temporary file for `path`; false (and error()) on failure.
  bool open(const std::string& path, mode_t mode = 0644);
  /// The same with the temporary file in the directory `tmp_dir` instead of
  /// beside `path` (on the same file system: commit renames it across), for
  /// a directory that must hold nothing but finished files.
  bool open(const std::string& path, mode_t mode, const std::string& tmp_dir);
  /// Creates the temporary file for `name` (one path component) in the open
  /// directory `dir_fd` (duplicated; the caller keeps its own). `shown` is the
  /// path that messages name.
  bool open_in(int dir_fd, const std::string& name, mode_t mode, const std::string& shown);
  bool write(std::string_view data);
  /// fchmod, fsync, close, rename over `path` (a symbolic link there is
  /// replaced, not followed), fsync the directory.
  bool commit();
  /// Removes the temporary file (also done by the destructor).
  void abandon();

  /// What failed, with the path and strerror (empty while all is well).
  const std::string& error() const { return error_; }
  /// errno of the failure (0 while all is well).
  int error_number() const { return errno_; }

private:
  bool fail(const std::string& what);
  /// open()'s work once the directories are open (duplicated, not taken).
  bool start(int dir_fd, int tmp_dir_fd, const std::string& name, mode_t mode,
             const std::string& shown, const std::string& tmp_shown);
  int temp_directory() const { return tmp_dir_fd_ >= 0 ? tmp_dir_fd_ : dir_fd_; }
  void close_directory();
  std::string path_;  ///< as messages name it
  std::string name_;  ///< the final name in the directory
  std::string tmp_;   ///< the temporary file's name in its directory
  mode_t mode_ = 0644;
  int dir_fd_ = -1;
  int tmp_dir_fd_ = -1;  ///< where the temporary file is, when not in dir_fd_
  int fd_ = -1;
  std::string error_;
  int errno_ = 0;
};

/// Writes `content` to `path` atomically and durably; false and `error` on
/// failure. The temporary file is beside `path`, or in `tmp_dir` when given.
bool write_file_atomically(const std::string& path, std::string_view content,
                           std::string& error, mode_t mode = 0644,
                           const std::string& tmp_dir = {});

/// Reads a whole file; false when it cannot be opened or read.
bool read_file(const std::string& path, std::string& out);

}  // namespace coapfleet::common
