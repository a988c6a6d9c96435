// The agent's health sampler: parsers on fixture text, CPU math, thresholds,
// a fixture tree driving sampler::sample end to end, the real /proc, the
// process probe with real child processes and the systemd probe with a fake
// systemctl on PATH.
#include <doctest/doctest.h>

#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "actors/agent/sampler.hpp"

extern char** environ;

using namespace coapfleet;
using namespace coapfleet::agent;
namespace fs = std::filesystem;

namespace {

/// A fresh temporary directory, removed with everything in it at the end.
struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "cf-sampler-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
};

void write_file(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << content;
  REQUIRE(out.good());
}

/// Starts argv[0] (looked up on PATH) with the given arguments.
pid_t spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  REQUIRE(::posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ) == 0);
  return pid;
}

void kill_and_reap(pid_t pid) {
  ::kill(pid, SIGKILL);
  int st = 0;
  ::waitpid(pid, &st, 0);
}

/// Polls until pred() holds (a spawned child needs a moment to exec).
template <class Pred>
bool eventually(Pred pred) {
  for (int i = 0; i < 200; ++i) {
    if (pred()) return true;
    ::usleep(5000);
  }
  return false;
}

bool status_of(const model::health_report& h, const std::string& name) {
  for (const auto& [n, up] : h.services_status)
    if (n == name) return up;
  FAIL("no service " << name);
  return false;
}

bool has_message(const model::health_report& h, const std::string& msg) {
  for (const auto& m : h.error_messages)
    if (m == msg) return true;
  return false;
}

const char* real_stat =
    "cpu  57598 0 7912 186324 659 0 80 57 0 0\n"
    "cpu0 23861 0 3237 99051 86 0 17 25 0 0\n"
    "cpu1 33736 0 4675 87272 573 0 63 32 0 0\n"
    "intr 5148723 9 0 0 0 0 0 0 0 0 0 0 0\n"
    "ctxt 9987117\n"
    "btime 1763776989\n"
    "processes 61022\n"
    "procs_running 2\n"
    "procs_blocked 0\n"
    "softirq 2336480 0 286744 2 64466 0 0 1061 889768 0 1094439\n";

const char* real_meminfo =
    "MemTotal:        8148332 kB\n"
    "MemFree:         5123456 kB\n"
    "MemAvailable:    6518665 kB\n"
    "Buffers:          123456 kB\n"
    "Cached:          1234567 kB\n"
    "SwapTotal:             0 kB\n";

}  // namespace

// -- parsers -----------------------------------------------------------------------

TEST_CASE("parse_proc_stat: the aggregate cpu line of a real /proc/stat") {
  cpu_times t;
  REQUIRE(parse_proc_stat(real_stat, t));
  // busy = user+nice+system+irq+softirq+steal; total = busy+idle+iowait
  CHECK(t.busy == 57598u + 0 + 7912 + 0 + 80 + 57);
  CHECK(t.total == t.busy + 186324u + 659);
}

TEST_CASE("parse_proc_stat: guest fields are not counted twice; short and odd lines") {
  cpu_times t;
  SUBCASE("guest and guest_nice ignored") {
    REQUIRE(parse_proc_stat("cpu  100 10 20 500 5 1 2 3 40 4\n", t));
    CHECK(t.busy == 136u);
    CHECK(t.total == 641u);
  }
  SUBCASE("old kernels: four fields") {
    REQUIRE(parse_proc_stat("cpu 10 20 30 40\n", t));
    CHECK(t.busy == 60u);
    CHECK(t.total == 100u);
  }
  SUBCASE("eight fields, no trailing newline") {
    REQUIRE(parse_proc_stat("cpu  1 2 3 4 5 6 7 8", t));
    CHECK(t.busy == 1u + 2 + 3 + 6 + 7 + 8);
    CHECK(t.total == t.busy + 4 + 5);
  }
  SUBCASE("cpu line after other lines, CRLF") {
    REQUIRE(parse_proc_stat("ctxt 5\r\ncpu  1 1 1 1 1 1 1 1 0 0\r\n", t));
    CHECK(t.busy == 6u);
    CHECK(t.total == 8u);
  }
}

