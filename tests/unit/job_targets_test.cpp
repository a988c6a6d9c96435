// Jobs that target labels, late joiners by label, and the success rule: a
// node that sends its inventory succeeded only when it names the version.
#include "actor_fixture.hpp"

using namespace coapfleet;
using namespace coapfleet::actor_test;

namespace {

model::job_spec labelled_job(model::string_map labels) {
  model::job_spec spec;
  spec.name = "fw";
  spec.version = "1.2.0";
  spec.package_type = "script";
  spec.script = "true";
  spec.target_labels = std::move(labels);
  return spec;
}

void enroll_labelled(fixture& f, const std::string& id, const std::string& ip,
                     model::string_map labels) {
  model::node_registration reg;
  reg.node_id = id;
  reg.ip_address = ip;
  reg.labels = std::move(labels);
  f.ask<registered>(f.registry, atom::enroll::value, reg, peer{"127.0.0.1", 40000, {}});
}

}  // namespace

TEST_CASE_FIXTURE(fixture, "a job for target_labels starts the matching nodes only") {
  enroll_labelled(*this, "node-a", "127.1.0.1", {{"site", "berlin"}});
  enroll_labelled(*this, "node-b", "127.1.0.2", {{"site", "paris"}});
  enroll_labelled(*this, "node-c", "127.1.0.3", {{"site", "berlin"}});
  auto job = create(labelled_job({{"site", "berlin"}}));
  auto triggered = ask<model::job_record>(jobs, atom::install::value, job.job_id, op);
  REQUIRE(triggered.nodes.size() == 2);
  CHECK(triggered.nodes[0].node_id == "node-a");
  CHECK(triggered.nodes[1].node_id == "node-c");
  // Nobody matches: refused, naming target_labels.
  auto none = create(labelled_job({{"site", "tokyo"}}));
  auto err = ask_error<model::job_record>(jobs, atom::install::value, none.job_id, op);
  CHECK(is_api_error(err, api_errc::bad_request));
  CHECK(error_context(err)[1] == "target_labels");
}

TEST_CASE_FIXTURE(fixture, "success counts only when the reported inventory names the version") {
  enroll("node-a", "127.1.0.1");
  enroll("node-b", "127.1.0.2");
  enroll("node-c", "127.1.0.3");
  auto spec = labelled_job({});
  spec.target_nodes = {"all"};
  auto job = create(spec);
  ask<model::job_record>(jobs, atom::install::value, job.job_id, op);
  auto ok = report(job.job_id, "node-a", model::node_update_state::succeeded);
  ok.inventory_given = true;
  ok.inventory = {{"fw", "1.2.0"}};
  ask<atom::ok>(jobs, atom::report::value, ok, op);
  auto stale = report(job.job_id, "node-b", model::node_update_state::succeeded);
  stale.inventory_given = true;
  stale.inventory = {{"fw", "1.1.0"}};
  ask<atom::ok>(jobs, atom::report::value, stale, op);
  // A client that keeps no inventory is taken at its word.
  ask<atom::ok>(jobs, atom::report::value,
                report(job.job_id, "node-c", model::node_update_state::succeeded), op);
  auto st = status(job.job_id);
  CHECK(st.nodes[0].state == model::node_update_state::succeeded);
  CHECK(st.nodes[1].state == model::node_update_state::failed);
  CHECK(st.nodes[1].error_message.find("names fw at version 1.1.0, not 1.2.0")
        != std::string::npos);
  CHECK(st.nodes[1].result == static_cast<int32_t>(model::update_result::update_failed));
  CHECK(st.nodes[2].state == model::node_update_state::succeeded);
  CHECK(st.status == model::job_status::partially_failed);
  // A finished node stays what it is: a repeated success naming another
  // version changes nothing.
  auto late = ok;
  late.inventory = {{"fw", "0.9"}};
  ask<atom::ok>(jobs, atom::report::value, late, op);
  CHECK(status(job.job_id).nodes[0].state == model::node_update_state::succeeded);
}

TEST_CASE_FIXTURE(fixture, "a dynamic campaign for labels takes a node an operator labels") {
  enroll_labelled(*this, "node-a", "127.1.0.1", {{"ring", "canary"}});
  enroll_labelled(*this, "node-b", "127.1.0.2", {});
  auto spec = labelled_job({{"ring", "canary"}});
  spec.dynamic = true;
  auto job = create(spec);
  ask<model::job_record>(jobs, atom::install::value, job.job_id, op);
  REQUIRE(status(job.job_id).nodes.size() == 1);
  wire->clear();
  // A newcomer without the label stays out; node-b, labelled, joins.
  enroll_labelled(*this, "node-c", "127.1.0.3", {{"ring", "stable"}});
  sched->run();
  CHECK(status(job.job_id).nodes.size() == 1);
  ask<model::string_map>(registry, atom::label::value, std::string{"node-b"},
                         model::string_map{{"ring", "canary"}});
  sched->run();
  auto st = status(job.job_id);
  REQUIRE(st.nodes.size() == 2);
  CHECK(st.nodes[1].node_id == "node-b");
  REQUIRE(wire->notes.size() == 1);
  CHECK(std::get<3>(wire->notes[0]).node_id == "node-b");
  CHECK(std::get<3>(wire->notes[0]).name == "fw");
  CHECK(std::get<3>(wire->notes[0]).version == "1.2.0");
}

TEST_CASE_FIXTURE(fixture, "a dynamic campaign for an inventory version takes a node that gets it") {
  enroll("node-a", "127.1.0.1");
  ask<atom::ok>(registry, atom::inventory::value, std::string{"node-a"},
                model::string_map{{"base", "1.0"}});
  enroll("node-b", "127.1.0.2");
  auto spec = labelled_job({{"inventory.base", "1.0"}});
  spec.dynamic = true;
  auto job = create(spec);
  ask<model::job_record>(jobs, atom::install::value, job.job_id, op);
  REQUIRE(status(job.job_id).nodes.size() == 1);
  ask<atom::ok>(registry, atom::inventory::value, std::string{"node-b"},
                model::string_map{{"base", "1.0"}});
  sched->run();
  auto st = status(job.job_id);
  REQUIRE(st.nodes.size() == 2);
  CHECK(st.nodes[1].node_id == "node-b");
}
