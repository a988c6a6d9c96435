#include "common/durable_file.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/random.h>
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

namespace {

std::string directory_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos)
    return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

/// Six characters for a temporary name; O_EXCL makes it unique, the
/// randomness only makes a collision (and a retry) unlikely.
std::string random_suffix() {
  static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  unsigned char bytes[6] = {};
  if (::getrandom(bytes, sizeof bytes, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof bytes)) {
    static unsigned counter = 0;
    auto v = static_cast<unsigned>(::getpid()) * 2654435761u + ++counter;
    for (auto& b : bytes) {
      b = static_cast<unsigned char>(v);
      v = v * 1103515245u + 12345u;
    }
  }
  std::string out;
  for (auto b : bytes)
    out.push_back(letters[b % (sizeof letters - 1)]);
  return out;
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
  return open(path, mode, {});
}

bool atomic_file::open(const std::string& path, mode_t mode, const std::string& tmp_dir) {
  abandon();
  auto dir = directory_of(path);
  auto slash = path.rfind('/');
  auto name = slash == std::string::npos ? path : path.substr(slash + 1);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    path_ = path;
    return fail("cannot create a temporary file in " + dir);
  }
  int tfd = -1;
  if (!tmp_dir.empty()) {
    tfd = ::open(tmp_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (tfd < 0) {
      ::close(dfd);
      path_ = path;
      return fail("cannot create a temporary file in " + tmp_dir);
    }
  }
  bool ok = start(dfd, tfd, name, mode, path, tmp_dir.empty() ? dir : tmp_dir);
  ::close(dfd);
  if (tfd >= 0)
    ::close(tfd);
  return ok;
}

bool atomic_file::open_in(int dir_fd, const std::string& name, mode_t mode,
                          const std::string& shown) {
  abandon();
  return start(dir_fd, -1, name, mode, shown, directory_of(shown));
}

bool atomic_file::start(int dir_fd, int tmp_dir_fd, const std::string& name, mode_t mode,
                        const std::string& shown, const std::string& tmp_shown) {
  path_ = shown;
  name_ = name;
  mode_ = mode;
  error_.clear();
  errno_ = 0;
  const auto where = "cannot create a temporary file in " + tmp_shown;
  dir_fd_ = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (dir_fd_ < 0)
    return fail(where);
  if (tmp_dir_fd >= 0 && (tmp_dir_fd_ = ::fcntl(tmp_dir_fd, F_DUPFD_CLOEXEC, 0)) < 0) {
    fail(where);
    close_directory();
    return false;
  }
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto tmp = "." + name + ".tmp." + random_suffix();
    // O_NOFOLLOW: never through a link someone put there under that name.
    fd_ = ::openat(temp_directory(), tmp.c_str(),
                   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd_ >= 0) {
      tmp_ = std::move(tmp);
      return true;
    }
    if (errno != EEXIST)
      break;
  }
  fail(where);
  close_directory();
  return false;
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
  if (::renameat(temp_directory(), tmp_.c_str(), dir_fd_, name_.c_str()) != 0)
    return fail("cannot rename into " + path_);
  tmp_.clear();
  // Some file systems refuse fsync on directories (EINVAL): the file is in
  // place then anyway.
  ::fsync(dir_fd_);
  if (tmp_dir_fd_ >= 0)
    ::fsync(tmp_dir_fd_);
  close_directory();
  return true;
}

void atomic_file::close_directory() {
  for (int* fd : {&dir_fd_, &tmp_dir_fd_})
    if (*fd >= 0) {
      ::close(*fd);
      *fd = -1;
    }
}

void atomic_file::abandon() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!tmp_.empty() && dir_fd_ >= 0)
    ::unlinkat(temp_directory(), tmp_.c_str(), 0);
  tmp_.clear();
  close_directory();
}

bool write_file_atomically(const std::string& path, std::string_view content,
                           std::string& error, mode_t mode, const std::string& tmp_dir) {
  atomic_file f;
  if (f.open(path, mode, tmp_dir) && f.write(content) && f.commit())
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