TEST_CASE("parse_proc_stat: malformed text") {
  cpu_times t{7, 9};
  CHECK_FALSE(parse_proc_stat("", t));
  CHECK_FALSE(parse_proc_stat("\n\n", t));
  CHECK_FALSE(parse_proc_stat("cpu0 1 2 3 4 5 6 7 8\ncpu1 1 2 3 4 5 6 7 8\n", t));  // no aggregate
  CHECK_FALSE(parse_proc_stat("cpu  1 2 3\n", t));                                 // too short
  CHECK_FALSE(parse_proc_stat("cpu  1 2 x 4 5 6 7 8\n", t));
  CHECK_FALSE(parse_proc_stat("cpu  1 2 -3 4 5 6 7 8\n", t));
  CHECK_FALSE(parse_proc_stat("cpu  1 2 3.5 4 5 6 7 8\n", t));
  CHECK_FALSE(parse_proc_stat("cpu  99999999999999999999999 2 3 4\n", t));  // overflows
  CHECK_FALSE(parse_proc_stat(" cpu  1 2 3 4\n", t));                        // not at line start
  CHECK(t.busy == 7u);  // untouched on failure
  CHECK(t.total == 9u);
}

TEST_CASE("cpu_percent: busy share of the elapsed ticks") {
  CHECK(cpu_percent({100, 1000}, {150, 1100}) == doctest::Approx(50.0));
  CHECK(cpu_percent({100, 1000}, {100, 1100}) == doctest::Approx(0.0));
  CHECK(cpu_percent({100, 1000}, {200, 1100}) == doctest::Approx(100.0));
  CHECK(cpu_percent({0, 0}, {971, 1000}) == doctest::Approx(97.1));
  // No time passed, or counters went backwards: no number.
  CHECK(std::isnan(cpu_percent({100, 1000}, {100, 1000})));
  CHECK(std::isnan(cpu_percent({100, 1000}, {150, 900})));
  // Busy going backwards (steal accounting quirks) clamps at 0; busy running
  // ahead of total clamps at 100.
  CHECK(cpu_percent({500, 1000}, {400, 1100}) == doctest::Approx(0.0));
  CHECK(cpu_percent({100, 1000}, {400, 1100}) == doctest::Approx(100.0));
}

TEST_CASE("parse_meminfo: used percent from MemTotal and MemAvailable") {
  double used = -1;
  uint64_t total = 0;
  REQUIRE(parse_meminfo(real_meminfo, used, total));
  CHECK(total == 8148332ull * 1024);
  CHECK(used == doctest::Approx(100.0 * (8148332 - 6518665) / 8148332.0));

  REQUIRE(parse_meminfo("MemTotal: 1000 kB\nMemAvailable: 250 kB\n", used, total));
  CHECK(used == doctest::Approx(75.0));
  CHECK(total == 1024000u);
  // MemAvailable above MemTotal (never on a sane kernel) reads as 0 % used.
  REQUIRE(parse_meminfo("MemTotal: 1000 kB\nMemAvailable: 2000 kB", used, total));
  CHECK(used == doctest::Approx(0.0));
}

TEST_CASE("parse_meminfo: malformed or incomplete") {
  double used = 12.5;
  uint64_t total = 42;
  CHECK_FALSE(parse_meminfo("", used, total));
  CHECK_FALSE(parse_meminfo("MemTotal: 1000 kB\nMemFree: 10 kB\n", used, total));  // pre-3.14 kernel
  CHECK_FALSE(parse_meminfo("MemAvailable: 10 kB\n", used, total));
  CHECK_FALSE(parse_meminfo("MemTotal: 0 kB\nMemAvailable: 0 kB\n", used, total));
  CHECK_FALSE(parse_meminfo("MemTotal: lots kB\nMemAvailable: 10 kB\n", used, total));
  CHECK_FALSE(parse_meminfo("MemTotal:\nMemAvailable: 10 kB\n", used, total));
  CHECK_FALSE(parse_meminfo("MemTotalish 1000 kB\nMemAvailable: 10 kB\n", used, total));
  CHECK(used == 12.5);
  CHECK(total == 42u);
}

