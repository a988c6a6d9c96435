// The installer and a notification: the job's spec comes from the server
// (never from the notification), a job the server does not have for this
// node runs nothing, and with a verify key only correctly signed jobs run
// (common/job_signing with the canonical text of model/job_signature).
#include "installer_fixture.hpp"

#include "common/job_signing.hpp"
#include "model/job_signature.hpp"

using namespace coapfleet;
using namespace coapfleet::agent_test;

// -- the spec comes from the server, signed jobs ---------------------------------------

namespace {

const char* const sign_key_a = "-----BEGIN PRIVATE KEY-----\n"
                               "MC4CAQAwBQYDK2VwBCIEIAPYnv+nDhLa7uCv3ilyM3+rcSpllDy3Ah/xmYrfrMFo\n"
                               "-----END PRIVATE KEY-----\n";
const char* const verify_key_a = "-----BEGIN PUBLIC KEY-----\n"
                                 "MCowBQYDK2VwAyEAfxhHjDGPKx2SPLi8YA0BEBo/Ua8YfL7gAJ2VvGKzkoc=\n"
                                 "-----END PUBLIC KEY-----\n";
const char* const sign_key_b = "-----BEGIN PRIVATE KEY-----\n"
                               "MC4CAQAwBQYDK2VwBCIEICbT9bHUw0mS55k35K/49BuPo/fvlZJnLMQC4IrzQx+8\n"
                               "-----END PRIVATE KEY-----\n";

std::shared_ptr<const common::ed25519_key> key_of(const char* pem, bool is_private) {
  std::string err;
  auto k = common::ed25519_key::from_pem(pem, is_private, err);
  REQUIRE_MESSAGE(k, err);
  return k;
}

model::update_notification signed_with(model::update_notification n, const char* pem) {
  n.spec.signature = key_of(pem, true)->sign(model::signed_job_text(n.spec));
  REQUIRE(n.spec.signature.size() == 128);
  return n;
}

}  // namespace

TEST_CASE("ed25519 keys: sign and verify, a public key cannot sign") {
  auto priv = key_of(sign_key_a, true);
  auto pub = key_of(verify_key_a, false);
  auto sig = priv->sign("text");
  CHECK(sig.size() == 128);
  CHECK(pub->verify("text", sig));
  CHECK(priv->verify("text", sig));
  CHECK_FALSE(pub->verify("text!", sig));
  CHECK_FALSE(pub->verify("text", key_of(sign_key_b, true)->sign("text")));
  CHECK_FALSE(pub->verify("text", "zz"));
  CHECK_FALSE(pub->verify("text", std::string(128, 'g')));
  CHECK(pub->sign("text").empty());
  std::string err;
  CHECK_FALSE(common::ed25519_key::from_pem("not a key", false, err));
  CHECK_FALSE(err.empty());
  CHECK_FALSE(common::ed25519_key::from_pem(verify_key_a, true, err));  // not private
}

TEST_CASE_FIXTURE(installer_fixture, "installer: the spec is fetched from the server, never taken from the notification") {
  start();
  auto real = script_job("job-1", "echo from-the-server");
  wire->specs["job-1"] = model::encode_node_job(real);
  // A notification that still carries a spec of its own (an old server, an
  // attacker on the server's address): that spec is not what runs.
  auto forged = script_job("job-1", "id > pwned");
  ask<atom::ok>(installer, atom::notify::value, forged);
  REQUIRE(wire->spec_requests.size() == 1);
  auto& req = wire->spec_requests[0].req;
  CHECK(req.method == request_method::get);
  CHECK(req.path == "updates/job-1/spec");
  CHECK(req.query == "node_id=node-1");
  REQUIRE(runs.size() == 1);
  CHECK(runs[0].run.note.spec.script == "echo from-the-server");
  CHECK(journal().jobs[0].note.spec.script == "echo from-the-server");
}

TEST_CASE_FIXTURE(installer_fixture, "installer: a job the server does not have for this node is 4.04 and nothing runs") {
  start();
  auto err = ask_error<atom::ok>(installer, atom::notify::value, script_job("nope-1", "id"));
  CHECK(err.code() == static_cast<uint8_t>(api_errc::not_found));
  CHECK(runs.empty());
  CHECK(journal().jobs.empty());
  CHECK(reporter_seen->reports.empty());
  // The server's 4.03 (a job for another node) is the same to the notifier.
  wire->specs.clear();
  wire->specs_answer = false;
  auto rh = (*self)->request(installer, caf::infinite, atom::notify::value,
                             script_job("other-1", "id"));
  sched->run();
  REQUIRE(wire->spec_requests.size() == 2);
  auto& sent = wire->spec_requests[1];
  caf::anon_send(sent.from, atom::response::value, sent.id,
                 answered(403, R"({"error":"job other-1 is not for node node-1"})"));
  sched->run();
  bool refused = false;
  std::move(rh).receive([](atom::ok) { FAIL("accepted"); },
                        [&](caf::error& e) {
                          refused = e.code() == static_cast<uint8_t>(api_errc::not_found);
                        });
  CHECK(refused);
  CHECK(runs.empty());
}

TEST_CASE_FIXTURE(installer_fixture, "installer: a server that does not answer the fetch gets 5.03, nothing runs") {
  icfg.fetch_timeout = 8s;
  start();
  wire->specs_answer = false;
  auto rh = (*self)->request(installer, caf::infinite, atom::notify::value,
                             serve(script_job("job-1", "true")));
  sched->run();
  advance(8s);
  bool unavailable = false;
  std::move(rh).receive([](atom::ok) { FAIL("accepted"); },
                        [&](caf::error& e) {
                          unavailable = e.code() == static_cast<uint8_t>(api_errc::unavailable);
                        });
  CHECK(unavailable);
  CHECK(runs.empty());
  // A late answer is dropped.
  auto& sent = wire->spec_requests.at(0);
  caf::anon_send(sent.from, atom::response::value, sent.id,
                 answered(205, model::encode_node_job(script_job("job-1", "true"))));
  sched->run();
  CHECK(runs.empty());
  CHECK(journal().jobs.empty());
}

