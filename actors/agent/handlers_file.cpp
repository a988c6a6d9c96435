// The `file` handler: verify the downloaded artifact, then
// install it atomically under the install root (temp file in the destination
// directory, fsync, chmod, rename, fsync of the directory). The destination
// directory is reached beneath the root without leaving it
// (common/beneath.hpp), and setuid, setgid and sticky bits are refused
// unless the agent allows them (--allow-setid).
#include "actors/agent/handlers.hpp"

#include "common/beneath.hpp"
#include "common/durable_file.hpp"
#include "common/sha256.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

namespace coapfleet::agent {

namespace {

constexpr size_t chunk_size = 64 * 1024;

/// read() that retries on EINTR.
ssize_t read_some(int fd, char* buf, size_t n) {
  ssize_t r;
  do r = read(fd, buf, n);
  while (r < 0 && errno == EINTR);
  return r;
}

/// SHA-256 of a file; "" and `err` set when it cannot be read.
std::string hash_file(const std::string& path, int& err) {
  auto out = common::sha256_of_file(path, err);
  if (out.empty() && err == 0)
    err = EIO;
  return out;
}

install_outcome fail(model::update_result code, std::string msg) {
  install_outcome out;
  out.result = static_cast<int32_t>(code);
  out.error_message = std::move(msg);
  return out;
}

/// Disk full (or over quota) is "not enough storage"; anything else is a
/// failed update. `said` is a message that already names the error.
install_outcome fail_said(int err, std::string said) {
  bool full = err == ENOSPC || err == EDQUOT;
  return fail(full ? model::update_result::not_enough_storage : model::update_result::update_failed,
              std::move(said));
}

install_outcome fail_errno(int err, const std::string& what) {
  return fail_said(err, what + ": " + std::strerror(err));
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/// "0755" / "755" / "4755" -> mode bits; false if not an octal number <= 07777.
bool parse_mode(const std::string& s, mode_t& out) {
  if (s.empty()) {
    out = 0644;
    return true;
  }
  if (s.size() > 6 || s.find_first_not_of("01234567") != std::string::npos) return false;
  long v = std::strtol(s.c_str(), nullptr, 8);
  if (v < 0 || v > 07777) return false;
  out = static_cast<mode_t>(v);
  return true;
}

/// "the setuid bit", "the setgid and sticky bits": the special bits of `mode`.
std::string special_bits(mode_t mode) {
  std::vector<std::string> names;
  if (mode & S_ISUID) names.emplace_back("setuid");
  if (mode & S_ISGID) names.emplace_back("setgid");
  if (mode & S_ISVTX) names.emplace_back("sticky");
  std::string out = "the ";
  for (size_t i = 0; i < names.size(); ++i)
    out += (i == 0 ? "" : i + 1 == names.size() ? " and " : ", ") + names[i];
  return out + (names.size() > 1 ? " bits" : " bit");
}

/// target_path's directory components and its file name, or `why` when it
/// is not an absolute file path without ".." components.
bool split_target(const std::string& target, std::vector<std::string>& dirs, std::string& name,
                  std::string& why) {
  if (target.empty() || target[0] != '/') {
    why = "target_path must be absolute";
    return false;
  }
  if (target.find('\0') != std::string::npos) {
    why = "target_path contains a NUL byte";
    return false;
  }
  if (target.back() == '/') {
    why = "target_path names a directory";
    return false;
  }
  std::vector<std::string> parts;
  size_t pos = 1;
  while (pos <= target.size()) {
    size_t slash = target.find('/', pos);
    if (slash == std::string::npos) slash = target.size();
    std::string part = target.substr(pos, slash - pos);
    pos = slash + 1;
    if (part == "..") {
      why = "target_path must not contain '..'";
      return false;
    }
    if (part.empty() || part == ".") continue;
    parts.push_back(std::move(part));
  }
  if (parts.empty() || target.substr(target.rfind('/') + 1) == ".") {
    why = "target_path names a directory";
    return false;
  }
  name = std::move(parts.back());
  parts.pop_back();
  dirs = std::move(parts);
  return true;
}

/// The install root without trailing slashes ("/" stays "/").
std::string root_of(const handler_config& cfg) {
  std::string base = cfg.root.empty() ? std::string("/") : cfg.root;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  return base;
}

/// Closes a descriptor when it goes out of scope.
struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

install_outcome check_file_job(const model::job_spec& spec, const handler_config& cfg) {
  using model::update_result;
  std::vector<std::string> dirs;
  std::string name, why;
  if (!split_target(spec.target_path, dirs, name, why))
    return fail(update_result::invalid_uri, why + ": " + spec.target_path);
  mode_t mode = 0644;
  if (!parse_mode(spec.mode, mode))
    return fail(update_result::update_failed, "invalid mode \"" + spec.mode + "\"");
  if ((mode & (S_ISUID | S_ISGID | S_ISVTX)) != 0 && !cfg.allow_setid)
    return fail(update_result::update_failed,
                "mode " + spec.mode + " refused: it sets " + special_bits(mode)
                  + "; this agent installs no setuid, setgid or sticky files (start it with "
                    "--allow-setid to allow them)");
  install_outcome ok;
  ok.ok = true;
  ok.result = static_cast<int32_t>(update_result::success);
  return ok;
}

install_outcome install_file(const model::job_spec& spec, const std::string& downloaded,
                             const std::string& expected_sha256, const handler_config& cfg) {
  using model::update_result;
  auto allowed = check_file_job(spec, cfg);
  if (!allowed.ok) return allowed;
  const std::string expected = lower(expected_sha256);
  int err = 0;
  const std::string actual = hash_file(downloaded, err);
  if (actual.empty())
    return fail_errno(err, "cannot read downloaded file " + downloaded);
  if (actual != expected)
    return fail(update_result::integrity_check_failed,
                "checksum mismatch: expected " + (expected.empty() ? "(none)" : expected.substr(0, 12))
                    + ", got " + actual.substr(0, 12));

  std::vector<std::string> dirs;
  std::string name, why;
  split_target(spec.target_path, dirs, name, why);
  mode_t mode = 0644;
  parse_mode(spec.mode, mode);

  // The root itself is the agent's configuration: it may be (or run
  // through) a symbolic link. Everything beneath it is resolved from its
  // descriptor and never leaves it (common/beneath.hpp).
  const std::string root = root_of(cfg);
  std::error_code ec;
  std::filesystem::create_directories(root, ec);
  fd_guard root_fd{::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (root_fd.fd < 0) return fail_errno(errno, "cannot open the install root " + root);
  auto dir = common::open_directory_beneath(root_fd.fd, dirs, true);
  if (dir.fd < 0) {
    if (dir.outside)
      return fail(update_result::invalid_uri,
                  "target_path " + spec.target_path + " refused: " + dir.error
                    + "; file jobs stay inside the install root " + root);
    return fail_said(dir.err, dir.error + " (under the install root " + root + ")");
  }
  fd_guard dir_fd{dir.fd};
  std::string dest = root == "/" ? std::string() : root;
  for (auto& d : dirs) dest += "/" + d;
  dest += "/" + name;

  // Copy into a temp file next to the destination, hashing what is copied:
  // what gets installed is exactly what was verified.
  common::atomic_file out;
  if (!out.open_in(dir_fd.fd, name, mode, dest))
    return fail_said(out.error_number(), out.error());
  int in = open(downloaded.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return fail_errno(errno, "cannot read downloaded file " + downloaded);
  common::sha256 h;
  std::unique_ptr<char[]> buf(new char[chunk_size]);
  while (true) {
    ssize_t n = read_some(in, buf.get(), chunk_size);
    if (n < 0) {
      int e = errno;
      close(in);
      return fail_errno(e, "cannot read downloaded file " + downloaded);
    }
    if (n == 0) break;
    h.update(buf.get(), static_cast<size_t>(n));
    if (!out.write(std::string_view(buf.get(), static_cast<size_t>(n)))) {
      close(in);
      return fail_said(out.error_number(), out.error());
    }
  }
  close(in);
  const std::string copied = h.hex();
  if (copied != expected)
    return fail(update_result::integrity_check_failed,
                "downloaded file changed while installing: expected " + expected.substr(0, 12)
                    + ", got " + copied.substr(0, 12));
  // With a health check, the file it replaces is kept (a hard link beside
  // it) until the check passed: a failed check restores it.
  install_outcome ok;
  if (!spec.health_check.empty()) {
    const std::string prev = name + ".coapfleet-prev";
    ::unlinkat(dir_fd.fd, prev.c_str(), 0);
    if (::linkat(dir_fd.fd, name.c_str(), dir_fd.fd, prev.c_str(), 0) == 0)
      ok.had_previous = true;
    else if (errno != ENOENT)
      return fail_errno(errno, "cannot keep the previous " + dest + " for a rollback");
    ok.installed_path = dest;
    ok.previous_path = dest + ".coapfleet-prev";
  }
  // fchmod, fsync, rename (over whatever has the name, a link included:
  // it is replaced, not followed), fsync of the directory.
  if (!out.commit()) return fail_said(out.error_number(), out.error());
  ok.ok = true;
  ok.result = static_cast<int32_t>(update_result::success);
  return ok;
}

}  // namespace coapfleet::agent