TEST_CASE("parse_uptime") {
  double s = -1;
  REQUIRE(parse_uptime("1269.04 1863.24\n", s));
  CHECK(s == doctest::Approx(1269.04));
  REQUIRE(parse_uptime("12", s));
  CHECK(s == 12.0);
  REQUIRE(parse_uptime("  0.00 0.00\n", s));
  CHECK(s == 0.0);
  s = 5;
  CHECK_FALSE(parse_uptime("", s));
  CHECK_FALSE(parse_uptime("\n", s));
  CHECK_FALSE(parse_uptime("abc 1.0\n", s));
  CHECK_FALSE(parse_uptime("-3.0 1.0\n", s));
  CHECK_FALSE(parse_uptime("12.5x 1.0\n", s));
  CHECK_FALSE(parse_uptime("nan 1\n", s));
  CHECK_FALSE(parse_uptime("inf 1\n", s));
  CHECK(s == 5);
}

TEST_CASE("parse_millidegrees") {
  double c = 0;
  REQUIRE(parse_millidegrees("42500\n", c));
  CHECK(c == doctest::Approx(42.5));
  REQUIRE(parse_millidegrees("-5000", c));
  CHECK(c == doctest::Approx(-5.0));
  REQUIRE(parse_millidegrees(" 0 \n", c));
  CHECK(c == 0.0);
  c = 7;
  CHECK_FALSE(parse_millidegrees("", c));
  CHECK_FALSE(parse_millidegrees("\n", c));
  CHECK_FALSE(parse_millidegrees("42.5\n", c));
  CHECK_FALSE(parse_millidegrees("hot\n", c));
  CHECK_FALSE(parse_millidegrees("42500 1\n", c));
  CHECK(c == 7);
}

TEST_CASE("parse_os_release") {
  CHECK(parse_os_release("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"
                         "NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n")
        == "Debian GNU/Linux 12 (bookworm)");
  CHECK(parse_os_release("NAME=\"Raspbian GNU/Linux\"\nPRETTY_NAME='Raspbian 11'\n") == "Raspbian 11");
  CHECK(parse_os_release("ID=alpine\nNAME=\"Alpine Linux\"\n") == "Alpine Linux");
  CHECK(parse_os_release("NAME=Buildroot\n") == "Buildroot");
  CHECK(parse_os_release("PRETTY_NAME=\"\"\nNAME=Yocto\n") == "Yocto");
  CHECK(parse_os_release("PRETTY_NAME=\"Say \\\"hi\\\" \\\\ \\$x\"\n") == "Say \"hi\" \\ $x");
  CHECK(parse_os_release("# PRETTY_NAME=\"commented\"\n  NAME = \"Spaced\"  \n") == "Spaced");
  CHECK(parse_os_release("PRETTY_NAME=\"Unterminated\nNAME=x\n") == "Unterminated");
  CHECK(parse_os_release("PRETTY_NAME=\"Unterminated") == "Unterminated");
  CHECK(parse_os_release("") == "Linux");
  CHECK(parse_os_release("garbage without equals\n\n") == "Linux");
}

// -- thresholds ---------------------------------------------------------------------

TEST_CASE("apply_thresholds: one message per reading above its threshold") {
  sampler_config cfg;
  model::health_report h;
  h.cpu_percent = 97.1;
  h.memory_percent = 93.0;
  h.disk_percent = 95.24;
  h.temperature = 88.0;
  h.services_status = {{"systemd", true}, {"docker", false}};
  apply_thresholds(h, cfg);
  CHECK_FALSE(h.overall_healthy);
  REQUIRE(h.error_messages.size() == 5);
  CHECK(h.error_messages[0] == "Service docker is not running");
  CHECK(h.error_messages[1] == "CPU usage 97.1% above 90%");
  CHECK(h.error_messages[2] == "Memory usage 93.0% above 90%");
  CHECK(h.error_messages[3] == "Disk usage 95.2% of / above 90%");
  CHECK(h.error_messages[4] == "Temperature 88.0 C above 85 C");

  // Applying again adds nothing.
  apply_thresholds(h, cfg);
  CHECK(h.error_messages.size() == 5);
}

