// The `file` handler and SHA-256 helpers: verify the downloaded artifact, then
// install it atomically under the install root (temp file in the destination
// directory, fsync, chmod, rename, fsync of the directory).
#include "actors/agent/handlers.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
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

struct md_ctx_free {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using md_ctx = std::unique_ptr<EVP_MD_CTX, md_ctx_free>;

/// Incremental SHA-256 over OpenSSL's EVP interface.
class sha256 {
public:
  sha256() : ctx_(EVP_MD_CTX_new()) {
    ok_ = ctx_ && EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) == 1;
  }
  void update(const void* data, size_t n) {
    if (ok_ && n > 0) ok_ = EVP_DigestUpdate(ctx_.get(), data, n) == 1;
  }
  /// Lower-case hex digest, "" if OpenSSL failed.
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!ok_ || EVP_DigestFinal_ex(ctx_.get(), md, &len) != 1) return {};
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * len);
    for (unsigned int i = 0; i < len; ++i) {
      out.push_back(digits[md[i] >> 4]);
      out.push_back(digits[md[i] & 0xF]);
    }
    return out;
  }

private:
  md_ctx ctx_;
  bool ok_ = false;
};

/// read() that retries on EINTR.
ssize_t read_some(int fd, char* buf, size_t n) {
  ssize_t r;
  do r = read(fd, buf, n);
  while (r < 0 && errno == EINTR);
  return r;
}

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

/// SHA-256 of a file; "" and `err` set when it cannot be read.
std::string hash_file(const std::string& path, int& err) {
  err = 0;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    err = errno;
    return {};
  }
  sha256 h;
  std::unique_ptr<char[]> buf(new char[chunk_size]);
  while (true) {
    ssize_t n = read_some(fd, buf.get(), chunk_size);
    if (n < 0) {
      err = errno;
      close(fd);
      return {};
    }
    if (n == 0) break;
    h.update(buf.get(), static_cast<size_t>(n));
  }
  close(fd);
  std::string out = h.hex();
  if (out.empty()) err = EIO;
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

std::string sha256_hex(std::string_view data) {
  sha256 h;
  h.update(data.data(), data.size());
  return h.hex();
}

std::string sha256_file(const std::string& path) {
  int err = 0;
  return hash_file(path, err);
}

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
  std::string tmp = dir + "/." + dest.substr(dest.rfind('/') + 1) + ".tmp.XXXXXX";
  int out = mkostemp(tmp.data(), O_CLOEXEC);
  if (out < 0) return fail_errno(errno, "cannot create a temporary file in " + dir_or_root);
  auto abandon = [&](install_outcome o) {
    if (out >= 0) close(out);
    unlink(tmp.c_str());
    return o;
  };
  int in = open(downloaded.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return abandon(fail_errno(errno, "cannot read downloaded file " + downloaded));
  sha256 h;
  std::unique_ptr<char[]> buf(new char[chunk_size]);
  while (true) {
    ssize_t n = read_some(in, buf.get(), chunk_size);
    if (n < 0) {
      int e = errno;
      close(in);
      return abandon(fail_errno(e, "cannot read downloaded file " + downloaded));
    }
    if (n == 0) break;
    h.update(buf.get(), static_cast<size_t>(n));
    if (!write_all(out, buf.get(), static_cast<size_t>(n))) {
      int e = errno;
      close(in);
      return abandon(fail_errno(e, "cannot write " + dest));
    }
  }
  close(in);
  const std::string copied = h.hex();
  if (copied != expected)
    return abandon(fail(update_result::integrity_check_failed,
                        "downloaded file changed while installing: expected "
                            + expected.substr(0, 12) + ", got " + copied.substr(0, 12)));
  if (fchmod(out, mode) != 0) return abandon(fail_errno(errno, "cannot chmod " + dest));
  if (fsync(out) != 0) return abandon(fail_errno(errno, "cannot write " + dest));
  int rc = close(out);
  out = -1;
  if (rc != 0) return abandon(fail_errno(errno, "cannot write " + dest));
  if (rename(tmp.c_str(), dest.c_str()) != 0)
    return abandon(fail_errno(errno, "cannot rename into " + dest));

  // Make the rename durable. Some file systems refuse fsync on directories
  // (EINVAL); the file itself is in place by now, so that is not a failure.
  int dfd = open(dir_or_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  install_outcome ok;
  ok.ok = true;
  ok.result = static_cast<int32_t>(update_result::success);
  return ok;
}

}  // namespace coapfleet::agent
