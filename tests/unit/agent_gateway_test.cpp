// The agent's gateway on the test coordinator with mock metrics, reporter,
// installer and transport actors: the test sends the typed requests the
// transport would (GET /system, POST /updates/available), decides when and
// how the mocks answer, and reads the coap_reply the transport gets back.
// Commands are obeyed from the agent's server only (from_my_server).
#include "agent_test_support.hpp"

#include "actors/agent/gateway.hpp"
#include "model/json.hpp"

using namespace coapfleet;
using namespace coapfleet::agent_test;
using namespace std::chrono_literals;

namespace {

agent_system_info facts() {
  agent_system_info f;
  f.node_id = "node-3";
  f.hostname = "board-3";
  f.os = "Fixture OS 1.0";
  f.arch = "aarch64";
  f.kernel = "6.1.0";
  f.cpus = 4;
  f.memory_total_bytes = 2048;
  f.agent_version = "9.9.9";
  return f;
}

metrics_actor::behavior_type mock_metrics(metrics_actor::pointer) {
  return {
    [](atom::get) { return model::health_report{}; },
    [](atom::info) { return facts(); },
    [](atom::tick) {},
  };
}

/// How the mock installer answers notifications.
enum class verdict { accept, refuse, hold };

struct installer_script {
  verdict mode = verdict::accept;
  caf::error refusal;
  std::string current_job;
  uint32_t queued = 0;
  std::vector<model::update_notification> notes;
};

struct mock_installer_state {
  std::vector<caf::typed_response_promise<atom::ok>> held;
};

installer_actor::behavior_type
mock_installer(installer_actor::stateful_pointer<mock_installer_state> self,
               std::shared_ptr<installer_script> script) {
  return {
    [self, script](atom::notify, model::update_notification& n) -> caf::result<atom::ok> {
      script->notes.push_back(n);
      switch (script->mode) {
        case verdict::accept: return atom::ok::value;
        case verdict::refuse: return script->refusal;
        case verdict::hold: break;
      }
      auto rp = self->make_response_promise<atom::ok>();
      self->state.held.push_back(rp);
      return rp;
    },
    [script](atom::cancel, std::string& job, uint32_t attempt, bool force) -> std::string {
      model::update_notification n;
      n.job_id = job;
      n.attempt = attempt;
      n.cancel = true;
      n.force = force;
      script->notes.push_back(n);
      return force ? "stopping" : "cancelled";
    },
    [](atom::stop) -> int32_t { return 0; },
    [](atom::cancel, uint64_t) {},
    [script](atom::status) -> caf::result<std::string, uint32_t> {
      return {script->current_job, script->queued};
    },
    [](atom::response, uint64_t, client_response&) {},
    [](atom::report, bool, int32_t, std::string&, bool) {},
    [](atom::install, int32_t) {},
    [](atom::deadline, uint64_t) {},
    [](atom::job, uint64_t) {},
    // The test's cue: the held notifications are taken now.
    [self](atom::tick) {
      for (auto& rp : self->state.held)
        rp.deliver(atom::ok::value);
      self->state.held.clear();
    },
  };
}

struct gateway_fixture : coordinated_system {
  agent::trusted_server server{"127.1.0.250", 5700, {}};
  std::shared_ptr<transport_log> wire = std::make_shared<transport_log>();
  std::shared_ptr<reporter_log> reporter_seen = std::make_shared<reporter_log>();
  std::shared_ptr<installer_script> installer_does = std::make_shared<installer_script>();
  agent_transport_actor transport;
  metrics_actor metrics;
  reporter_actor reporter;
  installer_actor installer;
  agent_gateway_actor gateway;

  gateway_fixture() {
    transport = own(sys->spawn(mock_transport, wire));
    metrics = own(sys->spawn(mock_metrics));
    reporter = own(sys->spawn(mock_reporter, reporter_seen));
    installer = own(sys->spawn(mock_installer, installer_does));
    gateway = own(agent::spawn_agent_gateway(
      *sys, agent::agent_gateway_peers{transport, metrics, reporter, installer,
                                       "coap://127.1.0.250:5700", server, {}}));
    sched->run();
  }

  /// The reply the transport got for request `id` (fails when there is none).
  coap_reply reply_to(uint64_t id) {
    for (auto& [rid, r] : wire->replies)
      if (rid == id)
        return r;
    FAIL("no reply to request " << id);
    return {};
  }

  bool replied(uint64_t id) {
    for (auto& r : wire->replies)
      if (r.first == id)
        return true;
    return false;
  }