TEST_CASE("apply_thresholds: healthy readings, equal values, absent readings") {
  sampler_config cfg;
  model::health_report h;
  h.overall_healthy = false;
  h.cpu_percent = 90.0;  // not above
  h.memory_percent = 45.2;
  h.disk_percent = 30.1;
  // temperature and uptime absent
  h.services_status = {{"ssh", true}};
  apply_thresholds(h, cfg);
  CHECK(h.overall_healthy);
  CHECK(h.error_messages.empty());

  model::health_report none;  // everything absent
  apply_thresholds(none, cfg);
  CHECK(none.overall_healthy);
  CHECK(none.error_messages.empty());
}

TEST_CASE("apply_thresholds: configured thresholds and disk path in the text") {
  sampler_config cfg;
  cfg.cpu_threshold = 50;
  cfg.memory_threshold = 80.5;
  cfg.disk_threshold = 75;
  cfg.temperature_threshold = 70;
  cfg.disk_path = "/data";
  model::health_report h;
  h.cpu_percent = 50.06;
  h.memory_percent = 80.6;
  h.disk_percent = 100;
  h.temperature = 70.25;
  apply_thresholds(h, cfg);
  REQUIRE(h.error_messages.size() == 4);
  CHECK(h.error_messages[0] == "CPU usage 50.1% above 50%");
  CHECK(h.error_messages[1] == "Memory usage 80.6% above 80.5%");
  CHECK(h.error_messages[2] == "Disk usage 100.0% of /data above 75%");
  CHECK(h.error_messages[3] == "Temperature 70.2 C above 70 C");
  CHECK_FALSE(h.overall_healthy);
}

TEST_CASE("apply_thresholds: keeps messages already present") {
  sampler_config cfg;
  model::health_report h;
  h.error_messages = {"Disk read failed"};
  apply_thresholds(h, cfg);
  CHECK_FALSE(h.overall_healthy);
  CHECK(h.error_messages.size() == 1);
}

// -- a fixture tree end to end ---------------------------------------------------------

namespace {

struct fixture_tree {
  temp_dir dir;
  fs::path proc, sys, etc;
  sampler_config cfg;

  fixture_tree() {
    proc = dir.path / "proc";
    sys = dir.path / "sys";
    etc = dir.path / "etc";
    set_stat("cpu  1000 0 500 8000 500 0 0 0 0 0\ncpu0 1000 0 500 8000 500 0 0 0 0 0\n");
    write_file(proc / "meminfo", "MemTotal:        1000000 kB\nMemFree:          100000 kB\n"
                                 "MemAvailable:     250000 kB\n");
    write_file(proc / "uptime", "3600.50 7000.00\n");
    write_file(proc / "1/comm", "init\n");
    write_file(proc / "1/cmdline", std::string("/sbin/init\0splash\0", 18));
    write_file(proc / "42/comm", "sshd\n");
    write_file(proc / "42/cmdline", std::string("sshd: /usr/sbin/sshd -D [listener]\0", 35));
    // comm is cut to 15 characters; argv[0] names it in full.
    write_file(proc / "77/comm", "very-long-servi\n");
    write_file(proc / "77/cmdline", std::string("/usr/sbin/very-long-service\0--flag\0", 35));
    // A zombie docker does not count as running.
    write_file(proc / "99/comm", "docker\n");
    write_file(proc / "99/stat", "99 (docker) Z 1 99 99 0 -1 4194560 0 0 0 0\n");
    // A kernel thread: empty cmdline.
    write_file(proc / "100/comm", "kworker/0:1\n");
    write_file(proc / "100/cmdline", "");
    // A process that went away between readdir and open: directory only.
    fs::create_directories(proc / "101");
    // Not processes.
    write_file(proc / "self/comm", "missing\n");
    write_file(proc / "sys/comm", "missing\n");

    write_file(sys / "class/thermal/thermal_zone0/temp", "42500\n");
    write_file(sys / "class/thermal/thermal_zone1/temp", "61500\n");
    fs::create_directories(sys / "class/thermal/thermal_zone2");  // no temp: skipped
    write_file(sys / "class/thermal/thermal_zone3/temp", "garbage\n");
    write_file(sys / "class/thermal/cooling_device0/temp", "99000\n");  // not a zone

    write_file(etc / "os-release", "NAME=\"Fixture OS\"\nPRETTY_NAME=\"Fixture OS 1.0 (test)\"\n");

    cfg.proc_root = proc.string();
    cfg.sys_root = sys.string();
    cfg.etc_root = etc.string();
    cfg.disk_path = dir.path.string();
    cfg.probe = service_probe::process;
    cfg.services = {"sshd", "very-long-service", "docker", "init", "missing"};
  }

