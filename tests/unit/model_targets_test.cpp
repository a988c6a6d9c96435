// Targeting by labels, system_info and the version inventory; the
// inventory a job gives and the success rule; their JSON.
#include <doctest/doctest.h>

#include "model/json.hpp"
#include "model/job_signature.hpp"
#include "model/rules.hpp"
#include "model/targets.hpp"
#include "model_json_helpers.hpp"

using namespace coapfleet::model;
using model_json_test::check_fails_on;

TEST_CASE("labels merge: new values win, an empty value removes, the rest stay") {
  string_map have{{"ring", "canary"}, {"site", "berlin"}};
  auto out = merge_labels(have, {{"floor", "2"}, {"ring", ""}, {"site", "paris"}});
  CHECK(out == string_map{{"floor", "2"}, {"site", "paris"}});
  CHECK(merge_labels({}, {{"a", ""}}).empty());
  CHECK(merge_labels(have, {}) == have);
}

TEST_CASE("target_labels match labels, system_info.arch/os and inventory.<name>, all of them") {
  node_traits t;
  t.labels = {{"ring", "canary"}, {"site", "berlin"}};
  t.inventory = {{"fw", "1.1.0"}, {"pip:aiocoap", "0.4.7"}};
  t.arch = "arm64";
  t.os = "linux";
  CHECK(matches({{"site", "berlin"}}, t));
  CHECK(matches({{"ring", "canary"}, {"site", "berlin"}}, t));
  CHECK_FALSE(matches({{"ring", "canary"}, {"site", "paris"}}, t));
  CHECK(matches({{"system_info.arch", "arm64"}, {"system_info.os", "linux"}}, t));
  CHECK_FALSE(matches({{"system_info.arch", "x86_64"}}, t));
  CHECK(matches({{"inventory.fw", "1.1.0"}}, t));
  CHECK_FALSE(matches({{"inventory.fw", "1.2.0"}}, t));
  CHECK_FALSE(matches({{"missing", ""}}, t));
  CHECK(matches({}, t));
  CHECK_FALSE(matches({{"system_info.arch", "arm64"}}, node_traits{}));
}

TEST_CASE("a spec targets listed nodes and nodes matching its labels") {
  job_spec s;
  node_traits berlin;
  berlin.labels = {{"site", "berlin"}};
  s.target_nodes = {"all"};
  CHECK(targeted(s, "x", {}));
  s.target_labels = {{"site", "berlin"}};
  CHECK(targeted(s, "x", berlin));
  CHECK_FALSE(targeted(s, "x", {}));  // "all" with labels: the matching ones
  s.target_nodes = {"n-1"};
  CHECK(targeted(s, "n-1", {}));      // named besides the labels
  CHECK(targeted(s, "n-2", berlin));
  CHECK_FALSE(targeted(s, "n-2", {}));
  s.target_nodes.clear();
  CHECK(targeted(s, "n-3", berlin));
  CHECK_FALSE(targeted(s, "n-1", {}));
  s.target_labels.clear();
  s.target_nodes = {"n-1"};
  CHECK_FALSE(targeted(s, "n-2", berlin));
}

TEST_CASE("a job's inventory entries and the success rule") {
  job_spec s;
  s.name = "python-packages-update";
  s.version = "2025.09.16";
  s.package_type = "pip";
  s.packages = {"aiocoap==0.4.7", "requests", "pydantic==2.5.0; python_version>'3'"};
  auto inv = inventory_of(s);
  CHECK(inv == string_map{{"pip:aiocoap", "0.4.7"},
                          {"pip:pydantic", "2.5.0"},
                          {"python-packages-update", "2025.09.16"}});
  s.package_type = "apt";
  s.packages = {"curl=7.88.1-10", "jq"};
  CHECK(inventory_of(s) == string_map{{"apt:curl", "7.88.1-10"},
                                      {"python-packages-update", "2025.09.16"}});
  std::string why;
  CHECK(runs_version(inv, s, why));
  CHECK_FALSE(runs_version({{"python-packages-update", "2025.01.01"}}, s, why));
  CHECK(why.find("at version 2025.01.01, not 2025.09.16") != std::string::npos);
  CHECK_FALSE(runs_version({}, s, why));
  CHECK(why.find("not at all") != std::string::npos);

  string_map have{{"a", "1"}, {"fw", "1.0"}};
  merge_inventory(have, {{"fw", "2.0"}, {"z", "9"}});
  CHECK(have == string_map{{"a", "1"}, {"fw", "2.0"}, {"z", "9"}});
}

