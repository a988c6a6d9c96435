// The child's side of run_command (handlers.cpp), between fork() and exec:
// only async-signal-safe calls (setpgid, prctl, sigaction, sigprocmask, chdir, dup2,
// fcntl, open, raw syscalls, execve, write, _exit) and no allocation, since
// the parent may be multi-threaded. Failures before exec go back to the parent
// as {stage, errno} through the CLOEXEC error pipe (stage 1 = chdir, 2 = exec,
// 3 = stdio setup), then the child exits with 127.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace coapfleet::agent::detail {

namespace {

[[noreturn]] void child_report(int errfd, int stage, int err) {
  const int e[2] = {stage, err};
  const char* p = reinterpret_cast<const char*>(e);
  size_t left = sizeof e;
  while (left > 0) {
    ssize_t n = write(errfd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    p += n;
    left -= static_cast<size_t>(n);
  }
  _exit(127);
}

struct linux_dirent64_hdr {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[1];
};

/// Marks every fd >= 3 close-on-exec (the spawn-error pipe already is), so
/// the program starts with exactly stdin/stdout/stderr.
void child_cloexec_all(int maxfd) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return;
#endif
  int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    alignas(8) char buf[4096];
    bool ok = true;
    while (true) {
      long n = syscall(SYS_getdents64, dfd, buf, sizeof buf);
      if (n < 0) { ok = false; break; }
      if (n == 0) break;
      for (long off = 0; off < n;) {
        auto* d = reinterpret_cast<linux_dirent64_hdr*>(buf + off);
        off += d->d_reclen;
        int fd = 0;
        bool digits = d->d_name[0] != '\0';
        for (const char* c = d->d_name; *c; ++c) {
          if (*c < '0' || *c > '9') { digits = false; break; }
          fd = fd * 10 + (*c - '0');
        }
        if (digits && fd >= 3 && fd != dfd) fcntl(fd, F_SETFD, FD_CLOEXEC);
      }
    }
    close(dfd);
    if (ok) return;
  }
  for (int fd = 3; fd < maxfd; ++fd) fcntl(fd, F_SETFD, FD_CLOEXEC);
}

}  // namespace

[[noreturn]] void exec_child(const char* cwd, int devnull, int outw, int errw, int maxfd,
                             const sigset_t& empty_mask, char* const* argv, char* const* envp,
                             const char* const* candidates, size_t ncandidates,
                             pid_t parent) {
  setpgid(0, 0);
  // Dies with the agent's thread that started it (kill -9 of the agent
  // included); what it starts itself is killed through its group by the
  // agent's next life (handler_group.hpp).
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(127);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(sig, &sa, nullptr);  // EINVAL for libc-internal signals: fine
  }
  sigprocmask(SIG_SETMASK, &empty_mask, nullptr);
  if (cwd && *cwd && chdir(cwd) != 0) child_report(errw, 1, errno);
  if (dup2(devnull, 0) < 0 || dup2(outw, 1) < 0 || dup2(outw, 2) < 0)
    child_report(errw, 3, errno);
  child_cloexec_all(maxfd);
  int err = ENOENT;
  bool saw_eacces = false;
  for (size_t i = 0; i < ncandidates; ++i) {
    execve(candidates[i], argv, envp);
    err = errno;
    if (err == EACCES) saw_eacces = true;
    else if (err != ENOENT && err != ENOTDIR && err != ESTALE && err != ENODEV
             && err != ETIMEDOUT)
      break;
  }
  if (saw_eacces && (err == ENOENT || err == ENOTDIR)) err = EACCES;
  child_report(errw, 2, err);
}

}  // namespace coapfleet::agent::detail