  void set_stat(const std::string& text) { write_file(proc / "stat", text); }
};

}  // namespace

TEST_CASE("sampler: a fixture tree end to end") {
  fixture_tree f;
  sampler s(f.cfg);
  CHECK(s.config().proc_root == f.cfg.proc_root);

  // busy 1500 → 2500, total 10000 → 12000: 50 %.
  f.set_stat("cpu  1800 0 700 8800 700 0 0 0 0 0\n");
  auto h = s.sample("node-123", 1758103200000);
  CHECK(h.node_id == "node-123");
  CHECK(h.timestamp == "2025-09-17T10:00:00Z");
  CHECK(h.cpu_percent == doctest::Approx(50.0));
  CHECK(h.memory_percent == doctest::Approx(75.0));
  CHECK(h.uptime_seconds == doctest::Approx(3600.5));
  CHECK(h.temperature == doctest::Approx(61.5));
  REQUIRE(model::present(h.disk_percent));
  CHECK(h.disk_percent >= 0);
  CHECK(h.disk_percent <= 100);

  REQUIRE(h.services_status.size() == 5);
  CHECK(h.services_status[0].first == "sshd");  // in configured order
  CHECK(status_of(h, "sshd"));
  CHECK(status_of(h, "very-long-service"));
  CHECK(status_of(h, "init"));
  CHECK_FALSE(status_of(h, "docker"));
  CHECK_FALSE(status_of(h, "missing"));
  CHECK(has_message(h, "Service docker is not running"));
  CHECK(has_message(h, "Service missing is not running"));
  CHECK_FALSE(h.overall_healthy);

  // Next sample: the delta since the previous one, all busy: 100 %.
  f.set_stat("cpu  3800 0 700 8800 700 0 0 0 0 0\n");
  h = s.sample("node-123", 1758103210000);
  CHECK(h.timestamp == "2025-09-17T10:00:10Z");
  CHECK(h.cpu_percent == doctest::Approx(100.0));
  CHECK(has_message(h, "CPU usage 100.0% above 90%"));

  // Then idle: 10 % busy.
  f.set_stat("cpu  3900 0 700 9600 800 0 0 0 0 0\n");
  h = s.sample("node-123", 1758103220000);
  CHECK(h.cpu_percent == doctest::Approx(10.0));
  CHECK_FALSE(has_message(h, "CPU usage 10.0% above 90%"));
}

TEST_CASE("sampler: thresholds from the configuration on fixture readings") {
  fixture_tree f;
  f.cfg.services = {"sshd"};
  f.cfg.memory_threshold = 70;
  f.cfg.temperature_threshold = 60;
  f.cfg.disk_threshold = 100;
  sampler s(f.cfg);
  f.set_stat("cpu  1800 0 700 8800 700 0 0 0 0 0\n");
  auto h = s.sample("n", 0);
  CHECK(h.timestamp == "1970-01-01T00:00:00Z");
  REQUIRE(h.error_messages.size() == 2);
  CHECK(h.error_messages[0] == "Memory usage 75.0% above 70%");
  CHECK(h.error_messages[1] == "Temperature 61.5 C above 60 C");
  CHECK_FALSE(h.overall_healthy);

  f.cfg.memory_threshold = 90;
  f.cfg.temperature_threshold = 85;
  sampler healthy(f.cfg);
  f.set_stat("cpu  1900 0 700 9800 700 0 0 0 0 0\n");
  h = healthy.sample("n", 0);
  CHECK(h.error_messages.empty());
  CHECK(h.overall_healthy);
}

