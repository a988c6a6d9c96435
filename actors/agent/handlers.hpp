// What the installer runs for each package_type: child processes with a
// timeout and the tail of their output, SHA-256 checks, atomic file installs.
// Plain functions (blocking): the installer actor runs them on its own thread.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "model/types.hpp"

namespace coapfleet::agent {

struct command_result {
  int exit_code = -1;          ///< exit status, or -1 when killed / not started
  bool timed_out = false;      ///< killed after the timeout
  bool spawn_failed = false;   ///< the program could not be executed
  std::string output_tail;     ///< last lines of stdout+stderr (at most ~2 KiB)
  double seconds = 0;
};

/// Runs argv[0] (searched in PATH) with stdin from /dev/null, stdout and
/// stderr captured together, in `cwd`; kills the whole process group at the
/// timeout (SIGTERM, then SIGKILL after 2 s).
command_result run_command(const std::vector<std::string>& argv, const std::string& cwd,
                           std::chrono::seconds timeout);

struct handler_config {
  std::string pip = "pip3";            ///< pip executable
  std::vector<std::string> pip_args;   ///< extra arguments, e.g. {"--target", "/tmp/x"}
  std::string apt_get = "apt-get";
  std::string root = "/";              ///< install root for file jobs
  /// File jobs may install setuid, setgid and sticky files (--allow-setid).
  bool allow_setid = false;
  std::string state_dir = ".";         ///< cwd of scripts, downloads live here
  std::chrono::seconds timeout{600};   ///< per handler run, unless the job says otherwise
  /// Called on the handler's thread with the process group of each child it
  /// starts (right after fork) and with 0 once that child is reaped, so a
  /// supervisor can kill the group if the handler itself cannot.
  std::function<void(int pgid)> on_child;
};

/// How a handler ended, in the terms reported to the server.
struct install_outcome {
  bool ok = false;
  int32_t result = 0;         ///< LwM2M update result code (model::update_result)
  std::string error_message;  ///< why it failed: command, exit code, last output lines
  /// A file job with a health check: where the file went, and where the one
  /// it replaced waits until the check passed (had_previous: there was one).
  std::string installed_path, previous_path;
  bool had_previous = false;
  bool rolled_back = false;   ///< the health check failed: what was there is back
};

/// How long a handler may run: the job's timeout_seconds, else the configured one.
std::chrono::seconds handler_timeout(const model::job_spec& spec, const handler_config& cfg);

/// `pip install <pip_args...> <packages...>`.
install_outcome install_pip(const model::job_spec& spec, const handler_config& cfg);
/// `apt-get install -y <packages...>` (name or name=version).
install_outcome install_apt(const model::job_spec& spec, const handler_config& cfg);
/// `sh -c <script>` in the state directory.
install_outcome run_script(const model::job_spec& spec, const handler_config& cfg);
/// Whether a file job may be installed as it is specified: its target_path
/// is absolute without "..", its mode octal and without setuid, setgid and
/// sticky bits unless `cfg.allow_setid`. A refusal says why (and the result
/// code); checked before the download, and again by install_file.
install_outcome check_file_job(const model::job_spec& spec, const handler_config& cfg);
/// Verifies `downloaded` against `expected_sha256` (hex), then installs it at
/// root + target_path atomically (temp file in the same directory, fsync,
/// rename; the old file stays until the new one is complete), with `mode`
/// (octal string) when given. Creates missing parent directories. The
/// target's directory is resolved beneath the root and never leaves it: a
/// symbolic link on the way is followed only while it stays beneath the
/// root (where the kernel has openat2; without it none is followed), and a
/// link at the final name is replaced, not followed (common/beneath.hpp).
install_outcome install_file(const model::job_spec& spec, const std::string& downloaded,
                             const std::string& expected_sha256, const handler_config& cfg);

}  // namespace coapfleet::agent
