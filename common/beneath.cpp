#include "common/beneath.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#endif

namespace coapfleet::common {

namespace {

constexpr int dir_flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;

/// "/a/b" for the first `n` parts, as the job's target_path names them.
std::string shown(const std::vector<std::string>& parts, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i)
    out += "/" + parts[i];
  return out;
}

/// "a/b" for the first `n` parts, relative to the root.
std::string relative(const std::vector<std::string>& parts, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i)
    out += (i ? "/" : "") + parts[i];
  return out;
}

beneath_result failed(int err, std::string what, bool outside = false) {
  beneath_result r;
  r.err = err;
  r.outside = outside;
  r.error = std::move(what);
  return r;
}

/// openat2(dir, path, O_DIRECTORY, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
/// -1 and errno (ENOSYS where the kernel or the headers have no openat2).
int openat2_beneath(int dir, const std::string& path) {
#if defined(SYS_openat2) && defined(RESOLVE_BENEATH)
  struct open_how how {};
  how.flags = dir_flags;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  for (int attempt = 0;; ++attempt) {
    long fd = ::syscall(SYS_openat2, dir, path.c_str(), &how, sizeof how);
    // EAGAIN: a rename somewhere raced the lookup; the kernel asks to retry.
    if (fd < 0 && (errno == EAGAIN || errno == EINTR) && attempt < 16)
      continue;
    return static_cast<int>(fd);
  }
#else
  (void)dir;
  (void)path;
  errno = ENOSYS;
  return -1;
#endif
}

/// No openat2 here: the kernel lacks it, or a seccomp filter refuses it.
bool no_openat2(int err) {
  return err == ENOSYS || err == EPERM;
}

/// Why component `n` (1-based) could not be opened, in words.
beneath_result refusal(const std::vector<std::string>& parts, size_t n, int err, bool walking) {
  auto at = shown(parts, n);
  switch (err) {
    case EXDEV:
      return failed(err, at + " is (or leads through) a symbolic link that is absolute or climbs "
                              "above the install root", true);
    case ELOOP:
      return walking ? failed(err, at + " is a symbolic link, and without openat2 (Linux 5.6+) "
                                        "the agent follows none", true)
                     : failed(err, at + ": too many symbolic links, or a link the agent does "
                                    "not follow", true);
    case ENOTDIR: return failed(err, at + " is not a directory");
    default: return failed(err, "cannot open directory " + at + ": " + std::strerror(err));
  }
}

/// The walk: one component at a time from the root, O_NOFOLLOW, so that no
/// symbolic link is ever followed.
beneath_result walk(int root_fd, const std::vector<std::string>& parts, bool create) {
  int cur = ::fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
  if (cur < 0)
    return failed(errno, std::string("cannot open the install root: ") + std::strerror(errno));
  for (size_t i = 0; i < parts.size(); ++i) {
    const char* name = parts[i].c_str();
    int next = ::openat(cur, name, dir_flags | O_NOFOLLOW);
    if (next < 0 && errno == ENOENT && create) {
      if (::mkdirat(cur, name, 0755) != 0 && errno != EEXIST) {
        int e = errno;
        ::close(cur);
        return failed(e, "cannot create directory " + shown(parts, i + 1) + ": "
                           + std::strerror(e));
      }
      next = ::openat(cur, name, dir_flags | O_NOFOLLOW);
    }
    if (next < 0) {
      int e = errno;
      // O_NOFOLLOW | O_DIRECTORY on a link: ELOOP, or ENOTDIR on some kernels.
      struct stat st {};
      if ((e == ELOOP || e == ENOTDIR) && ::fstatat(cur, name, &st, AT_SYMLINK_NOFOLLOW) == 0
          && S_ISLNK(st.st_mode))
        e = ELOOP;
      ::close(cur);
      return refusal(parts, i + 1, e, true);
    }
    ::close(cur);
    cur = next;
  }
  beneath_result r;
  r.fd = cur;
  return r;
}

/// openat2: each prefix resolved from the root with RESOLVE_BENEATH, so a
/// link is followed only while it stays beneath the root; a missing
/// component is made in the directory the prefix before it resolved to.
beneath_result kernel(int root_fd, const std::vector<std::string>& parts, bool create) {
  int cur = ::fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
  if (cur < 0)
    return failed(errno, std::string("cannot open the install root: ") + std::strerror(errno));
  for (size_t i = 0; i < parts.size(); ++i) {
    auto prefix = relative(parts, i + 1);
    int next = openat2_beneath(root_fd, prefix);
    if (next < 0 && errno == ENOENT && create) {
      if (::mkdirat(cur, parts[i].c_str(), 0755) != 0 && errno != EEXIST) {
        int e = errno;
        ::close(cur);
        return failed(e, "cannot create directory " + shown(parts, i + 1) + ": "
                           + std::strerror(e));
      }
      next = openat2_beneath(root_fd, prefix);
    }
    if (next < 0) {
      int e = errno;
      ::close(cur);
      if (no_openat2(e))
        return failed(ENOSYS, "openat2 is not available");
      return refusal(parts, i + 1, e, false);
    }
    ::close(cur);
    cur = next;
  }
  beneath_result r;
  r.fd = cur;
  return r;
}

}  // namespace

bool kernel_resolves_beneath() {
  int fd = openat2_beneath(AT_FDCWD, ".");
  if (fd >= 0) {
    ::close(fd);
    return true;
  }
  return !no_openat2(errno);
}

beneath_result open_directory_beneath(int root_fd, const std::vector<std::string>& parts,
                                      bool create, beneath_resolver how) {
  if (how == beneath_resolver::walk)
    return walk(root_fd, parts, create);
  auto r = kernel(root_fd, parts, create);
  if (how == beneath_resolver::automatic && r.fd < 0 && r.err == ENOSYS)
    return walk(root_fd, parts, create);
  return r;
}

}  // namespace coapfleet::common