TEST_CASE_FIXTURE(installer_fixture, "installer: a fetch its server does not answer is asked of the next member at once") {
  // The agent's server was killed; another member of its cluster sent the
  // notification. The spec comes from the next member, within the same
  // notification (not after the server's next try).
  icfg.server_host = "127.1.0.250";
  icfg.server_port = 5700;
  icfg.other_servers = {{"127.1.0.251", 5701}, {"127.1.0.252", 5702}};
  start();
  wire->specs_answer = false;
  auto rh = (*self)->request(installer, caf::infinite, atom::notify::value,
                             serve(script_job("job-1", "true")));
  sched->run();
  REQUIRE(wire->spec_requests.size() == 1);
  CHECK(wire->spec_requests[0].req.host == "127.1.0.250");
  caf::anon_send(wire->spec_requests[0].from, atom::response::value, wire->spec_requests[0].id,
                 no_answer());
  sched->run();
  REQUIRE(wire->spec_requests.size() == 2);
  CHECK(wire->spec_requests[1].req.host == "127.1.0.251");
  CHECK(wire->spec_requests[1].req.port == 5701);
  caf::anon_send(wire->spec_requests[1].from, atom::response::value, wire->spec_requests[1].id,
                 answered(205, model::encode_node_job(script_job("job-1", "true"))));
  sched->run();
  bool accepted = false;
  std::move(rh).receive([&](atom::ok) { accepted = true; },
                        [](caf::error& e) { FAIL("refused: " << caf::to_string(e)); });
  CHECK(accepted);
  CHECK(runs.size() == 1);
  // Every member silent: the notification gets 5.03 after each was tried once.
  wire->spec_requests.clear();
  auto rh2 = (*self)->request(installer, caf::infinite, atom::notify::value,
                              serve(script_job("job-2", "true")));
  sched->run();
  for (size_t k = 0; k < 3; ++k) {
    REQUIRE(wire->spec_requests.size() == k + 1);
    caf::anon_send(wire->spec_requests[k].from, atom::response::value, wire->spec_requests[k].id,
                   no_answer());
    sched->run();
  }
  CHECK(wire->spec_requests.size() == 3);
  bool unavailable = false;
  std::move(rh2).receive([](atom::ok) { FAIL("accepted"); },
                         [&](caf::error& e) {
                           unavailable = e.code() == static_cast<uint8_t>(api_errc::unavailable);
                         });
  CHECK(unavailable);
}

TEST_CASE_FIXTURE(installer_fixture, "installer: with a verify key only correctly signed jobs run") {
  icfg.verify_key = key_of(verify_key_a, false);
  start();
  // Unsigned: failed with the reason, result 5, nothing ran.
  CHECK(notify(script_job("job-u", "touch unsigned")));
  CHECK(runs.empty());
  auto u = reports_of("job-u");
  REQUIRE(u.size() == 1);
  CHECK(u[0].state == node_update_state::failed);
  CHECK(u[0].result == 5);
  CHECK(u[0].error_message.find("job is not signed") != std::string::npos);
  // Signed with another key.
  CHECK(notify(signed_with(script_job("job-b", "touch other-key"), sign_key_b)));
  CHECK(runs.empty());
  auto b = reports_of("job-b");
  REQUIRE(b.size() == 1);
  CHECK(b[0].state == node_update_state::failed);
  CHECK(b[0].error_message.find("job signature does not verify with --verify-key")
        != std::string::npos);
  // Changed after signing.
  auto altered = signed_with(script_job("job-c", "true"), sign_key_a);
  altered.spec.script = "touch altered";
  CHECK(notify(altered));
  CHECK(runs.empty());
  REQUIRE(reports_of("job-c").size() == 1);
  CHECK(reports_of("job-c")[0].state == node_update_state::failed);
  // A file job whose artifact was swapped (another SHA-256 than signed).
  auto file = script_job("job-f", "");
  file.spec.package_type = "file";
  file.spec.script.clear();
  file.spec.artifact = "fw.bin";
  file.spec.target_path = "/opt/fw.bin";
  file.spec.artifact_sha256 = std::string(64, 'a');
  auto swapped = signed_with(file, sign_key_a);
  swapped.spec.artifact_sha256 = std::string(64, 'b');
  CHECK(notify(swapped));
  CHECK(wire->requests.empty());  // nothing downloaded
  REQUIRE(reports_of("job-f").size() == 1);
  CHECK(reports_of("job-f")[0].state == node_update_state::failed);
  // Correctly signed: runs.
  CHECK(notify(signed_with(script_job("job-ok", "true"), sign_key_a)));
  REQUIRE(runs.size() == 1);
  CHECK(runs[0].job_id == "job-ok");
  CHECK(states_of("job-ok") == std::vector<node_update_state>{node_update_state::installing});
}

TEST_CASE_FIXTURE(installer_fixture, "installer: without a verify key signatures are not needed") {
  start();
  CHECK(notify(script_job("job-1", "true")));
  CHECK(notify(signed_with(script_job("job-2", "true"), sign_key_b)));
  REQUIRE(runs.size() == 1);  // job-2 waits behind job-1
  worker_says(0, atom::report::value, true, int32_t{1}, std::string(), false);
  CHECK(runs.size() == 2);
}
