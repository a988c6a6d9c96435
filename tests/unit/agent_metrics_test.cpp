// The agent's metrics actor on the test coordinator, sampling a fixture
// /proc, /sys and /etc tree (so every reading is known), with a mock reporter
// and transport that record the samples handed to them. The sampling timer
// fires when the test moves the clock.
#include "agent_test_support.hpp"

#include <cmath>

#include "actors/agent/metrics.hpp"

using namespace coapfleet;
using namespace coapfleet::agent_test;
using namespace std::chrono_literals;

namespace {

struct metrics_fixture : coordinated_system {
  temp_dir dir;
  std::shared_ptr<transport_log> wire = std::make_shared<transport_log>();
  std::shared_ptr<reporter_log> reporter_seen = std::make_shared<reporter_log>();
  agent_transport_actor transport;
  reporter_actor reporter;
  agent::metrics_config mcfg;
  metrics_actor metrics;

  metrics_fixture() {
    set_stat("cpu  1000 0 500 8000 500 0 0 0 0 0\n");
    write_text(dir.path / "proc/meminfo",
               "MemTotal:        1000000 kB\nMemFree:          100000 kB\n"
               "MemAvailable:     250000 kB\n");
    write_text(dir.path / "proc/uptime", "3600.50 7000.00\n");
    write_text(dir.path / "proc/42/comm", "sshd\n");
    write_text(dir.path / "proc/42/cmdline", std::string("/usr/sbin/sshd\0-D\0", 18));
    write_text(dir.path / "sys/class/thermal/thermal_zone0/temp", "61500\n");
    write_text(dir.path / "etc/os-release", "PRETTY_NAME=\"Fixture OS 1.0 (test)\"\n");
    mcfg.node_id = "node-5";
    mcfg.interval = 10s;
    mcfg.sampling.proc_root = dir / "proc";
    mcfg.sampling.sys_root = dir / "sys";
    mcfg.sampling.etc_root = dir / "etc";
    mcfg.sampling.disk_path = dir.path.string();
    mcfg.sampling.probe = agent::service_probe::process;
    mcfg.sampling.services = {"sshd", "docker"};
    transport = own(sys->spawn(mock_transport, wire));
    reporter = own(sys->spawn(mock_reporter, reporter_seen));
  }

  void set_stat(const std::string& text) { write_text(dir.path / "proc/stat", text); }

  void start() {
    metrics = own(agent::spawn_metrics(*sys, mcfg, reporter, transport));
    sched->run();
  }
};

}  // namespace

TEST_CASE_FIXTURE(metrics_fixture, "metrics: samples at once and on its timer, for reporter and transport") {
  start();
  // The first sample, taken at start-up, went to both.
  REQUIRE(reporter_seen->health.size() == 1);
  REQUIRE(wire->health.size() == 1);
  auto first = reporter_seen->health[0];
  CHECK(first.node_id == "node-5");
  CHECK(first.memory_percent == doctest::Approx(75.0));
  CHECK(first.temperature == doctest::Approx(61.5));
  CHECK(first.uptime_seconds == doctest::Approx(3600.5));
  REQUIRE(first.services_status.size() == 2);
  CHECK(first.services_status[0] == std::pair<std::string, bool>{"sshd", true});
  CHECK(first.services_status[1] == std::pair<std::string, bool>{"docker", false});
  CHECK_FALSE(first.overall_healthy);
  CHECK(first.error_messages == std::vector<std::string>{"Service docker is not running"});
  CHECK(wire->health[0].timestamp == first.timestamp);

  // Nothing more until the interval has passed.
  set_stat("cpu  1300 0 700 8300 700 0 0 0 0 0\n");  // 500 of 1000 ticks busy
  advance(9s);
  CHECK(reporter_seen->health.size() == 1);
  advance(1s);
  REQUIRE(reporter_seen->health.size() == 2);
  REQUIRE(wire->health.size() == 2);
  CHECK(reporter_seen->health[1].cpu_percent == doctest::Approx(50.0));
  CHECK(wire->health[1].cpu_percent == doctest::Approx(50.0));

  // `get` answers the latest sample.
  auto latest = ask<model::health_report>(metrics, atom::get::value);
  CHECK(latest.cpu_percent == doctest::Approx(50.0));
  CHECK(latest.node_id == "node-5");

  // And again one interval later, now all busy.
  set_stat("cpu  2300 0 700 8300 700 0 0 0 0 0\n");
  advance(10s);
  REQUIRE(reporter_seen->health.size() == 3);
  CHECK(reporter_seen->health[2].cpu_percent == doctest::Approx(100.0));
  CHECK(ask<model::health_report>(metrics, atom::get::value).cpu_percent
        == doctest::Approx(100.0));
  CHECK(wire->health.size() == 3);
}

TEST_CASE_FIXTURE(metrics_fixture, "metrics: a healthy node's samples carry no error messages") {
  mcfg.sampling.services = {"sshd"};
  start();
  REQUIRE(reporter_seen->health.size() == 1);
  CHECK(reporter_seen->health[0].overall_healthy);
  CHECK(reporter_seen->health[0].error_messages.empty());
  CHECK(std::isnan(reporter_seen->health[0].cpu_percent));  // the fixture's CPU did not move
}

TEST_CASE_FIXTURE(metrics_fixture, "metrics: info fills agent_system_info") {
  start();
  auto info = ask<agent_system_info>(metrics, atom::info::value);
  CHECK(info.node_id == "node-5");
  CHECK(info.os == "Fixture OS 1.0 (test)");
  CHECK(info.memory_total_bytes == 1024000000u);
  CHECK(info.uptime_seconds == doctest::Approx(3600.5));
  CHECK(info.agent_version == COAPFLEET_VERSION);
  CHECK_FALSE(info.hostname.empty());
  CHECK_FALSE(info.arch.empty());
  CHECK_FALSE(info.kernel.empty());
  CHECK(info.cpus >= 1);
  // The reporter's and the installer's parts are the gateway's to fill.
  CHECK(info.server.empty());
  CHECK_FALSE(info.registered);
  CHECK(info.current_job.empty());
}