TEST_CASE("sampler: no CPU movement takes a fresh short reading, then reports absent") {
  fixture_tree f;
  f.cfg.services.clear();
  sampler s(f.cfg);
  auto t0 = std::chrono::steady_clock::now();
  auto h = s.sample("n", 0);  // the fixture's stat does not move
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  CHECK(ms.count() >= 95);
  CHECK(std::isnan(h.cpu_percent));
  CHECK(h.overall_healthy);
  // It moves later: the delta is taken from the last good reading.
  f.set_stat("cpu  1100 0 500 8900 500 0 0 0 0 0\n");
  h = s.sample("n", 0);
  CHECK(h.cpu_percent == doctest::Approx(10.0));
}

TEST_CASE("sampler: missing files give absent readings and no errors") {
  temp_dir empty;
  sampler_config cfg;
  cfg.proc_root = (empty.path / "proc").string();
  cfg.sys_root = (empty.path / "sys").string();
  cfg.etc_root = (empty.path / "etc").string();
  cfg.disk_path = (empty.path / "nowhere").string();
  cfg.probe = service_probe::process;
  sampler s(cfg);
  auto h = s.sample("n", 0);
  CHECK(std::isnan(h.cpu_percent));
  CHECK(std::isnan(h.memory_percent));
  CHECK(std::isnan(h.disk_percent));
  CHECK(std::isnan(h.temperature));
  CHECK(std::isnan(h.uptime_seconds));
  CHECK(h.services_status.empty());
  CHECK(h.error_messages.empty());
  CHECK(h.overall_healthy);

  // A configured service with no proc root to look in is not running.
  cfg.services = {"sshd"};
  sampler s2(cfg);
  h = s2.sample("n", 0);
  CHECK_FALSE(status_of(h, "sshd"));
  CHECK(has_message(h, "Service sshd is not running"));

  auto facts = collect_system_facts(cfg);
  CHECK(facts.os == "Linux");
  CHECK(facts.memory_total_bytes == 0u);
  CHECK(facts.uptime_seconds == 0.0);
}

TEST_CASE("collect_system_facts: fixture tree and this machine") {
  fixture_tree f;
  auto facts = collect_system_facts(f.cfg);
  CHECK(facts.os == "Fixture OS 1.0 (test)");
  CHECK(facts.memory_total_bytes == 1024000000u);
  CHECK(facts.uptime_seconds == doctest::Approx(3600.5));
  CHECK_FALSE(facts.hostname.empty());
  CHECK_FALSE(facts.arch.empty());
  CHECK_FALSE(facts.kernel.empty());
  CHECK(facts.cpus >= 1);

  auto real = collect_system_facts(sampler_config{});
  CHECK_FALSE(real.os.empty());
  CHECK(real.memory_total_bytes > 16ull * 1024 * 1024);
  CHECK(real.uptime_seconds > 0);
  CHECK(real.cpus == static_cast<uint32_t>(::sysconf(_SC_NPROCESSORS_ONLN)));
}

// -- the real machine -------------------------------------------------------------------

TEST_CASE("sampler: the real /proc gives sane readings") {
  sampler_config cfg;
  cfg.probe = service_probe::process;
  cfg.services = {"surely-not-running-xyz"};
  sampler s(cfg);
  for (int i = 0; i < 3; ++i) {
    auto h = s.sample("real", 1758103200000);
    REQUIRE(model::present(h.cpu_percent));
    CHECK(h.cpu_percent >= 0);
    CHECK(h.cpu_percent <= 100);
    REQUIRE(model::present(h.memory_percent));
    CHECK(h.memory_percent > 0);
    CHECK(h.memory_percent < 100);
    REQUIRE(model::present(h.disk_percent));
    CHECK(h.disk_percent >= 0);
    CHECK(h.disk_percent <= 100);
    REQUIRE(model::present(h.uptime_seconds));
    CHECK(h.uptime_seconds > 0);
    if (model::present(h.temperature)) {
      CHECK(h.temperature > -40);
      CHECK(h.temperature < 150);
    }
    CHECK_FALSE(status_of(h, "surely-not-running-xyz"));
    CHECK(has_message(h, "Service surely-not-running-xyz is not running"));
    CHECK_FALSE(h.overall_healthy);
    ::usleep(20000);
  }
}

