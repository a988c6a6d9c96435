// The agent's reporter on the test coordinator with a mock transport: the
// test reads the CoAP requests the reporter sends and answers them (or lets
// them go unanswered), and moves the clock to fire its backoff and Max-Age
// timers. The outbox lives in a temporary state directory.
#include "agent_test_support.hpp"

#include <algorithm>

#include "actors/agent/journal.hpp"
#include "actors/agent/reporter.hpp"
#include "model/json.hpp"

using namespace coapfleet;
using namespace coapfleet::agent_test;
using namespace std::chrono_literals;

namespace {

struct reporter_fixture : coordinated_system {
  temp_dir dir;
  std::shared_ptr<transport_log> wire = std::make_shared<transport_log>();
  agent_transport_actor transport;
  agent::reporter_config rcfg;
  reporter_actor reporter;

  reporter_fixture() {
    transport = own(sys->spawn(mock_transport, wire));
    rcfg.server_host = "127.1.0.250";
    rcfg.server_port = 5700;
    rcfg.registration.node_id = "node-7";
    rcfg.registration.hostname = "board-7";
    rcfg.registration.ip_address = "127.1.0.7";
    rcfg.registration.port = 5690;
    rcfg.registration.services = {"sshd"};
    rcfg.outbox_path = dir / "outbox.json";
    rcfg.backoff_min = 1s;
    rcfg.backoff_max = 8s;
  }

  void start() {
    reporter = own(agent::spawn_reporter(*sys, rcfg, transport));
    sched->run();
  }

  const sent_request& last() {
    REQUIRE_FALSE(wire->requests.empty());
    return wire->requests.back();
  }

  /// The transport's answer to request `r`.
  void answer(const sent_request& r, client_response resp) {
    caf::anon_send(r.from, atom::response::value, r.id, std::move(resp));
    sched->run();
  }

  void sample(double cpu) {
    model::health_report h;
    h.node_id = "node-7";
    h.cpu_percent = cpu;
    caf::anon_send(reporter, atom::health::value, h);
    sched->run();
  }

  void step(const std::string& job, model::node_update_state s, int32_t result = -1) {
    model::update_report r;
    r.job_id = job;
    r.node_id = "node-7";
    r.state = s;
    r.result = result;
    caf::anon_send(reporter, atom::report::value, r);
    sched->run();
  }

  bool registered() { return ask<bool>(reporter, atom::status::value); }

  /// Starts and completes the registration.
  void start_registered() {
    start();
    REQUIRE(wire->requests.size() == 1);
    answer(last(), answered(201));
    REQUIRE(registered());
  }

  std::deque<model::update_report> outbox() {
    std::string err;
    auto out = agent::load_outbox(rcfg.outbox_path, err);
    CHECK(err.empty());
    return out;
  }
};

bool is_enroll(const sent_request& r) { return r.req.method == request_method::post && r.req.path == "nodes"; }
bool is_health(const sent_request& r) { return r.req.method == request_method::put && r.req.path == "health"; }
bool is_report(const sent_request& r) { return r.req.method == request_method::post && r.req.path == "updates"; }

double cpu_of(const sent_request& r) {
  auto h = model::decode_health_report(r.req.payload);
  REQUIRE(h.ok());
  return h.value.cpu_percent;
}

model::update_report report_of(const sent_request& r) {
  auto d = model::decode_updates_request(r.req.payload);
  REQUIRE(d.ok());
  REQUIRE(d.value.action == model::updates_action::report);
  return d.value.report;
}

}  // namespace

TEST_CASE_FIXTURE(reporter_fixture, "reporter: registers first, then sends the newest health") {
  start();
  REQUIRE(wire->requests.size() == 1);
  auto& reg = wire->requests[0];
  CHECK(is_enroll(reg));
  CHECK(reg.req.host == "127.1.0.250");
  CHECK(reg.req.port == 5700);
  CHECK(reg.req.content_format == 50);
  auto body = model::decode_node_registration(reg.req.payload, "127.0.0.1");
  REQUIRE(body.ok());
  CHECK(body.value.node_id == "node-7");
  CHECK(body.value.ip_address == "127.1.0.7");
  CHECK(body.value.port == 5690);
  CHECK(body.value.services == std::vector<std::string>{"sshd"});
  CHECK_FALSE(registered());

  // Samples before the registration is through are not sent; the newest waits.
  sample(10);
  sample(11);
  CHECK(wire->requests.size() == 1);
  answer(reg, answered(201));
  CHECK(registered());
  REQUIRE(wire->requests.size() == 2);
  CHECK(is_health(last()));
  CHECK(cpu_of(last()) == 11);

  // One health report in flight at a time; the newest sample goes next.
  auto inflight = last();
  sample(12);
  sample(13);
  CHECK(wire->requests.size() == 2);
  answer(inflight, answered(204));
  REQUIRE(wire->requests.size() == 3);
  CHECK(cpu_of(last()) == 13);
  answer(last(), answered(204));
  CHECK(wire->requests.size() == 3);  // nothing newer to send
  CHECK_FALSE(sched->has_pending_timeout());
}