TEST_CASE("registrations carry labels and an inventory; bad ones name the field") {
  auto d = decode_node_registration(
    R"({"node_id":"n-1","labels":{"site":"berlin","ring":"canary"},)"
    R"("inventory":{"fw":"1.1.0"}})",
    "127.0.0.1");
  REQUIRE(d.ok());
  CHECK(d.value.labels == string_map{{"ring", "canary"}, {"site", "berlin"}});
  CHECK(d.value.inventory == string_map{{"fw", "1.1.0"}});
  CHECK(d.value.inventory_given);
  auto none = decode_node_registration(R"({"node_id":"n-1"})", "127.0.0.1");
  REQUIRE(none.ok());
  CHECK_FALSE(none.value.inventory_given);
  auto empty = decode_node_registration(R"({"node_id":"n-1","inventory":{}})", "127.0.0.1");
  REQUIRE(empty.ok());
  CHECK(empty.value.inventory_given);
  check_fails_on(decode_node_registration(R"({"node_id":"n","labels":["a"]})", "127.0.0.1"),
                 "labels");
  check_fails_on(decode_node_registration(R"({"node_id":"n","labels":{"a b":"x"}})", "127.0.0.1"),
                 "labels");
  check_fails_on(decode_node_registration(R"({"node_id":"n","labels":{"a":1}})", "127.0.0.1"),
                 "labels");
  check_fails_on(decode_node_registration(R"({"node_id":"n","labels":{"a":null}})", "127.0.0.1"),
                 "labels");
  check_fails_on(decode_node_registration(R"({"node_id":"n","inventory":{"fw":""}})", "127.0.0.1"),
                 "inventory");
  std::string many = R"({"node_id":"n","labels":{)";
  for (int i = 0; i < 33; ++i)
    many += (i ? "," : "") + std::string("\"k") + std::to_string(i) + "\":\"v\"";
  many += "}}";
  check_fails_on(decode_node_registration(many, "127.0.0.1"), "labels");

  auto enc = encode_node_registration(d.value);
  auto back = decode_node_registration(enc, "127.0.0.1");
  REQUIRE(back.ok());
  CHECK(back.value.labels == d.value.labels);
  CHECK(back.value.inventory == d.value.inventory);
}

TEST_CASE("POST /nodes: a label action or a registration") {
  auto l = decode_nodes_request(
    R"({"action":"label","node_id":"n-1","labels":{"ring":"canary","old":null}})", "127.0.0.1");
  REQUIRE(l.ok());
  CHECK(l.value.label);
  CHECK(l.value.node_id == "n-1");
  CHECK(l.value.labels == string_map{{"old", ""}, {"ring", "canary"}});
  auto reg = decode_nodes_request(R"({"node_id":"n-1","labels":{"a":"b"}})", "127.0.0.1");
  REQUIRE(reg.ok());
  CHECK_FALSE(reg.value.label);
  CHECK(reg.value.reg.node_id == "n-1");
  check_fails_on(decode_nodes_request(R"({"action":"label","node_id":"n-1"})", "127.0.0.1"),
                 "labels");
  check_fails_on(decode_nodes_request(R"({"action":"label","labels":{}})", "127.0.0.1"),
                 "node_id");
  check_fails_on(decode_nodes_request(R"({"action":"paint","node_id":"n"})", "127.0.0.1"),
                 "action");
}

