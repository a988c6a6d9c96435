// Unit tests of the simulator's bodies, statistics and summaries: every body
// a simulated node sends must pass the server's own decoders (model/json).
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "model/json.hpp"
#include "model/json_value.hpp"
#include "sim/bodies.hpp"
#include "sim/report.hpp"
#include "sim/stats.hpp"

using namespace coapfleet;
using namespace coapfleet::sim;

TEST_CASE("health bodies pass the server's decoder and vary plausibly") {
  rng r(42);
  health_walk h;
  h.init(r);
  std::vector<std::string> services = {"systemd", "network", "ssh", "docker"};
  char buf[1024];
  int unhealthy = 0;
  double last_cpu = h.cpu;
  bool cpu_moved = false;
  for (int i = 0; i < 5000; ++i) {
    h.step(r, 10, 0.05);
    size_t len = format_health(buf, sizeof buf, "sim-00042", h, services,
                               i % 2 ? "2026-11-22T01:58:57Z" : "");
    REQUIRE(len > 0);
    auto d = model::decode_health_report(std::string_view(buf, len));
    INFO(std::string(buf, len));
    REQUIRE(d.ok());
    auto& v = d.value;
    CHECK(v.node_id == "sim-00042");
    CHECK(v.cpu_percent >= 0);
    CHECK(v.cpu_percent <= 100);
    CHECK(v.memory_percent >= 0);
    CHECK(v.memory_percent <= 100);
    CHECK(v.disk_percent >= 0);
    CHECK(v.disk_percent <= 100);
    CHECK(v.temperature > 0);
    CHECK(v.uptime_seconds > 0);
    REQUIRE(v.services_status.size() == 4);
    cpu_moved |= std::fabs(h.cpu - last_cpu) > 0.01;
    last_cpu = h.cpu;
    if (!v.overall_healthy) {
      ++unhealthy;
      REQUIRE(v.error_messages.size() == 1);
      CHECK(v.error_messages[0] == "Service docker is not running");
      CHECK(v.services_status[3].first == "docker");
      CHECK_FALSE(v.services_status[3].second);
    } else {
      CHECK(v.error_messages.empty());
      for (auto& s : v.services_status)
        CHECK(s.second);
    }
  }
  CHECK(cpu_moved);
  CHECK(unhealthy > 150);  // about 5 % of 5000
  CHECK(unhealthy < 400);
  // Too small a buffer: 0, never a cut body.
  CHECK(format_health(buf, 40, "sim-00042", h, services, "") == 0);
}

TEST_CASE("without docker the last service is the one not running") {
  rng r(1);
  health_walk h;
  h.init(r);
  h.unhealthy = true;
  char buf[512];
  size_t len = format_health(buf, sizeof buf, "n1", h, {"ssh", "mqtt"}, "");
  auto d = model::decode_health_report(std::string_view(buf, len));
  REQUIRE(d.ok());
  REQUIRE(d.value.error_messages.size() == 1);
  CHECK(d.value.error_messages[0] == "Service mqtt is not running");
  CHECK_FALSE(d.value.overall_healthy);
}

TEST_CASE("registration and report bodies pass the server's decoders") {
  auto body = registration_body("sim-00003", "127.2.0.3", 5683, {"ssh", "docker"}, 2);
  auto reg = model::decode_node_registration(body, "127.0.0.1");
  REQUIRE(reg.ok());
  CHECK(reg.value.node_id == "sim-00003");
  CHECK(reg.value.ip_address == "127.2.0.3");
  CHECK(reg.value.port == 5683);
  CHECK(reg.value.services == std::vector<std::string>{"ssh", "docker"});
  CHECK_FALSE(reg.value.system_info.empty());

  using st = model::node_update_state;
  auto ok = model::decode_updates_request(
    report_body("job-1", "sim-00003", st::succeeded, 100, 1, ""));
  REQUIRE(ok.ok());
  CHECK(ok.value.action == model::updates_action::report);
  CHECK(ok.value.report.job_id == "job-1");
  CHECK(ok.value.report.node_id == "sim-00003");
  CHECK(ok.value.report.state == st::succeeded);
  CHECK(ok.value.report.result == 1);
  auto failed = model::decode_updates_request(
    report_body("job-1", "sim-00003", st::failed, -1, 8, "install exited with code 1"));
  REQUIRE(failed.ok());
  CHECK(failed.value.report.state == st::failed);
  CHECK(failed.value.report.result == 8);
  CHECK(failed.value.report.error_message == "install exited with code 1");
  auto dl = model::decode_updates_request(
    report_body("job-1", "sim-00003", st::downloading, 0, -1, ""));
  REQUIRE(dl.ok());
  CHECK(dl.value.report.state == st::downloading);
  CHECK(dl.value.report.progress == 0);
}