TEST_CASE_FIXTURE(reporter_fixture, "reporter: registers again when the server answers 4.04") {
  start_registered();
  sample(20);
  REQUIRE(is_health(last()));
  answer(last(), answered(404, R"({"error":"node not registered"})"));
  CHECK_FALSE(registered());
  REQUIRE(wire->requests.size() == 3);
  CHECK(is_enroll(last()));
  // Samples wait for the new registration.
  sample(21);
  CHECK(wire->requests.size() == 3);
  answer(last(), answered(201));
  CHECK(registered());
  REQUIRE(wire->requests.size() == 4);
  CHECK(is_health(last()));
  CHECK(cpu_of(last()) == 21);
}

TEST_CASE_FIXTURE(reporter_fixture,
                  "reporter: backs off with jitter while the server does not answer") {
  start();
  // Each retry waits twice as long as the one before (up to backoff_max),
  // give or take 25 %, and nothing is sent before it is due.
  std::vector<double> ratios;
  auto nominal = 1000ms;
  for (int attempt = 0; attempt < 5; ++attempt) {
    REQUIRE(is_enroll(last()));
    auto before = wire->requests.size();
    answer(last(), no_answer());
    auto delay = next_timer();
    CHECK(delay >= nominal * 3 / 4);
    CHECK(delay <= nominal * 5 / 4);
    ratios.push_back(static_cast<double>(delay.count()) / static_cast<double>(nominal.count()));
    advance(delay - 1ms);
    CHECK(wire->requests.size() == before);
    advance(1ms);
    REQUIRE(wire->requests.size() == before + 1);
    nominal = std::min<std::chrono::milliseconds>(nominal * 2, rcfg.backoff_max);
  }
  // Jitter: the delays are not all exactly the nominal ones.
  CHECK(std::any_of(ratios.begin(), ratios.end(), [](double r) { return r != 1.0; }));
  CHECK_FALSE(registered());

  // The server answers: registered, and the backoff starts over.
  answer(last(), answered(201));
  CHECK(registered());
  sample(30);
  REQUIRE(is_health(last()));
  answer(last(), no_answer());
  CHECK_FALSE(registered());  // it registers again once the server is back
  auto delay = next_timer();
  CHECK(delay >= 750ms);
  CHECK(delay <= 1250ms);
  auto before = wire->requests.size();
  advance(delay);
  REQUIRE(wire->requests.size() == before + 1);
  CHECK(is_enroll(last()));
}

TEST_CASE_FIXTURE(reporter_fixture, "reporter: no health until Max-Age after a 5.03 has passed") {
  start_registered();
  sample(40);
  auto busy = answered(503);
  busy.max_age = 30;
  answer(last(), busy);
  auto before = wire->requests.size();
  sample(41);
  sample(42);
  advance(29s);
  CHECK(wire->requests.size() == before);
  advance(1s);
  REQUIRE(wire->requests.size() == before + 1);
  CHECK(is_health(last()));
  CHECK(cpu_of(last()) == 42);  // the newest sample, not the refused one

  // Without Max-Age the option's default applies: 60 s.
  answer(last(), answered(503));
  before = wire->requests.size();
  sample(43);
  advance(59s);
  CHECK(wire->requests.size() == before);
  advance(1s);
  REQUIRE(wire->requests.size() == before + 1);
  CHECK(cpu_of(last()) == 43);
  answer(last(), answered(204));

  // A resume (the Max-Age timer) ends the pause at once.
  busy.max_age = 600;
  sample(44);
  answer(last(), busy);
  before = wire->requests.size();
  sample(45);
  CHECK(wire->requests.size() == before);
  caf::anon_send(reporter, atom::resume::value);
  sched->run();
  REQUIRE(wire->requests.size() == before + 1);
  CHECK(cpu_of(last()) == 45);
}

