#include "actors/agent/handler_group.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <sstream>

#include "common/durable_file.hpp"

namespace coapfleet::agent {

namespace {

std::string boot_id() {
  std::string text;
  if (!common::read_file("/proc/sys/kernel/random/boot_id", text))
    return "unknown";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.pop_back();
  return text;
}

/// Field 22 of /proc/<pid>/stat (the start time in ticks since boot); 0 when
/// the process is gone. The command name (field 2) may hold spaces and
/// parentheses: the fields after it start after its last ')'.
unsigned long long start_ticks(int pid) {
  std::string text;
  if (!common::read_file("/proc/" + std::to_string(pid) + "/stat", text))
    return 0;
  auto close = text.rfind(')');
  if (close == std::string::npos)
    return 0;
  std::istringstream in(text.substr(close + 1));
  std::string field;
  // After ')': state is field 3, starttime is field 22: skip 19 fields.
  for (int i = 3; i < 22 && (in >> field); ++i) {
  }
  unsigned long long ticks = 0;
  in >> ticks;
  return ticks;
}

}  // namespace

bool record_handler_group(const std::string& path, int pgid, std::string& error) {
  auto ticks = start_ticks(pgid);
  auto text = std::to_string(pgid) + " " + std::to_string(ticks) + " " + boot_id() + "\n";
  return common::write_file_atomically(path, text, error, 0600);
}

void clear_handler_group(const std::string& path) { ::unlink(path.c_str()); }

bool signal_group(int pgid, int sig) {
  if (pgid <= 0)
    return false;
  return ::kill(-pgid, sig) == 0 || errno != ESRCH;
}

std::string kill_leftover_group(const std::string& path) {
  std::string text;
  if (!common::read_file(path, text))
    return {};
  clear_handler_group(path);
  std::istringstream in(text);
  int pgid = 0;
  unsigned long long ticks = 0;
  std::string boot;
  if (!(in >> pgid >> ticks >> boot) || pgid <= 1)
    return "ignoring a damaged handler group record " + path;
  auto what = "process group " + std::to_string(pgid) + " of a handler the previous agent ran";
  if (boot != boot_id())
    return what + " is from before a reboot: gone";
  // The leader may be gone (its parent's death killed it) while what it
  // started lives on in the group; while any member lives, the kernel
  // never gives the group's number to another process.
  auto leader = start_ticks(pgid);
  if (leader != 0 && leader != ticks)
    return what + " is gone (the number now belongs to another process)";
  if (!signal_group(pgid, SIGKILL))
    return what + " had ended";
  return what + " was still running: killed";
}

}  // namespace coapfleet::agent
