// The agent's install handlers on real processes and files in temporary
// directories: run_command, the pip / apt / script handlers (with fake pip
// and apt-get scripts, and a real pip install of a wheel built here, offline;
// pip missing is a failure), the atomic file install and SHA-256.
#include "actors/agent/handlers.hpp"
#include "common/sha256.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace coapfleet;
using namespace coapfleet::agent;
namespace fs = std::filesystem;
using std::chrono::seconds;
using common::sha256_hex;

namespace {

std::string sha256_file(const std::string& path) {
  int err = 0;
  return common::sha256_of_file(path, err);
}

/// A fresh directory from mkdtemp, removed with its content at the end.
struct temp_dir {
  std::string path;
  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "agent_handlers_test.XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  REQUIRE(out.good());
  out << content;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_script(const std::string& path, const std::string& body) {
  write_file(path, "#!/bin/sh\n" + body);
  REQUIRE(chmod(path.c_str(), 0755) == 0);
}

/// Names in a directory, sorted.
std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

/// Gone, or a zombie nobody has reaped yet (no init that reaps in containers).
bool process_gone(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return true;
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z';
}

bool wait_gone(pid_t pid, std::chrono::milliseconds within) {
  auto until = std::chrono::steady_clock::now() + within;
  while (!process_gone(pid)) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

handler_config config_in(const temp_dir& t) {
  handler_config cfg;
  cfg.state_dir = t.path;
  cfg.root = t / "root";
  cfg.timeout = seconds(60);
  return cfg;
}

const std::string sha_empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const std::string sha_abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

}  // namespace

// -- run_command -------------------------------------------------------------------

TEST_CASE("handlers: run_command captures stdout and stderr of a successful command") {
  temp_dir t;
  auto r = run_command({"sh", "-c", "echo hello; echo world >&2"}, t.path, seconds(10));
  CHECK_FALSE(r.spawn_failed);
  CHECK_FALSE(r.timed_out);
  CHECK(r.exit_code == 0);
  CHECK(r.output_tail == "hello\nworld");
  CHECK(r.seconds >= 0);
  CHECK(r.seconds < 5);

  // No shell in between: arguments arrive verbatim.
  r = run_command({"printf", "%s|", "a b", "$HOME", "*"}, t.path, seconds(10));
  CHECK(r.exit_code == 0);
  CHECK(r.output_tail == "a b|$HOME|*|");

  // The working directory is `cwd`.
  r = run_command({"pwd", "-P"}, t.path, seconds(10));
  CHECK(r.output_tail == fs::canonical(t.path).string());
}

TEST_CASE("handlers: run_command reports the exit code") {
  temp_dir t;
  auto r = run_command({"sh", "-c", "echo failing; exit 3"}, t.path, seconds(10));
  CHECK(r.exit_code == 3);
  CHECK_FALSE(r.timed_out);
  CHECK_FALSE(r.spawn_failed);
  CHECK(r.output_tail == "failing");

  r = run_command({"false"}, t.path, seconds(10));
  CHECK(r.exit_code == 1);
}

TEST_CASE("handlers: run_command keeps the last 20 lines, at most 2 KiB") {
  temp_dir t;
  auto r = run_command({"sh", "-c", "i=1; while [ $i -le 100 ]; do echo line $i; i=$((i+1)); done"},
                       t.path, seconds(10));
  REQUIRE(r.exit_code == 0);
  CHECK(r.output_tail.rfind("line 81\n", 0) == 0);
  CHECK(r.output_tail.size() >= 7);
  CHECK(r.output_tail.substr(r.output_tail.size() - 8) == "line 100");
  CHECK(std::count(r.output_tail.begin(), r.output_tail.end(), '\n') == 19);

  // 30 lines of 300 bytes: the byte cap wins.
  r = run_command({"sh", "-c",
                   "i=0; while [ $i -lt 30 ]; do printf '%0300d\\n' $i; i=$((i+1)); done; "
                   "echo the-end"},
                  t.path, seconds(10));
  REQUIRE(r.exit_code == 0);
  CHECK(r.output_tail.size() <= 2048);
  CHECK(r.output_tail.size() > 1500);
  CHECK(r.output_tail.substr(r.output_tail.size() - 7) == "the-end");
}

TEST_CASE("handlers: run_command with 1 MB of output neither hangs nor keeps it all") {
  temp_dir t;
  auto r = run_command({"sh", "-c", "head -c 1048576 /dev/zero | tr '\\0' 'x'; echo; echo done"},
                       t.path, seconds(30));
  CHECK_FALSE(r.timed_out);
  CHECK(r.exit_code == 0);
  CHECK(r.output_tail.size() <= 2048);
  CHECK(r.output_tail.substr(r.output_tail.size() - 4) == "done");
  CHECK(r.seconds < 20);

  // Many short lines on stderr too.
  r = run_command({"sh", "-c", "yes error-line | head -n 200000 >&2; echo last >&2"}, t.path,
                  seconds(30));
  CHECK(r.exit_code == 0);
  CHECK(r.output_tail.substr(r.output_tail.size() - 4) == "last");
}

TEST_CASE("handlers: run_command gives the child /dev/null as stdin") {
  temp_dir t;
  auto r = run_command({"sh", "-c", "cat; echo done"}, t.path, seconds(10));
  CHECK_FALSE(r.timed_out);
  CHECK(r.exit_code == 0);
  CHECK(r.output_tail == "done");
}

TEST_CASE("handlers: run_command does not leak the parent's file descriptors") {
  temp_dir t;
  int fd = open((t / "leak").c_str(), O_WRONLY | O_CREAT, 0600);  // no O_CLOEXEC
  REQUIRE(fd >= 3);
  std::string check = "test -e /proc/self/fd/" + std::to_string(fd) + " && echo open || echo closed";
  auto r = run_command({"sh", "-c", check}, t.path, seconds(10));
  close(fd);
  CHECK(r.output_tail == "closed");
}

TEST_CASE("handlers: run_command times out a sleep within about 3 s") {
  temp_dir t;
  auto r = run_command({"sleep", "30"}, t.path, seconds(1));
  CHECK(r.timed_out);
  CHECK(r.exit_code == -1);
  CHECK_FALSE(r.spawn_failed);
  CHECK(r.seconds >= 0.9);
  CHECK(r.seconds < 3.5);
}

TEST_CASE("handlers: the timeout kills the child's children too") {
  temp_dir t;
  auto r = run_command({"sh", "-c", "sleep 30 & echo $! > bg.pid; sleep 30"}, t.path, seconds(1));
  CHECK(r.timed_out);
  CHECK(r.seconds < 3.5);
  std::string pid_text = read_file(t / "bg.pid");
  REQUIRE_FALSE(pid_text.empty());
  pid_t bg = static_cast<pid_t>(std::stol(pid_text));
  CHECK(wait_gone(bg, std::chrono::milliseconds(1000)));
}

TEST_CASE("handlers: a child that ignores SIGTERM gets SIGKILL 2 s later") {
  temp_dir t;
  // `trap '' TERM` is inherited by sleep: only SIGKILL ends them.
  auto r = run_command({"sh", "-c", "trap '' TERM; sleep 30 & echo $! > bg.pid; sleep 30"}, t.path,
                       seconds(1));
  CHECK(r.timed_out);
  CHECK(r.exit_code == -1);
  CHECK(r.seconds >= 2.8);
  CHECK(r.seconds < 5);
  pid_t bg = static_cast<pid_t>(std::stol(read_file(t / "bg.pid")));
  CHECK(wait_gone(bg, std::chrono::milliseconds(1000)));
}

TEST_CASE("handlers: run_command reports a program that cannot be executed") {
  temp_dir t;
  auto r = run_command({"coapfleet-no-such-program-xyz", "--help"}, t.path, seconds(10));
  CHECK(r.spawn_failed);
  CHECK(r.exit_code == -1);
  CHECK(r.output_tail == "No such file or directory");

  write_file(t / "not-executable", "#!/bin/sh\necho hi\n");
  r = run_command({t / "not-executable"}, t.path, seconds(10));
  CHECK(r.spawn_failed);
  CHECK(r.output_tail == "Permission denied");

  r = run_command({"true"}, t / "missing-dir", seconds(10));
  CHECK(r.spawn_failed);
  CHECK(r.output_tail.find("No such file or directory") != std::string::npos);

  r = run_command({}, t.path, seconds(10));
  CHECK(r.spawn_failed);
}

TEST_CASE("handlers: run_command from several threads at once") {
  temp_dir t;
  constexpr int n = 8;
  std::vector<command_result> results(n);
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i)
    threads.emplace_back([&, i] {
      results[i] = run_command({"sh", "-c", "sleep 0.2; echo job " + std::to_string(i)}, t.path,
                               seconds(20));
    });
  for (auto& th : threads) th.join();
  for (int i = 0; i < n; ++i) {
    CHECK(results[i].exit_code == 0);
    CHECK(results[i].output_tail == "job " + std::to_string(i));
  }
}

// -- script ---------------------------------------------------------------------------

TEST_CASE("handlers: run_script runs in the state directory") {
  temp_dir t;
  model::job_spec spec;
  spec.package_type = "script";
  spec.script = "echo hi > made.txt && pwd -P > where.txt";
  auto out = run_script(spec, config_in(t));
  CHECK(out.ok);
  CHECK(out.result == 1);
  CHECK(out.error_message.empty());
  CHECK(read_file(t / "made.txt") == "hi\n");
  CHECK(read_file(t / "where.txt") == fs::canonical(t.path).string() + "\n");
}

TEST_CASE("handlers: a failing script reports its exit code and last lines") {
  temp_dir t;
  model::job_spec spec;
  spec.script = "echo one; echo two >&2; exit 4";
  auto out = run_script(spec, config_in(t));
  CHECK_FALSE(out.ok);
  CHECK(out.result == 8);
  CHECK(out.error_message == "script exited with code 4: one\ntwo");

  spec.script = "exit 2";
  out = run_script(spec, config_in(t));
  CHECK(out.error_message == "script exited with code 2");

  spec.script = "kill -9 $$";
  out = run_script(spec, config_in(t));
  CHECK(out.result == 8);
  CHECK(out.error_message == "script was killed by signal 9");

  spec.script.clear();
  out = run_script(spec, config_in(t));
  CHECK_FALSE(out.ok);
  CHECK(out.result == 8);
}

TEST_CASE("handlers: a job's timeout_seconds overrides the configured timeout") {
  temp_dir t;
  model::job_spec spec;
  spec.script = "echo started; sleep 30";
  spec.timeout_seconds = 1;
  auto cfg = config_in(t);
  cfg.timeout = seconds(600);
  auto begin = std::chrono::steady_clock::now();
  auto out = run_script(spec, cfg);
  auto took = std::chrono::steady_clock::now() - begin;
  CHECK_FALSE(out.ok);
  CHECK(out.result == 8);
  CHECK(out.error_message == "script timed out after 1 s: started");
  CHECK(took < seconds(4));

  // Without one, the configured timeout applies.
  spec.timeout_seconds = 0;
  cfg.timeout = seconds(1);
  out = run_script(spec, cfg);
  CHECK(out.error_message == "script timed out after 1 s: started");
}

TEST_CASE("handlers: a script with a missing state directory fails as update_failed") {
  temp_dir t;
  model::job_spec spec;
  spec.script = "true";
  auto cfg = config_in(t);
  cfg.state_dir = t / "missing";
  auto out = run_script(spec, cfg);
  CHECK_FALSE(out.ok);
  CHECK(out.result == 8);
  CHECK(out.error_message.rfind("cannot run sh: chdir ", 0) == 0);
}

// -- pip / apt with fakes ----------------------------------------------------------------

TEST_CASE("handlers: install_pip runs pip install with the configured arguments") {
  temp_dir t;
  write_script(t / "fake-pip", "for a in \"$@\"; do echo \"$a\"; done > \"$(dirname \"$0\")/argv\"\n"
                               "echo Successfully installed\nexit 0\n");
  auto cfg = config_in(t);
  cfg.pip = t / "fake-pip";
  cfg.pip_args = {"--target", t / "site"};
  model::job_spec spec;
  spec.package_type = "pip";
  spec.packages = {"aiocoap==0.4.7", "requests>=2"};
  auto out = install_pip(spec, cfg);
  CHECK(out.ok);
  CHECK(out.result == 1);
  CHECK(read_file(t / "argv")
        == "install\n--disable-pip-version-check\n--no-input\n--target\n" + (t / "site")
               + "\naiocoap==0.4.7\nrequests>=2\n");
}

TEST_CASE("handlers: a failing pip install reports exit code and output") {
  temp_dir t;
  write_script(t / "fake-pip",
               "echo 'Collecting nothing'\n"
               "echo 'ERROR: No matching distribution found for nothing==9' >&2\nexit 1\n");
  auto cfg = config_in(t);
  cfg.pip = t / "fake-pip";
  model::job_spec spec;
  spec.packages = {"nothing==9"};
  auto out = install_pip(spec, cfg);
  CHECK_FALSE(out.ok);
  CHECK(out.result == 8);
  CHECK(out.error_message
        == "pip install exited with code 1: Collecting nothing\n"
           "ERROR: No matching distribution found for nothing==9");

  // pip that is not installed: this node cannot do pip jobs.
  cfg.pip = t / "no-pip3";
  out = install_pip(spec, cfg);
  CHECK_FALSE(out.ok);
  CHECK(out.result == 6);
  CHECK(out.error_message == "cannot run " + (t / "no-pip3") + ": No such file or directory");

  spec.packages.clear();
  out = install_pip(spec, cfg);
  CHECK_FALSE(out.ok);
}

TEST_CASE("handlers: install_apt runs apt-get install -y non-interactively") {
  temp_dir t;
  write_script(t / "fake-apt-get",
               "for a in \"$@\"; do echo \"$a\"; done > \"$(dirname \"$0\")/argv\"\n"
               "echo \"$DEBIAN_FRONTEND\" > \"$(dirname \"$0\")/frontend\"\n"
               "[ \"$1\" = install ] && [ \"$4\" != broken ] || { echo 'E: Unable to locate "
               "package broken'; exit 100; }\n");
  auto cfg = config_in(t);
  cfg.apt_get = t / "fake-apt-get";
  model::job_spec spec;
  spec.package_type = "apt";
  spec.packages = {"curl", "jq=1.6-2.1"};
  auto out = install_apt(spec, cfg);
  CHECK(out.ok);
  CHECK(out.result == 1);
  CHECK(read_file(t / "argv") == "install\n-y\n--no-install-recommends\ncurl\njq=1.6-2.1\n");
  CHECK(read_file(t / "frontend") == "noninteractive\n");

  spec.packages = {"broken"};
  out = install_apt(spec, cfg);
  CHECK_FALSE(out.ok);
  CHECK(out.result == 8);
  CHECK(out.error_message
        == "apt-get install exited with code 100: E: Unable to locate package broken");

  cfg.apt_get = t / "no-apt-get";
  out = install_apt(spec, cfg);
  CHECK(out.result == 6);
  CHECK(out.error_message == "cannot run " + (t / "no-apt-get") + ": No such file or directory");
}

TEST_CASE("handlers: install_pip installs a wheel built here with the real pip") {
  temp_dir t;
  auto probe = run_command({"python3", "-m", "pip", "--version"}, t.path, seconds(60));
  INFO(probe.output_tail);
  REQUIRE_MESSAGE((!probe.spawn_failed && probe.exit_code == 0),
                  "`python3 -m pip --version` failed: this test needs pip "
                  "(deploy/install-deps.sh installs python3-pip)");
  // A wheel is a zip with the module and a dist-info directory (METADATA,
  // WHEEL, RECORD); write it with the zipfile module, offline.
  write_file(t / "make_wheel.py", R"PY(
import base64, hashlib, sys, zipfile
out = sys.argv[1]
files = {
    "tinyfleetmod.py": b"VALUE = 'installed by coapfleet'\n",
    "tinyfleetmod-0.1.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinyfleetmod\nVersion: 0.1\n",
    "tinyfleetmod-0.1.dist-info/WHEEL":
        b"Wheel-Version: 1.0\nGenerator: coapfleet-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = []
for name, data in files.items():
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record.append(f"{name},sha256={digest},{len(data)}")
record.append("tinyfleetmod-0.1.dist-info/RECORD,,")
files["tinyfleetmod-0.1.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for name, data in files.items():
        z.writestr(name, data)
)PY");
  const std::string wheel = t / "tinyfleetmod-0.1-py3-none-any.whl";
  auto made = run_command({"python3", t / "make_wheel.py", wheel}, t.path, seconds(60));
  INFO(made.output_tail);
  REQUIRE(made.exit_code == 0);

  write_script(t / "pip-wrapper", "exec python3 -m pip \"$@\"\n");
  auto cfg = config_in(t);
  cfg.pip = t / "pip-wrapper";
  cfg.pip_args = {"--no-index", "--no-cache-dir", "--target", t / "site"};
  cfg.timeout = seconds(180);
  model::job_spec spec;
  spec.package_type = "pip";
  spec.packages = {wheel};
  auto out = install_pip(spec, cfg);
  INFO(out.error_message);
  CHECK(out.ok);
  CHECK(out.result == 1);
  CHECK(fs::exists(t / "site/tinyfleetmod.py"));
  CHECK(fs::exists(t / "site/tinyfleetmod-0.1.dist-info/METADATA"));
  auto imported = run_command(
      {"python3", "-c", "import sys; sys.path.insert(0, 'site'); import tinyfleetmod; "
                        "print(tinyfleetmod.VALUE)"},
      t.path, seconds(60));
  CHECK(imported.output_tail == "installed by coapfleet");

  // A requirement that cannot be found offline fails with pip's own words.
  spec.packages = {"tinyfleetmod-does-not-exist==1.0"};
  out = install_pip(spec, cfg);
  CHECK_FALSE(out.ok);
  CHECK(out.result == 8);
  CHECK(out.error_message.rfind("pip install exited with code 1: ", 0) == 0);
  CHECK(out.error_message.find("tinyfleetmod-does-not-exist") != std::string::npos);
}

// -- file -----------------------------------------------------------------------------------

TEST_CASE("handlers: sha256 of known vectors and of files") {
  CHECK(sha256_hex("") == sha_empty);
  CHECK(sha256_hex("abc") == sha_abc);
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
        == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  temp_dir t;
  write_file(t / "empty", "");
  write_file(t / "abc", "abc");
  CHECK(sha256_file(t / "empty") == sha_empty);
  CHECK(sha256_file(t / "abc") == sha_abc);
  CHECK(sha256_file(t / "missing").empty());
  // Larger than one 64 KiB chunk, not a multiple of it.
  std::string big;
  for (int i = 0; i < 200000; ++i) big.push_back(static_cast<char>('a' + i % 26));
  write_file(t / "big", big);
  CHECK(sha256_file(t / "big") == sha256_hex(big));
}

TEST_CASE("handlers: install_file writes the verified file with its mode") {
  temp_dir t;
  auto cfg = config_in(t);
  const std::string content = "#!/bin/sh\necho configured\n";
  write_file(t / "download.bin", content);
  model::job_spec spec;
  spec.package_type = "file";
  spec.target_path = "/opt/app/bin/run.sh";
  spec.mode = "0755";
  auto out = install_file(spec, t / "download.bin", sha256_hex(content), cfg);
  INFO(out.error_message);
  CHECK(out.ok);
  CHECK(out.result == 1);
  const std::string dest = t / "root/opt/app/bin/run.sh";
  CHECK(read_file(dest) == content);
  struct stat st {};
  REQUIRE(stat(dest.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0755);
  CHECK(list_dir(t / "root/opt/app/bin") == std::vector<std::string>{"run.sh"});
  CHECK(read_file(t / "download.bin") == content);  // the download is left alone

  // Default mode 0644; upper-case hex is accepted.
  spec.target_path = "/etc/app.conf";
  spec.mode.clear();
  std::string upper = sha256_hex(content);
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  out = install_file(spec, t / "download.bin", upper, cfg);
  CHECK(out.ok);
  REQUIRE(stat((t / "root/etc/app.conf").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0644);
}

TEST_CASE("handlers: install_file with a bad checksum leaves the destination untouched") {
  temp_dir t;
  auto cfg = config_in(t);
  fs::create_directories(t / "root/etc");
  write_file(t / "root/etc/app.conf", "old content\n");
  write_file(t / "download.bin", "abc");
  model::job_spec spec;
  spec.target_path = "/etc/app.conf";
  auto out = install_file(spec, t / "download.bin", sha_empty, cfg);
  CHECK_FALSE(out.ok);
  CHECK(out.result == 5);
  CHECK(out.error_message.find(sha_empty.substr(0, 12)) != std::string::npos);
  CHECK(out.error_message.find(sha_abc.substr(0, 12)) != std::string::npos);
  CHECK(read_file(t / "root/etc/app.conf") == "old content\n");
  CHECK(list_dir(t / "root/etc") == std::vector<std::string>{"app.conf"});

  // No destination directory is created for a rejected file either.
  spec.target_path = "/new/dir/file";
  out = install_file(spec, t / "download.bin", sha_empty, cfg);
  CHECK(out.result == 5);
  CHECK_FALSE(fs::exists(t / "root/new"));

  // A download that cannot be read.
  out = install_file(spec, t / "missing.bin", sha_abc, cfg);
  CHECK_FALSE(out.ok);
  CHECK(out.result == 8);
}

TEST_CASE("handlers: install_file rejects target paths that leave the root") {
  temp_dir t;
  auto cfg = config_in(t);
  write_file(t / "download.bin", "abc");
  model::job_spec spec;
  for (const char* bad : {"/../escape", "/etc/../../escape", "/a/..", "relative/path", "", "/",
                          "/etc/", "/etc/."}) {
    CAPTURE(bad);
    spec.target_path = bad;
    auto out = install_file(spec, t / "download.bin", sha_abc, cfg);
    CHECK_FALSE(out.ok);
    CHECK(out.result == 7);
  }
  CHECK_FALSE(fs::exists(t / "escape"));
  CHECK_FALSE(fs::exists(t / "root"));

  // "..." and "..x" are ordinary names, "//" and "/./" collapse.
  spec.target_path = "//etc/./...";
  auto out = install_file(spec, t / "download.bin", sha_abc, cfg);
  CHECK(out.ok);
  CHECK(read_file(t / "root/etc/...") == "abc");

  spec.mode = "9z";
  spec.target_path = "/etc/x";
  out = install_file(spec, t / "download.bin", sha_abc, cfg);
  CHECK_FALSE(out.ok);
  CHECK(out.result == 8);
  CHECK_FALSE(fs::exists(t / "root/etc/x"));
}

TEST_CASE("handlers: install_file replaces an existing file atomically") {
  temp_dir t;
  auto cfg = config_in(t);
  fs::create_directories(t / "root/etc");
  const std::string dest = t / "root/etc/app.conf";
  write_file(dest, "old content\n");
  // A second name for the old inode: an in-place rewrite would change it too.
  REQUIRE(link(dest.c_str(), (t / "old-link").c_str()) == 0);
  struct stat before {}, after {};
  REQUIRE(stat(dest.c_str(), &before) == 0);

  write_file(t / "download.bin", "new content\n");
  model::job_spec spec;
  spec.target_path = "/etc/app.conf";
  spec.mode = "600";
  auto out = install_file(spec, t / "download.bin", sha256_hex("new content\n"), cfg);
  INFO(out.error_message);
  CHECK(out.ok);
  CHECK(read_file(dest) == "new content\n");
  CHECK(read_file(t / "old-link") == "old content\n");
  REQUIRE(stat(dest.c_str(), &after) == 0);
  CHECK(after.st_ino != before.st_ino);
  CHECK((after.st_mode & 07777) == 0600);
  CHECK(list_dir(t / "root/etc") == std::vector<std::string>{"app.conf"});

  // A directory in the way fails, without leaving a temp file.
  fs::create_directories(t / "root/etc/dir.d/sub");
  spec.target_path = "/etc/dir.d";
  out = install_file(spec, t / "download.bin", sha256_hex("new content\n"), cfg);
  CHECK_FALSE(out.ok);
  CHECK(out.result == 8);
  CHECK(list_dir(t / "root/etc") == std::vector<std::string>{"app.conf", "dir.d"});
}
