// Child processes for the pip / apt / script handlers: fork + execve without a
// shell, own process group, output captured through one pipe read with poll(),
// timeout with SIGTERM then SIGKILL to the whole group.
//
// Everything that allocates (argv, envp, the PATH candidates) is prepared here
// in the parent before fork(); the child's side (handlers_spawn.cpp) only
// makes async-signal-safe calls, so this is safe in a multi-threaded process.
// The PATH search is done by hand for the same reason (execvp may allocate
// and does not take an environment).
#include "actors/agent/handlers.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace coapfleet::agent {

namespace detail {
// handlers_spawn.cpp: the child's side between fork and exec.
[[noreturn]] void exec_child(const char* cwd, int devnull, int outw, int errw, int maxfd,
                             const sigset_t& empty_mask, char* const* argv, char* const* envp,
                             const char* const* candidates, size_t ncandidates,
                             pid_t parent);
}  // namespace detail

namespace {

using steady = std::chrono::steady_clock;

constexpr size_t tail_max_bytes = 2048;
constexpr int tail_max_lines = 20;
constexpr auto kill_grace = std::chrono::seconds(2);

/// What the child reports through the CLOEXEC pipe when it cannot exec:
/// {stage, errno}, stage 1 = chdir, 2 = exec, 3 = stdio setup.
struct spawn_error {
  int stage;
  int err;
};

/// run_command plus what the handlers need to phrase their messages.
struct run_info {
  command_result res;
  int term_signal = 0;     ///< signal that ended the child, 0 when it exited
  int spawn_stage = 0;     ///< spawn_error::stage when spawn_failed
};

/// Last `tail_max_lines` lines of `buf`, at most `tail_max_bytes` bytes,
/// without trailing line breaks and without a split UTF-8 sequence in front.
std::string make_tail(const std::string& buf) {
  size_t end = buf.size();
  while (end > 0 && (buf[end - 1] == '\n' || buf[end - 1] == '\r')) --end;
  size_t begin = 0;
  int lines = 0;
  for (size_t i = end; i > 0; --i) {
    if (buf[i - 1] == '\n' && ++lines == tail_max_lines) {
      begin = i;
      break;
    }
  }
  if (end - begin > tail_max_bytes) {
    begin = end - tail_max_bytes;
    while (begin < end && (static_cast<unsigned char>(buf[begin]) & 0xC0) == 0x80) ++begin;
  }
  return buf.substr(begin, end - begin);
}

/// Moves `fd` to a number >= 3 (keeping CLOEXEC) so the child's dup2 onto
/// 0/1/2 never hits itself. Returns -1 on failure (fd closed).
int above_stdio(int fd) {
  if (fd < 0 || fd > 2) return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  close(fd);
  return moved;
}

void close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

/// Full paths to try, like execvp: argv0 itself when it has a slash, else
/// each PATH entry (an empty entry means the working directory).
std::vector<std::string> exec_candidates(const std::string& argv0) {
  std::vector<std::string> out;
  if (argv0.find('/') != std::string::npos) {
    out.push_back(argv0);
    return out;
  }
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t pos = 0;
  while (true) {
    size_t colon = p.find(':', pos);
    std::string dir = p.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos);
    out.push_back(dir.empty() ? argv0 : dir + "/" + argv0);
    if (colon == std::string::npos) break;
    pos = colon + 1;
  }
  return out;
}

// -- parent side ---------------------------------------------------------------------