  /// A notification of `job` for `node`, from `from` (the server unless said).
  void notify(uint64_t id, const std::string& job, const std::string& node = "node-3",
              peer from = peer{"127.1.0.250", 5700, {}}) {
    model::update_notification n;
    n.job_id = job;
    n.node_id = node;
    n.spec.name = "tools";
    n.spec.version = "1";
    n.spec.package_type = "script";
    n.spec.script = "true";
    caf::anon_send(gateway, atom::notify::value, id, n, std::move(from));
    sched->run();
  }
};

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE_FIXTURE(gateway_fixture, "agent gateway: GET /system combines metrics, reporter and installer") {
  reporter_seen->registered = true;
  installer_does->current_job = "job-9";
  installer_does->queued = 2;
  caf::anon_send(gateway, atom::info::value, uint64_t{17});
  sched->run();
  auto r = reply_to(17);
  CHECK(r.code == 205);
  CHECK(r.content_format == 50);
  CHECK(has(r.payload, R"("node_id":"node-3")"));
  CHECK(has(r.payload, R"("hostname":"board-3")"));
  CHECK(has(r.payload, R"("os":"Fixture OS 1.0")"));
  CHECK(has(r.payload, R"("cpus":4)"));
  CHECK(has(r.payload, R"("agent_version":"9.9.9")"));
  CHECK(has(r.payload, R"("server":"coap://127.1.0.250:5700")"));
  CHECK(has(r.payload, R"("registered":true)"));
  CHECK(has(r.payload, R"("current_job":"job-9")"));
  CHECK(has(r.payload, R"("queued_jobs":2)"));

  // Idle and not registered.
  reporter_seen->registered = false;
  installer_does->current_job.clear();
  installer_does->queued = 0;
  caf::anon_send(gateway, atom::info::value, uint64_t{18});
  sched->run();
  r = reply_to(18);
  CHECK(r.code == 205);
  CHECK(has(r.payload, R"("registered":false)"));
  CHECK(has(r.payload, R"("current_job":null)"));
  CHECK(has(r.payload, R"("queued_jobs":0)"));
}

TEST_CASE_FIXTURE(gateway_fixture, "agent gateway: GET /system while the installer is gone is a 5.03") {
  stop(installer);
  caf::anon_send(gateway, atom::info::value, uint64_t{21});
  sched->run();
  auto r = reply_to(21);
  CHECK(r.code == 503);
  CHECK(r.content_format == 50);
  CHECK(r.max_age != UINT32_MAX);
  CHECK(has(r.payload, R"("error":)"));
}

TEST_CASE_FIXTURE(gateway_fixture, "agent gateway: POST /updates/available answers 2.04 once the installer took it") {
  installer_does->mode = verdict::hold;
  notify(5, "job-5");
  REQUIRE(installer_does->notes.size() == 1);
  CHECK(installer_does->notes[0].job_id == "job-5");
  CHECK(installer_does->notes[0].spec.script == "true");
  CHECK_FALSE(replied(5));  // the installer has not taken it yet
  caf::anon_send(installer, atom::tick::value);
  sched->run();
  auto r = reply_to(5);
  CHECK(r.code == 204);
  CHECK(r.content_format == 50);
  CHECK(has(r.payload, R"("message":"Update accepted")"));
  CHECK(has(r.payload, R"("job_id":"job-5")"));
}

TEST_CASE_FIXTURE(gateway_fixture, "agent gateway: an installer error becomes the CoAP error with a JSON body") {
  installer_does->mode = verdict::refuse;
  installer_does->refusal = make_api_error(api_errc::bad_request,
                                           "notification for node node-4, this is node node-3",
                                           "node_id");
  notify(6, "job-6", "node-4");
  auto r = reply_to(6);
  CHECK(r.code == 400);
  CHECK(r.content_format == 50);
  CHECK(has(r.payload, R"("error":"notification for node node-4, this is node node-3")"));
  CHECK(has(r.payload, R"("field":"node_id")"));

  installer_does->refusal = make_api_error(api_errc::internal, "journal not writable");
  notify(7, "job-7");
  r = reply_to(7);
  CHECK(r.code == 500);
  CHECK(has(r.payload, R"("error":"journal not writable")"));

  installer_does->refusal = make_api_error(api_errc::unavailable, "busy");
  notify(8, "job-8");
  r = reply_to(8);
  CHECK(r.code == 503);
  CHECK(r.max_age != UINT32_MAX);
}

TEST_CASE_FIXTURE(gateway_fixture, "agent gateway: an installer that does not answer in time is a 5.03") {
  installer_does->mode = verdict::hold;
  notify(9, "job-9");
  advance(9s);
  CHECK_FALSE(replied(9));
  advance(1s);
  auto r = reply_to(9);
  CHECK(r.code == 503);
  CHECK(r.content_format == 50);
  CHECK(r.max_age == 5);
  CHECK(has(r.payload, R"("error":)"));
}

// -- commands from the agent's server only -----------------------------------------

TEST_CASE("agent gateway: from_my_server compares IP addresses and the port") {
  agent::trusted_server v4{"127.0.0.1", 5683, {}};
  CHECK(agent::from_my_server(peer{"127.0.0.1", 5683, {}}, v4));
  CHECK(agent::from_my_server(peer{"::ffff:127.0.0.1", 5683, {}}, v4));  // dual-stack socket
  CHECK_FALSE(agent::from_my_server(peer{"127.0.0.2", 5683, {}}, v4));
  CHECK_FALSE(agent::from_my_server(peer{"127.0.0.1", 5684, {}}, v4));
  CHECK_FALSE(agent::from_my_server(peer{"127.0.0.1", 0, {}}, v4));
  CHECK_FALSE(agent::from_my_server(peer{"", 5683, {}}, v4));
  CHECK_FALSE(agent::from_my_server(peer{"localhost", 5683, {}}, v4));
  agent::trusted_server v6{"::1", 5683, {}};
  CHECK(agent::from_my_server(peer{"0:0:0:0:0:0:0:1", 5683, {}}, v6));
  CHECK_FALSE(agent::from_my_server(peer{"127.0.0.1", 5683, {}}, v6));
  agent::trusted_server mapped{"::ffff:10.0.0.1", 5683, {}};
  CHECK(agent::from_my_server(peer{"10.0.0.1", 5683, {}}, mapped));
  // No server configured, or not an address: nobody is the server.
  CHECK_FALSE(
    agent::from_my_server(peer{"127.0.0.1", 5683, {}}, agent::trusted_server{"", 5683, {}}));
  CHECK_FALSE(agent::from_my_server(peer{"127.0.0.1", 5683, {}},
                                    agent::trusted_server{"server.example", 5683, {}}));
  // A DTLS session is not the plain server, whatever its address.
  peer secure{"127.0.0.1", 5683, "node-3"};
  secure.secure = true;
  CHECK_FALSE(agent::from_my_server(secure, v4));
  // With DTLS, the session's identity counts, not its address or port.
  agent::trusted_server dtls{"127.0.0.1", 5684, "node-3"};
  CHECK(agent::from_my_server(secure, dtls));
  peer elsewhere{"127.0.0.9", 40001, "node-3"};
  elsewhere.secure = true;
  CHECK(agent::from_my_server(elsewhere, dtls));
  peer other{"127.0.0.1", 5684, "node-4"};
  other.secure = true;
  CHECK_FALSE(agent::from_my_server(other, dtls));
  peer no_identity{"127.0.0.1", 5684, ""};
  no_identity.secure = true;
  CHECK_FALSE(agent::from_my_server(no_identity, agent::trusted_server{"127.0.0.1", 5684, ""}));
  // A plain request from the server's address and port is not a DTLS session.
  CHECK_FALSE(agent::from_my_server(peer{"127.0.0.1", 5684, {}}, dtls));
}

TEST_CASE_FIXTURE(gateway_fixture, "agent gateway: a notification from anyone but its server is 4.03 and runs nothing") {
  uint64_t id = 30;
  for (auto from : {peer{"127.1.0.251", 5700, {}}, peer{"127.1.0.250", 5701, {}},
                    peer{"127.0.0.1", 5700, {}}}) {
    CAPTURE(from.address);
    CAPTURE(from.port);
    notify(id, "job-evil", "node-3", from);
    auto r = reply_to(id);
    CHECK(r.code == 403);
    CHECK(r.content_format == 50);
    CHECK(has(r.payload, R"("error":")"));
    CHECK(has(r.payload, "server"));
    CHECK(has(r.payload, R"("from":")" + from.address + ":" + std::to_string(from.port) + "\""));
    ++id;
  }
  CHECK(installer_does->notes.empty());  // the installer never heard of them
}

TEST_CASE_FIXTURE(gateway_fixture, "agent gateway: the server's own notification still reaches the installer") {
  notify(40, "job-40", "node-3", peer{"127.1.0.250", 5700, {}});
  CHECK(reply_to(40).code == 204);
  REQUIRE(installer_does->notes.size() == 1);
  CHECK(installer_does->notes[0].job_id == "job-40");
}

TEST_CASE_FIXTURE(gateway_fixture, "agent gateway: a body the transport refused is answered so only to its server") {
  auto bad = json_reply(400, model::encode_error("invalid JSON"));
  caf::anon_send(gateway, atom::notify::value, uint64_t{50}, bad, peer{"127.1.0.250", 5700, {}});
  sched->run();
  auto r = reply_to(50);
  CHECK(r.code == 400);
  CHECK(has(r.payload, "invalid JSON"));
  // A stranger learns nothing about the body: 4.03, as for a good one.
  caf::anon_send(gateway, atom::notify::value, uint64_t{51}, bad, peer{"127.1.0.9", 5700, {}});
  sched->run();
  r = reply_to(51);
  CHECK(r.code == 403);
  CHECK_FALSE(has(r.payload, "invalid JSON"));
  CHECK(installer_does->notes.empty());
}