TEST_CASE("sampler: the process probe finds a real child process") {
  pid_t child = spawn({"sleep", "30"});
  sampler_config cfg;
  cfg.probe = service_probe::process;
  cfg.services = {"sleep", "surely-not-running-xyz"};
  sampler s(cfg);
  model::health_report h;
  CHECK(eventually([&] {
    h = s.sample("n", 0);
    return status_of(h, "sleep");
  }));
  CHECK_FALSE(status_of(h, "surely-not-running-xyz"));
  CHECK(has_message(h, "Service surely-not-running-xyz is not running"));
  CHECK_FALSE(has_message(h, "Service sleep is not running"));
  for (const auto& m : h.error_messages) MESSAGE(m);  // other readings depend on the machine's load
  kill_and_reap(child);

  // With no /run/systemd/system, the automatic probe is the process probe.
  if (::access("/run/systemd/system", F_OK) != 0) {
    child = spawn({"sleep", "30"});
    cfg.probe = service_probe::automatic;
    sampler automatic(cfg);
    CHECK(eventually([&] { return status_of(automatic.sample("n", 0), "sleep"); }));
    kill_and_reap(child);
  }
}

TEST_CASE("sampler: a uniquely named process: running, zombie, gone; long names via argv[0]") {
  temp_dir dir;
  std::string sleep_path;
  for (const char* p : {"/bin/sleep", "/usr/bin/sleep"})
    if (::access(p, X_OK) == 0) sleep_path = p;
  REQUIRE_FALSE(sleep_path.empty());
  std::string short_name = "cfs" + std::to_string(::getpid());  // fits in comm
  std::string long_name = "coapfleet-sampler-test-" + std::to_string(::getpid());  // does not
  fs::copy_file(sleep_path, dir.path / short_name);
  fs::copy_file(sleep_path, dir.path / long_name);

  pid_t a = spawn({(dir.path / short_name).string(), "30"});
  pid_t b = spawn({(dir.path / long_name).string(), "30"});
  sampler_config cfg;
  cfg.probe = service_probe::process;
  cfg.services = {short_name, long_name};
  sampler s(cfg);
  CHECK(eventually([&] {
    auto h = s.sample("n", 0);
    return status_of(h, short_name) && status_of(h, long_name);
  }));

  // Killed but not yet reaped: a zombie is not a running service.
  ::kill(a, SIGKILL);
  CHECK(eventually([&] { return !status_of(s.sample("n", 0), short_name); }));
  CHECK(status_of(s.sample("n", 0), long_name));
  int st = 0;
  ::waitpid(a, &st, 0);
  auto h = s.sample("n", 0);
  CHECK_FALSE(status_of(h, short_name));
  CHECK(has_message(h, "Service " + short_name + " is not running"));
  kill_and_reap(b);
  CHECK_FALSE(status_of(s.sample("n", 0), long_name));
}

TEST_CASE("sampler: the process probe matches the basename of argv[0]") {
  // comm is "sleep", argv[0] is a path whose basename names the service.
  std::string name = "renamed-daemon-" + std::to_string(::getpid());
  std::string arg0 = "/opt/fleet/bin/" + name;
  char* argv[] = {arg0.data(), const_cast<char*>("30"), nullptr};
  pid_t child = -1;
  REQUIRE(::posix_spawn(&child, ::access("/bin/sleep", X_OK) == 0 ? "/bin/sleep" : "/usr/bin/sleep",
                        nullptr, nullptr, argv, environ) == 0);
  sampler_config cfg;
  cfg.probe = service_probe::process;
  cfg.services = {name, "fleet"};
  sampler s(cfg);
  model::health_report h;
  CHECK(eventually([&] {
    h = s.sample("n", 0);
    return status_of(h, name);
  }));
  CHECK_FALSE(status_of(h, "fleet"));  // a directory of the path is not a name
  kill_and_reap(child);
}