TEST_CASE("jobs: target_labels alone target the matching nodes; reports carry inventories") {
  auto d = decode_updates_request(
    R"({"name":"fw","version":"1.2.0","package_type":"script","script":"true",)"
    R"("target_labels":{"site":"berlin","system_info.arch":"arm64"}})");
  REQUIRE(d.ok());
  CHECK(d.value.spec.target_nodes.empty());
  CHECK(d.value.spec.target_labels
        == string_map{{"site", "berlin"}, {"system_info.arch", "arm64"}});
  auto all = decode_updates_request(
    R"({"name":"fw","version":"1.2.0","package_type":"script","script":"true"})");
  REQUIRE(all.ok());
  CHECK(all.value.spec.target_nodes == std::vector<std::string>{"all"});
  check_fails_on(decode_updates_request(R"({"name":"fw","version":"1","package_type":"script",)"
                                        R"("script":"true","target_labels":{"system_info.x":"1"}})"),
                 "target_labels");
  check_fails_on(decode_updates_request(R"({"name":"fw","version":"1","package_type":"script",)"
                                        R"("script":"true","target_nodes":[]})"),
                 "target_nodes");
  auto spec = encode_job_spec(d.value.spec);
  auto back = decode_job_spec(spec);
  REQUIRE(back.ok());
  CHECK(back.value.target_labels == d.value.spec.target_labels);

  auto r = decode_updates_request(R"({"action":"report","job_id":"j","node_id":"n",)"
                                  R"("status":"succeeded","inventory":{"fw":"1.2.0"}})");
  REQUIRE(r.ok());
  CHECK(r.value.report.inventory_given);
  CHECK(r.value.report.inventory == string_map{{"fw", "1.2.0"}});
  auto again = decode_updates_request(encode_update_report(r.value.report));
  REQUIRE(again.ok());
  CHECK(again.value.report.inventory == r.value.report.inventory);
}

TEST_CASE("notifications hint the job's name and version; an install reads neither") {
  update_notification n;
  n.job_id = "j";
  n.node_id = "n";
  n.name = "fw";
  n.version = "1.2.0";
  auto d = decode_update_notification(encode_update_notification(n));
  REQUIRE(d.ok());
  CHECK(d.value.name == "fw");
  CHECK(d.value.version == "1.2.0");
  CHECK(d.value.spec.name.empty());
}

TEST_CASE("rolled_back: final, reached from a running state, counted as a failure") {
  CHECK(is_terminal(node_update_state::rolled_back));
  CHECK(check_transition(node_update_state::installing, node_update_state::rolled_back).empty());
  CHECK_FALSE(
    check_transition(node_update_state::rolled_back, node_update_state::succeeded).empty());
  node_update_state s;
  REQUIRE(from_string("rolled_back", s));
  CHECK(s == node_update_state::rolled_back);
  std::vector<node_job_state> nodes(2);
  nodes[0].state = node_update_state::succeeded;
  nodes[1].state = node_update_state::rolled_back;
  auto c = count_states(nodes);
  CHECK(c.of(node_update_state::rolled_back) == 1);
  CHECK(c.finished() == 2);
  CHECK(derive_job_status(job_status::in_progress, c) == job_status::partially_failed);
  auto r = decode_updates_request(R"({"action":"report","job_id":"j","node_id":"n",)"
                                  R"("status":"rolled_back","error_message":"health check failed"})");
  REQUIRE(r.ok());
  CHECK(r.value.report.state == node_update_state::rolled_back);
}

TEST_CASE("health_check: part of the spec, its JSON and (only when set) its signed text") {
  job_spec s;
  s.name = "fw";
  s.version = "2";
  s.package_type = "script";
  s.script = "true";
  s.target_nodes = {"all"};
  auto without = signed_job_text(s);
  CHECK(without.find("health_check") == std::string::npos);
  s.health_check = "systemctl is-active fw";
  CHECK(signed_job_text(s) != without);
  auto back = decode_job_spec(encode_job_spec(s));
  REQUIRE(back.ok());
  CHECK(back.value.health_check == s.health_check);
  s.health_check = "   ";
  CHECK(validate_job_spec(s).field == "health_check");
}