TEST_CASE("rng: deterministic, uniform in [0,1)") {
  rng a(5), b(5), c(6);
  CHECK(a.next() == b.next());
  CHECK(a.next() != c.next());
  double sum = 0;
  for (int i = 0; i < 100000; ++i) {
    double u = a.uniform();
    REQUIRE(u >= 0);
    REQUIRE(u < 1);
    sum += u;
  }
  CHECK(sum / 100000 == doctest::Approx(0.5).epsilon(0.01));
  CHECK_FALSE(a.chance(0));
  CHECK(a.chance(1.0));
}

TEST_CASE("latency histogram: exact below 128 us, within 1.6 % above") {
  latency_histogram h;
  CHECK(h.quantile(0.5) == 0);
  for (uint64_t v = 1; v <= 100; ++v)
    h.record(v);
  CHECK(h.count() == 100);
  CHECK(h.min() == 1);
  CHECK(h.max() == 100);
  CHECK(h.quantile(0.5) == 50);
  CHECK(h.quantile(0.99) == 99);
  CHECK(h.quantile(1.0) == 100);
  CHECK(h.mean() == doctest::Approx(50.5));

  for (uint64_t v : {128ull, 1000ull, 12345ull, 999999ull, 123456789ull, 1ull << 39}) {
    size_t b = latency_histogram::bucket_of(v);
    uint64_t upper = latency_histogram::bucket_upper(b);
    CHECK(upper >= v);
    CHECK(static_cast<double>(upper - v) <= 0.016 * static_cast<double>(v));
    if (b > 0)
      CHECK(latency_histogram::bucket_upper(b - 1) < v);
  }
  latency_histogram big;
  for (int i = 0; i < 990; ++i)
    big.record(1000);
  for (int i = 0; i < 10; ++i)
    big.record(50000);
  CHECK(big.quantile(0.5) >= 1000);
  CHECK(big.quantile(0.5) <= 1016);
  CHECK(big.quantile(0.99) <= 1016);
  CHECK(big.quantile(0.999) == 50000);  // capped at the real maximum
  latency_histogram merged = h;
  merged.merge(big);
  CHECK(merged.count() == 1100);
  CHECK(merged.max() == 50000);
  CHECK(merged.min() == 1);
}

TEST_CASE("code counts and the JSON summary") {
  code_counts c;
  CHECK(c.text() == "-");
  CHECK(c.json() == "{}");
  c.add(0x44);
  c.add(0x44);
  c.add(0x84);
  CHECK(c.total() == 3);
  CHECK(c.text() == "2.04:2 4.04:1");
  CHECK(c.json() == "{\"2.04\":2,\"4.04\":1}");

  config cfg;
  cfg.mode = sim_mode::load;
  run_result r;
  r.mode = sim_mode::load;
  r.codes = c;
  r.latency.record(1500);
  r.throughput = 1234.5;
  r.lost = 1;
  r.unanswered_at_end = 2;
  auto text = summary_json(cfg, r);
  auto doc = model::json_document::parse(text);
  REQUIRE_MESSAGE(doc.ok(), doc.error());
  auto d = doc.root();
  CHECK(d["mode"].as_string() == "load");
  CHECK(d["throughput"].as_number(-1) == doctest::Approx(1234.5));
  CHECK(d["p99_ms"].as_number(-1) == doctest::Approx(1.5).epsilon(0.02));
  CHECK(d["codes"]["2.04"].to_json() == "2");
  CHECK(d["losses"].to_json() == "3");
  CHECK(summary_text(cfg, r).find("2.04:2 4.04:1") != std::string::npos);

  cfg.mode = sim_mode::fleet;
  r.mode = sim_mode::fleet;
  r.jobs_succeeded = 7;
  auto fleet = summary_json(cfg, r);
  auto fleet_doc = model::json_document::parse(fleet);
  REQUIRE_MESSAGE(fleet_doc.ok(), fleet_doc.error());
  auto f = fleet_doc.root();
  CHECK(f["jobs_succeeded"].to_json() == "7");
  CHECK(f["health_latency_ms"]["count"].to_json() == "1");
}