// -- systemd probe with a fake systemctl -------------------------------------------------

namespace {

/// Puts a fake `systemctl` first on PATH for the lifetime of the object.
struct fake_systemctl {
  temp_dir dir;
  std::string old_path;
  fake_systemctl() {
    // argv: is-active --quiet -- <name>
    write_file(dir.path / "systemctl",
               "#!/bin/sh\n"
               "[ \"$1 $2 $3\" = \"is-active --quiet --\" ] || exit 9\n"
               "echo noise; echo noise >&2\n"
               "case \"$4\" in\n"
               "  running-svc) exit 0 ;;\n"
               "  slow-svc) exec sleep 30 ;;\n"
               "  *) exit 3 ;;\n"
               "esac\n");
    fs::permissions(dir.path / "systemctl", fs::perms::owner_all);
    const char* p = std::getenv("PATH");
    old_path = p ? p : "";
    ::setenv("PATH", (dir.path.string() + ":" + old_path).c_str(), 1);
  }
  ~fake_systemctl() { ::setenv("PATH", old_path.c_str(), 1); }
};

}  // namespace

TEST_CASE("sampler: the systemd probe asks systemctl is-active, without a shell") {
  fake_systemctl fake;
  temp_dir work;
  std::string injected = "x; touch " + (work.path / "pwned").string();
  sampler_config cfg;
  cfg.probe = service_probe::systemd;
  cfg.services = {"running-svc", "stopped-svc", injected, "-h"};
  sampler s(cfg);
  auto h = s.sample("n", 0);
  CHECK(status_of(h, "running-svc"));
  CHECK_FALSE(status_of(h, "stopped-svc"));
  CHECK_FALSE(status_of(h, injected));
  CHECK_FALSE(status_of(h, "-h"));
  CHECK_FALSE(fs::exists(work.path / "pwned"));
  CHECK(has_message(h, "Service stopped-svc is not running"));
  CHECK_FALSE(has_message(h, "Service running-svc is not running"));
}

TEST_CASE("sampler: a hanging systemctl is cut off after 5 s") {
  fake_systemctl fake;
  sampler_config cfg;
  cfg.probe = service_probe::systemd;
  cfg.services = {"slow-svc"};
  sampler s(cfg);
  auto t0 = std::chrono::steady_clock::now();
  auto h = s.sample("n", 0);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK_FALSE(status_of(h, "slow-svc"));
  CHECK(secs >= 4.9);
  CHECK(secs < 7.0);
}

// -- cost ---------------------------------------------------------------------------------

namespace {

double cpu_us() {
  timespec t;
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}

/// Wall and CPU microseconds per sample() over n samples. The samples are
/// spaced 15 ms apart (outside the timing) so /proc/stat has always moved and
/// no sample takes the 100 ms fresh reading, as at a real report interval.
void measure(const char* what, sampler& s, int n) {
  s.sample("n", 0);
  double wall = 0, cpu = 0;
  for (int i = 0; i < n; ++i) {
    ::usleep(15000);
    auto t0 = std::chrono::steady_clock::now();
    double c0 = cpu_us();
    s.sample("n", 0);
    cpu += cpu_us() - c0;
    wall += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  }
  MESSAGE(std::string(what) << ": " << wall / n << " us wall, " << cpu / n << " us CPU per sample ("
                << n << " samples)");
}

}  // namespace

TEST_CASE("sampler: cost of one sample on the real /proc" * doctest::skip()) {
  // Run with: agent_tests -tc="*cost*" --no-skip
  constexpr int n = 1000;
  sampler_config cfg;
  cfg.probe = service_probe::process;
  sampler none(cfg);
  measure("no services", none, n);
  std::ifstream comm1("/proc/1/comm");
  std::string first;
  std::getline(comm1, first);
  cfg.services = {first};
  sampler found(cfg);
  measure("one service, pid 1's name (found at once)", found, n);
  cfg.services = {"sshd", "docker", "surely-not-running-xyz"};
  sampler missing(cfg);
  measure("three services, none running (full /proc scan)", missing, n);
}