run_info run(const std::vector<std::string>& argv, const std::string& cwd,
             std::chrono::seconds timeout, const std::vector<std::string>& extra_env,
             const std::function<void(int)>& on_child = {}) {
  run_info info;
  command_result& res = info.res;
  auto start = steady::now();
  auto finish = [&] {
    res.seconds = std::chrono::duration<double>(steady::now() - start).count();
    return info;
  };
  auto fail_spawn = [&](int stage, int err, const char* what) {
    res.spawn_failed = true;
    info.spawn_stage = stage;
    res.output_tail = std::string(what ? what : "") + std::strerror(err);
    return finish();
  };
  if (argv.empty() || argv[0].empty()) return fail_spawn(2, ENOENT, "empty command: ");

  // Everything the child needs, allocated before fork.
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  std::vector<std::string> env_store;
  std::vector<char*> cenv;
  char* const* envp = environ;
  if (!extra_env.empty()) {
    for (char** e = environ; e && *e; ++e) {
      std::string_view entry(*e);
      bool replaced = std::any_of(extra_env.begin(), extra_env.end(), [&](const std::string& x) {
        auto eq = x.find('=');
        if (eq == std::string::npos) return false;
        return entry.substr(0, eq + 1) == std::string_view(x).substr(0, eq + 1);
      });
      if (!replaced) env_store.emplace_back(entry);
    }
    env_store.insert(env_store.end(), extra_env.begin(), extra_env.end());
    for (auto& e : env_store) cenv.push_back(e.data());
    cenv.push_back(nullptr);
    envp = cenv.data();
  }
  std::vector<std::string> cand = exec_candidates(argv[0]);
  std::vector<const char*> ccand;
  for (const auto& c : cand) ccand.push_back(c.c_str());
  sigset_t empty_mask;
  sigemptyset(&empty_mask);
  int maxfd = 1024;
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    maxfd = static_cast<int>(std::min<rlim_t>(rl.rlim_cur, 1 << 20));

  int outp[2] = {-1, -1}, errp[2] = {-1, -1};
  int devnull = above_stdio(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (devnull < 0) return fail_spawn(3, errno, "/dev/null: ");
  if (pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
    int err = errno;
    for (int* fd : {&outp[0], &outp[1], &errp[0], &errp[1], &devnull}) close_fd(*fd);
    return fail_spawn(3, err, "pipe: ");
  }
  for (int* fd : {&outp[0], &outp[1], &errp[0], &errp[1]}) *fd = above_stdio(*fd);
  if (outp[0] < 0 || outp[1] < 0 || errp[0] < 0 || errp[1] < 0) {
    int err = errno;
    for (int* fd : {&outp[0], &outp[1], &errp[0], &errp[1], &devnull}) close_fd(*fd);
    return fail_spawn(3, err, "fcntl: ");
  }

  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0)
    detail::exec_child(cwd.c_str(), devnull, outp[1], errp[1], maxfd, empty_mask, cargv.data(), envp,
               ccand.data(), ccand.size(), parent);
  int fork_err = errno;
  close_fd(outp[1]);
  close_fd(errp[1]);
  close_fd(devnull);
  if (pid < 0) {
    close_fd(outp[0]);
    close_fd(errp[0]);
    return fail_spawn(3, fork_err, "fork: ");
  }
  setpgid(pid, pid);  // also done by the child; whichever runs first wins
  if (on_child) on_child(pid);
  struct reaped_notice {  // the group is no longer ours to kill once reaped
    const std::function<void(int)>& f;
    ~reaped_notice() { if (f) f(0); }
  } notice{on_child};

  // Did exec succeed? The pipe closes on exec, or carries a spawn_error.
  spawn_error se{0, 0};
  size_t got = 0;
  while (got < sizeof se) {
    ssize_t n = read(errp[0], reinterpret_cast<char*>(&se) + got, sizeof se - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close_fd(errp[0]);
  if (got == sizeof se) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    close_fd(outp[0]);
    std::string what = se.stage == 1 ? "chdir " + cwd + ": " : "";
    return fail_spawn(se.stage, se.err, what.c_str());
  }

  fcntl(outp[0], F_SETFL, fcntl(outp[0], F_GETFL) | O_NONBLOCK);
  int pidfd = -1;
#ifdef SYS_pidfd_open
  pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#endif
  std::string buf;
  std::vector<char> chunk(64 * 1024);
  auto drain = [&] {
    while (outp[0] >= 0) {
      ssize_t n = read(outp[0], chunk.data(), chunk.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return;  // EAGAIN: nothing more for now
      if (n == 0) { close_fd(outp[0]); return; }
      buf.append(chunk.data(), static_cast<size_t>(n));
      if (buf.size() > 4 * tail_max_bytes) buf.erase(0, buf.size() - 2 * tail_max_bytes);
    }
  };

  const bool has_deadline = timeout.count() > 0;
  const auto deadline = start + timeout;
  steady::time_point kill_at{};
  bool killed = false;
  int status = 0;
  bool reaped = false;
  while (true) {
    auto now = steady::now();
    if (has_deadline && !res.timed_out && now >= deadline) {
      kill(-pid, SIGTERM);
      res.timed_out = true;
      kill_at = now + kill_grace;
    }
    if (res.timed_out && !killed && now >= kill_at) {
      kill(-pid, SIGKILL);
      killed = true;
    }
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid || (w < 0 && errno == ECHILD)) {
      reaped = w == pid;
      break;
    }
    // Sleep until output, the child's exit (pidfd), or the next deadline.
    auto next = steady::time_point::max();
    if (has_deadline && !res.timed_out) next = deadline;
    else if (res.timed_out && !killed) next = kill_at;
    int wait_ms = 50;  // without a pidfd, exits are noticed by polling
    if (pidfd >= 0) wait_ms = -1;
    if (next != steady::time_point::max()) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1;
      wait_ms = wait_ms < 0 ? static_cast<int>(std::min<long long>(ms, 60000))
                            : static_cast<int>(std::min<long long>(ms, wait_ms));
    } else if (wait_ms < 0) {
      wait_ms = 60000;
    }
    pollfd fds[2];
    nfds_t nfds = 0;
    if (outp[0] >= 0) fds[nfds++] = pollfd{outp[0], POLLIN, 0};
    if (pidfd >= 0) fds[nfds++] = pollfd{pidfd, POLLIN, 0};
    int pr = poll(fds, nfds, wait_ms);
    if (pr > 0 && outp[0] >= 0 && fds[0].revents != 0) drain();
  }
  drain();  // what the child wrote before it ended is still in the pipe
  // After a timeout, whatever of the group survived the leader goes too.
  if (res.timed_out) kill(-pid, SIGKILL);
  close_fd(outp[0]);
  close_fd(pidfd);
  if (reaped && WIFEXITED(status)) res.exit_code = WEXITSTATUS(status);
  if (reaped && WIFSIGNALED(status)) info.term_signal = WTERMSIG(status);
  res.output_tail = make_tail(buf);
  return finish();
}

