// The sampling half of the health sampler: reads /proc, /sys, statvfs and
// service states. Every file is read with one open + one read into a stack
// buffer; the process probe walks the proc root once per sample for all
// services together and spawns nothing.
#include "actors/agent/sampler.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "model/json.hpp"

extern char** environ;

namespace coapfleet::agent {

namespace {

using model::absent;
using model::present;

constexpr int systemctl_timeout_ms = 5000;

/// One open + one read + close. Returns the bytes read or -1.
ssize_t read_once(int dirfd, const char* path, char* buf, size_t cap) {
  int fd = ::openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return -1;
  ssize_t n;
  do {
    n = ::read(fd, buf, cap);
  } while (n < 0 && errno == EINTR);
  ::close(fd);
  return n;
}

ssize_t read_once(const std::string& path, char* buf, size_t cap) {
  return read_once(AT_FDCWD, path.c_str(), buf, cap);
}

bool read_cpu(const std::string& proc_root, cpu_times& out) {
  char buf[4096];  // the aggregate "cpu " line comes first
  ssize_t n = read_once(proc_root + "/stat", buf, sizeof buf);
  return n > 0 && parse_proc_stat(std::string_view(buf, static_cast<size_t>(n)), out);
}

bool read_meminfo(const std::string& proc_root, double& used_percent, uint64_t& total_bytes) {
  char buf[4096];  // MemTotal and MemAvailable are the first lines
  ssize_t n = read_once(proc_root + "/meminfo", buf, sizeof buf);
  return n > 0
         && parse_meminfo(std::string_view(buf, static_cast<size_t>(n)), used_percent, total_bytes);
}

double read_uptime(const std::string& proc_root) {
  char buf[128];
  ssize_t n = read_once(proc_root + "/uptime", buf, sizeof buf);
  double s = 0;
  if (n > 0 && parse_uptime(std::string_view(buf, static_cast<size_t>(n)), s)) return s;
  return absent;
}

/// df's "Use%": used / (used + available to unprivileged users).
double disk_used_percent(const std::string& path) {
  struct statvfs st;
  if (::statvfs(path.c_str(), &st) != 0) return absent;
  if (st.f_blocks < st.f_bfree) return absent;
  double used = static_cast<double>(st.f_blocks - st.f_bfree);
  double denom = used + static_cast<double>(st.f_bavail);
  if (denom <= 0) return absent;
  return 100.0 * used / denom;
}

/// Highest temperature over <sys_root>/class/thermal/thermal_zone*/temp;
/// absent when there is no readable zone.
double max_temperature(const std::string& sys_root) {
  DIR* d = ::opendir((sys_root + "/class/thermal").c_str());
  if (!d) return absent;
  int dfd = ::dirfd(d);
  double best = absent;
  char path[sizeof(dirent::d_name) + 8];
  char buf[32];
  while (const dirent* e = ::readdir(d)) {
    if (std::strncmp(e->d_name, "thermal_zone", 12) != 0) continue;
    std::snprintf(path, sizeof path, "%s/temp", e->d_name);
    ssize_t n = read_once(dfd, path, buf, sizeof buf);
    double c = 0;
    if (n > 0 && parse_millidegrees(std::string_view(buf, static_cast<size_t>(n)), c)
        && c > -273.15 && (!present(best) || c > best))
      best = c;
  }
  ::closedir(d);
  return best;
}

bool all_digits(const char* s) {
  if (!*s) return false;
  for (; *s; ++s)
    if (*s < '0' || *s > '9') return false;
  return true;
}

/// False only when <pid>/stat says the process is a zombie (or dead); a
/// missing or unreadable stat counts as alive.
bool alive(int dfd, const char* pid) {
  char path[320];
  char buf[128];
  std::snprintf(path, sizeof path, "%s/stat", pid);
  ssize_t n = read_once(dfd, path, buf, sizeof buf);
  if (n <= 0) return true;
  std::string_view s(buf, static_cast<size_t>(n));
  auto paren = s.rfind(')');
  if (paren == std::string_view::npos || paren + 2 >= s.size()) return true;
  char state = s[paren + 2];
  return state != 'Z' && state != 'X' && state != 'x';
}

/// Sets status[i].second for every status[i].first that names a live process
/// (exact match of <pid>/comm, or of the basename of argv[0] in
/// <pid>/cmdline). One pass over the proc root for all names; stops early
/// once all are found.
void scan_processes(const std::string& proc_root,
                    std::vector<std::pair<std::string, bool>>& status) {
  size_t remaining = 0;
  for (auto& s : status) {
    s.second = false;
    ++remaining;
  }
  if (remaining == 0) return;
  DIR* d = ::opendir(proc_root.c_str());
  if (!d) return;
  int dfd = ::dirfd(d);
  char path[sizeof(dirent::d_name) + 16];
  char comm_buf[64];
  char cmd_buf[512];
  // Marks every not yet found entry named `name`; true when one matched.
  auto mark = [&](std::string_view name, const char* pid) {
    bool matched = false;
    int is_alive = -1;  // not asked yet
    for (auto& s : status) {
      if (s.second || s.first != name) continue;
      if (is_alive < 0) is_alive = alive(dfd, pid) ? 1 : 0;
      if (!is_alive) return false;
      s.second = true;
      --remaining;
      matched = true;
    }
    return matched;
  };
  while (remaining > 0) {
    const dirent* e = ::readdir(d);
    if (!e) break;
    if (!all_digits(e->d_name)) continue;
    std::snprintf(path, sizeof path, "%s/comm", e->d_name);
    ssize_t n = read_once(dfd, path, comm_buf, sizeof comm_buf);
    if (n <= 0) continue;  // gone meanwhile
    std::string_view comm(comm_buf, static_cast<size_t>(n));
    if (!comm.empty() && comm.back() == '\n') comm.remove_suffix(1);
    if (mark(comm, e->d_name)) continue;
    // comm is cut to 15 characters and may be renamed: try argv[0] too.
    std::snprintf(path, sizeof path, "%s/cmdline", e->d_name);
    n = read_once(dfd, path, cmd_buf, sizeof cmd_buf);
    if (n <= 0) continue;  // kernel thread, zombie or gone
    std::string_view cmd(cmd_buf, static_cast<size_t>(n));
    auto nul = cmd.find('\0');
    if (nul == std::string_view::npos) {
      if (static_cast<size_t>(n) == sizeof cmd_buf) continue;  // argv[0] longer than we read
    } else {
      cmd = cmd.substr(0, nul);
    }
    auto slash = cmd.rfind('/');
    if (slash != std::string_view::npos) cmd.remove_prefix(slash + 1);
    if (!cmd.empty() && cmd != comm) mark(cmd, e->d_name);
  }
  ::closedir(d);
}

/// Waits for pid at most timeout_ms, then kills it. Returns the wait status,
/// or -1 when it timed out or could not be reaped.
int wait_bounded(pid_t pid, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto left_ms = [&] {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return left.count() < 0 ? 0 : static_cast<int>(left.count());
  };
  int st = 0;
  bool exited = false;
#ifdef SYS_pidfd_open
  int pfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pfd >= 0) {
    for (;;) {
      pollfd p{pfd, POLLIN, 0};
      int r = ::poll(&p, 1, left_ms());
      if (r > 0) {
        exited = true;
        break;
      }
      if (r == 0 || errno != EINTR) break;
    }
    ::close(pfd);
  } else
#endif
  {
    // No pidfd (kernel < 5.3): poll waitpid with a growing pause.
    long pause_us = 1000;
    for (;;) {
      pid_t r = ::waitpid(pid, &st, WNOHANG);
      if (r == pid) return st;
      if (r < 0 && errno != EINTR) return -1;
      if (left_ms() == 0) break;
      timespec ts{0, pause_us * 1000};
      ::nanosleep(&ts, nullptr);
      if (pause_us < 50000) pause_us *= 2;
    }
  }
  if (!exited) ::kill(pid, SIGKILL);
  pid_t r;
  do {
    r = ::waitpid(pid, &st, 0);
  } while (r < 0 && errno == EINTR);
  if (r != pid || !exited) return -1;
  return st;
}

/// `systemctl is-active --quiet -- <name>`: spawned without a shell, standard
/// streams on /dev/null, at most 5 s. Exit status 0 means active.
bool systemctl_is_active(const std::string& name) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  if (::posix_spawn_file_actions_init(&fa) != 0) return false;
  if (::posix_spawnattr_init(&attr) != 0) {
    ::posix_spawn_file_actions_destroy(&fa);
    return false;
  }
  ::posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  ::posix_spawn_file_actions_adddup2(&fa, 1, 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
  ::posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
  sigset_t none, dflt;
  sigemptyset(&none);
  sigemptyset(&dflt);
  sigaddset(&dflt, SIGPIPE);
  sigaddset(&dflt, SIGCHLD);
  ::posix_spawnattr_setsigmask(&attr, &none);
  ::posix_spawnattr_setsigdefault(&attr, &dflt);
  ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::string arg0 = "systemctl", arg1 = "is-active", arg2 = "--quiet", arg3 = "--", arg4 = name;
  char* argv[] = {arg0.data(), arg1.data(), arg2.data(), arg3.data(), arg4.data(), nullptr};
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, "systemctl", &fa, &attr, argv, environ);
  ::posix_spawn_file_actions_destroy(&fa);
  ::posix_spawnattr_destroy(&attr);
  if (rc != 0) return false;
  int st = wait_bounded(pid, systemctl_timeout_ms);
  return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

bool is_directory(const char* path) {
  struct stat st;
  return ::stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

sampler::sampler(sampler_config cfg) : cfg_(std::move(cfg)) {
  if (!read_cpu(cfg_.proc_root, last_cpu_)) last_cpu_ = cpu_times{};
  switch (cfg_.probe) {
    case service_probe::automatic: systemd_ = is_directory("/run/systemd/system"); break;
    case service_probe::systemd: systemd_ = true; break;
    case service_probe::process: systemd_ = false; break;
  }
}

bool sampler::service_running(const std::string& name) {
  if (systemd_) return systemctl_is_active(name);
  std::vector<std::pair<std::string, bool>> one{{name, false}};
  scan_processes(cfg_.proc_root, one);
  return one.front().second;
}

model::health_report sampler::sample(const std::string& node_id, model::millis now) {
  model::health_report h;
  h.node_id = node_id;
  h.timestamp = model::format_time(now);

  cpu_times cur;
  if (read_cpu(cfg_.proc_root, cur)) {
    double pct = last_cpu_.total != 0 ? cpu_percent(last_cpu_, cur) : absent;
    if (!present(pct)) {
      // No usable baseline (first sample right after construction): take a
      // short fresh reading so the sample still has a number.
      timespec ts{0, 100 * 1000 * 1000};
      while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
      cpu_times again;
      if (read_cpu(cfg_.proc_root, again)) {
        pct = cpu_percent(cur, again);
        cur = again;
      }
    }
    h.cpu_percent = pct;
    last_cpu_ = cur;
  }

  double mem = 0;
  uint64_t mem_total = 0;
  if (read_meminfo(cfg_.proc_root, mem, mem_total)) h.memory_percent = mem;
  h.disk_percent = disk_used_percent(cfg_.disk_path);
  h.temperature = max_temperature(cfg_.sys_root);
  h.uptime_seconds = read_uptime(cfg_.proc_root);

  h.services_status.reserve(cfg_.services.size());
  for (const auto& s : cfg_.services) h.services_status.emplace_back(s, false);
  if (systemd_) {
    for (auto& s : h.services_status) s.second = service_running(s.first);
  } else {
    scan_processes(cfg_.proc_root, h.services_status);
  }

  apply_thresholds(h, cfg_);
  return h;
}

system_facts collect_system_facts(const sampler_config& cfg) {
  system_facts f;
  char host[HOST_NAME_MAX + 1] = {};
  if (::gethostname(host, sizeof host - 1) == 0) f.hostname = host;

  char buf[8192];
  ssize_t n = read_once(cfg.etc_root + "/os-release", buf, sizeof buf);
  if (n <= 0 && cfg.etc_root == "/etc") n = read_once("/usr/lib/os-release", buf, sizeof buf);
  f.os = parse_os_release(n > 0 ? std::string_view(buf, static_cast<size_t>(n)) : std::string_view());

  struct utsname u;
  if (::uname(&u) == 0) {
    f.arch = u.machine;
    f.kernel = u.release;
  }
  long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  f.cpus = cpus > 0 ? static_cast<uint32_t>(cpus) : 1;

  double used = 0;
  uint64_t total = 0;
  if (read_meminfo(cfg.proc_root, used, total)) f.memory_total_bytes = total;
  double up = read_uptime(cfg.proc_root);
  f.uptime_seconds = present(up) ? up : 0;
  return f;
}

}  // namespace coapfleet::agent