TEST_CASE_FIXTURE(reporter_fixture,
                  "reporter: job steps go in order, stay on disk until taken, survive a restart") {
  start();
  auto enroll_request = last();
  // Steps queue (on disk) while the node is not registered yet.
  step("job-1", model::node_update_state::downloading);
  step("job-1", model::node_update_state::installing);
  step("job-1", model::node_update_state::succeeded, 1);
  CHECK(wire->requests.size() == 1);
  REQUIRE(outbox().size() == 3);

  answer(enroll_request, answered(201));
  REQUIRE(wire->requests.size() == 2);
  auto first = report_of(last());
  CHECK(first.job_id == "job-1");
  CHECK(first.node_id == "node-7");
  CHECK(first.state == model::node_update_state::downloading);
  answer(last(), answered(204));
  REQUIRE(outbox().size() == 2);  // taken: gone from disk
  REQUIRE(wire->requests.size() == 3);
  CHECK(report_of(last()).state == model::node_update_state::installing);

  // Not answered: the same step is retried after the backoff, not skipped.
  answer(last(), no_answer());
  CHECK(wire->requests.size() == 3);
  advance(next_timer());
  REQUIRE(wire->requests.size() == 4);
  CHECK(report_of(last()).state == model::node_update_state::installing);
  CHECK(outbox().size() == 2);

  // The agent stops before the server took it: a new reporter resends it.
  stop(reporter);
  auto old_requests = wire->requests.size();
  start();
  REQUIRE(wire->requests.size() == old_requests + 1);
  REQUIRE(is_enroll(last()));
  answer(last(), answered(201));
  REQUIRE(wire->requests.size() == old_requests + 2);
  CHECK(report_of(last()).state == model::node_update_state::installing);
  answer(last(), answered(204));
  REQUIRE(wire->requests.size() == old_requests + 3);
  auto done = report_of(last());
  CHECK(done.state == model::node_update_state::succeeded);
  CHECK(done.result == 1);
  answer(last(), answered(204));
  CHECK(outbox().empty());
  CHECK(wire->requests.size() == old_requests + 3);
}

TEST_CASE_FIXTURE(reporter_fixture, "reporter: a step the server refuses does not block the queue") {
  start_registered();
  step("job-gone", model::node_update_state::installing);
  step("job-2", model::node_update_state::installing);
  REQUIRE(is_report(last()));
  CHECK(report_of(last()).job_id == "job-gone");
  answer(last(), answered(404, R"({"error":"unknown job"})"));
  REQUIRE(is_report(last()));
  CHECK(report_of(last()).job_id == "job-2");
  answer(last(), answered(204));
  CHECK(outbox().empty());
}

TEST_CASE_FIXTURE(reporter_fixture,
                  "reporter: fails over to the next server in turn and registers there first") {
  rcfg.other_servers = {{"127.1.0.251", 5701}, {"127.1.0.252", 5702}};
  start_registered();
  sample(10);
  REQUIRE(wire->requests.size() == 2);
  auto health = last();
  CHECK(health.req.host == "127.1.0.250");
  sample(11);  // taken while the first is on its way
  answer(health, no_answer());
  CHECK_FALSE(registered());
  // The next server, registered with before anything else.
  sched->advance_time(2s);
  sched->run();
  auto again = last();
  CHECK(again.req.path == "nodes");
  CHECK(again.req.host == "127.1.0.251");
  CHECK(again.req.port == 5701);
  answer(again, answered(201));
  CHECK(registered());
  sample(12);
  CHECK(last().req.host == "127.1.0.251");
  CHECK(last().req.path == "health");
  answer(last(), answered(204));
  // That one stops answering too: the third; after it, the first again.
  sample(13);
  answer(last(), no_answer());
  sched->advance_time(2s);
  sched->run();
  CHECK(last().req.host == "127.1.0.252");
  answer(last(), no_answer());
  sched->advance_time(2s);
  sched->run();
  CHECK(last().req.host == "127.1.0.250");
  CHECK(last().req.path == "nodes");
}

TEST_CASE_FIXTURE(reporter_fixture,
                  "reporter: a lost answer from a server already left behind moves nothing") {
  rcfg.other_servers = {{"127.1.0.251", 5701}};
  start_registered();
  sample(10);
  auto health = last();
  step("job-1", model::node_update_state::downloading);
  auto report = last();
  REQUIRE(report.req.path == "updates");
  answer(health, no_answer());  // fails over to .251
  answer(report, no_answer());  // was sent to .250: no second failover
  sched->advance_time(2s);
  sched->run();
  CHECK(last().req.host == "127.1.0.251");
  CHECK(last().req.path == "nodes");
  answer(last(), answered(201));
  // The report goes again, to the new server.
  bool resent = std::any_of(wire->requests.begin(), wire->requests.end(), [](auto& r) {
    return r.req.path == "updates" && r.req.host == "127.1.0.251";
  });
  if (!resent) {
    sched->advance_time(2s);
    sched->run();
    resent = std::any_of(wire->requests.begin(), wire->requests.end(), [](auto& r) {
      return r.req.path == "updates" && r.req.host == "127.1.0.251";
    });
  }
  CHECK(resent);
}
