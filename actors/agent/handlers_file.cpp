// The `file` handler: verify the downloaded artifact, then
// install it atomically under the install root (temp file in the destination
// directory, fsync, chmod, rename, fsync of the directory).
#include "actors/agent/handlers.hpp"

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
/// failed update.
install_outcome fail_errno(int err, const std::string& what) {
  bool full = err == ENOSPC || err == EDQUOT;
  return fail(full ? model::update_result::not_enough_storage : model::update_result::update_failed,
              what + ": " + std::strerror(err));
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

/// root + target_path, or "" with `why` set when target_path is not an
/// absolute file path without ".." components.
std::string destination_of(const std::string& root, const std::string& target, std::string& why) {
  if (target.empty() || target[0] != '/') {
    why = "target_path must be absolute";
    return {};
  }
  if (target.find('\0') != std::string::npos) {
    why = "target_path contains a NUL byte";
    return {};
  }
  if (target.back() == '/') {
    why = "target_path names a directory";
    return {};
  }
  std::string rel;
  size_t pos = 1;
  while (pos <= target.size()) {
    size_t slash = target.find('/', pos);
    if (slash == std::string::npos) slash = target.size();
    std::string part = target.substr(pos, slash - pos);
    pos = slash + 1;
    if (part == "..") {
      why = "target_path must not contain '..'";
      return {};
    }
    if (part.empty() || part == ".") continue;
    rel += "/" + part;
  }
  if (rel.empty() || target.substr(target.rfind('/') + 1) == ".") {
    why = "target_path names a directory";
    return {};
  }
  std::string base = root;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + rel;
}

}  // namespace

install_outcome install_file(const model::job_spec& spec, const std::string& downloaded,
                             const std::string& expected_sha256, const handler_config& cfg) {
  using model::update_result;
  const std::string expected = lower(expected_sha256);
  int err = 0;
  const std::string actual = hash_file(downloaded, err);
  if (actual.empty())
    return fail_errno(err, "cannot read downloaded file " + downloaded);
  if (actual != expected)
    return fail(update_result::integrity_check_failed,
                "checksum mismatch: expected " + (expected.empty() ? "(none)" : expected.substr(0, 12))
                    + ", got " + actual.substr(0, 12));

  std::string why;
  const std::string dest = destination_of(cfg.root, spec.target_path, why);
  if (dest.empty()) return fail(update_result::invalid_uri, why + ": " + spec.target_path);
  mode_t mode = 0644;
  if (!parse_mode(spec.mode, mode))
    return fail(update_result::update_failed, "invalid mode \"" + spec.mode + "\"");

  const std::string dir = dest.substr(0, dest.rfind('/'));
  const std::string dir_or_root = dir.empty() ? "/" : dir;
  std::error_code ec;
  std::filesystem::create_directories(dir_or_root, ec);
  if (ec) return fail_errno(ec.value(), "cannot create directory " + dir_or_root);

  // Copy into a temp file next to the destination, hashing what is copied:
  // what gets installed is exactly what was verified.
  common::atomic_file out;
  if (!out.open(dest, mode))
    return fail_errno(out.error_number(), "cannot create a temporary file in " + dir_or_root);
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
      return fail_errno(out.error_number(), "cannot write " + dest);
    }
  }
  close(in);
  const std::string copied = h.hex();
  if (copied != expected)
    return fail(update_result::integrity_check_failed,
                "downloaded file changed while installing: expected " + expected.substr(0, 12)
                    + ", got " + copied.substr(0, 12));
  // fchmod, fsync, rename, fsync of the directory.
  if (!out.commit()) return fail_errno(out.error_number(), out.error());
  install_outcome ok;
  ok.ok = true;
  ok.result = static_cast<int32_t>(update_result::success);
  return ok;
}

}  // namespace coapfleet::agent
