#include "common/durable_file.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace coapfleet::common {

bool write_all(int fd, const void* data, size_t n) {
  auto* p = static_cast<const char*>(data);
  while (n > 0) {
    auto w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

void sync_directory(const std::string& dir) {
  int dfd = ::open(dir.empty() ? "/" : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

namespace {

std::string directory_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos)
    return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

atomic_file::~atomic_file() {
  abandon();
}

bool atomic_file::fail(const std::string& what) {
  errno_ = errno;
  error_ = what + ": " + std::strerror(errno_);
  return false;
}

bool atomic_file::open(const std::string& path, mode_t mode) {
  abandon();
  path_ = path;
  mode_ = mode;
  error_.clear();
  errno_ = 0;
  auto dir = directory_of(path);
  auto slash = path.rfind('/');
  auto name = slash == std::string::npos ? path : path.substr(slash + 1);
  tmp_ = (dir == "/" ? std::string() : dir) + "/." + name + ".tmp.XXXXXX";
  fd_ = ::mkostemp(tmp_.data(), O_CLOEXEC);
  if (fd_ < 0) {
    auto what = "cannot create a temporary file in " + dir;
    tmp_.clear();
    return fail(what);
  }
  return true;
}

bool atomic_file::write(std::string_view data) {
  if (fd_ < 0)
    return false;
  if (!write_all(fd_, data.data(), data.size()))
    return fail("cannot write " + path_);
  return true;
}

bool atomic_file::commit() {
  if (fd_ < 0)
    return false;
  if (::fchmod(fd_, mode_) != 0)
    return fail("cannot chmod " + path_);
  if (::fsync(fd_) != 0)
    return fail("cannot write " + path_);
  int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0)
    return fail("cannot write " + path_);
  if (::rename(tmp_.c_str(), path_.c_str()) != 0)
    return fail("cannot rename into " + path_);
  tmp_.clear();
  sync_directory(directory_of(path_));
  return true;
}

void atomic_file::abandon() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!tmp_.empty()) {
    ::unlink(tmp_.c_str());
    tmp_.clear();
  }
}

bool write_file_atomically(const std::string& path, std::string_view content,
                           std::string& error, mode_t mode) {
  atomic_file f;
  if (f.open(path, mode) && f.write(content) && f.commit())
    return true;
  error = f.error();
  return false;
}

bool read_file(const std::string& path, std::string& out) {
  out.clear();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  char buf[65536];
  ssize_t n;
  for (;;) {
    n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return n == 0;
}

}  // namespace coapfleet::common