std::string with_tail(std::string msg, const std::string& tail) {
  if (!tail.empty()) msg += ": " + tail;
  return msg;
}

/// Turns a finished run into the outcome reported to the server. `what` names
/// the step in messages ("pip install", "script"); a program that cannot be
/// executed at all is reported with `missing_program_result`.
install_outcome outcome_of(const run_info& info, const std::string& what,
                           const std::string& program, std::chrono::seconds timeout,
                           model::update_result missing_program_result) {
  install_outcome out;
  const command_result& r = info.res;
  if (r.spawn_failed) {
    out.result = static_cast<int32_t>(info.spawn_stage == 2 ? missing_program_result
                                                             : model::update_result::update_failed);
    out.error_message = "cannot run " + program + ": " + r.output_tail;
    return out;
  }
  if (!r.timed_out && r.exit_code == 0) {
    out.ok = true;
    out.result = static_cast<int32_t>(model::update_result::success);
    return out;
  }
  out.result = static_cast<int32_t>(model::update_result::update_failed);
  if (r.timed_out)
    out.error_message = with_tail(
        what + " timed out after " + std::to_string(timeout.count()) + " s", r.output_tail);
  else if (info.term_signal != 0)
    out.error_message = with_tail(what + " was killed by signal "
                                      + std::to_string(info.term_signal),
                                  r.output_tail);
  else
    out.error_message =
        with_tail(what + " exited with code " + std::to_string(r.exit_code), r.output_tail);
  return out;
}

install_outcome no_input(const char* msg) {
  install_outcome out;
  out.result = static_cast<int32_t>(model::update_result::update_failed);
  out.error_message = msg;
  return out;
}

}  // namespace

std::chrono::seconds handler_timeout(const model::job_spec& spec, const handler_config& cfg) {
  return spec.timeout_seconds > 0 ? std::chrono::seconds(spec.timeout_seconds) : cfg.timeout;
}

command_result run_command(const std::vector<std::string>& argv, const std::string& cwd,
                           std::chrono::seconds timeout) {
  return run(argv, cwd, timeout, {}).res;
}

// pip and apt-get that cannot be executed at all (not installed, not
// executable) are reported as 6 (unsupported_package_type): this node cannot
// handle that package type. Every other failure, including a missing state
// directory, is 8 (update_failed).

install_outcome install_pip(const model::job_spec& spec, const handler_config& cfg) {
  if (spec.packages.empty()) return no_input("pip job without packages");
  std::vector<std::string> argv{cfg.pip, "install", "--disable-pip-version-check", "--no-input"};
  argv.insert(argv.end(), cfg.pip_args.begin(), cfg.pip_args.end());
  argv.insert(argv.end(), spec.packages.begin(), spec.packages.end());
  auto timeout = handler_timeout(spec, cfg);
  return outcome_of(run(argv, cfg.state_dir, timeout, {}, cfg.on_child), "pip install", cfg.pip,
                    timeout, model::update_result::unsupported_package_type);
}

install_outcome install_apt(const model::job_spec& spec, const handler_config& cfg) {
  if (spec.packages.empty()) return no_input("apt job without packages");
  std::vector<std::string> argv{cfg.apt_get, "install", "-y", "--no-install-recommends"};
  argv.insert(argv.end(), spec.packages.begin(), spec.packages.end());
  auto timeout = handler_timeout(spec, cfg);
  return outcome_of(run(argv, cfg.state_dir, timeout, {"DEBIAN_FRONTEND=noninteractive"},
                        cfg.on_child),
                    "apt-get install", cfg.apt_get, timeout,
                    model::update_result::unsupported_package_type);
}

install_outcome run_script(const model::job_spec& spec, const handler_config& cfg) {
  if (spec.script.empty()) return no_input("script job without a script");
  auto timeout = handler_timeout(spec, cfg);
  return outcome_of(run({"sh", "-c", spec.script}, cfg.state_dir, timeout, {}, cfg.on_child),
                    "script", "sh", timeout, model::update_result::update_failed);
}

}  // namespace coapfleet::agent
