// The agent's version inventory: a successful job adds its name and version
// (and pinned packages) to inventory.json, and its success report carries
// the whole inventory; a failure changes nothing.
#include "installer_fixture.hpp"

#include <fstream>

#include "actors/agent/journal.hpp"

using namespace coapfleet;
using namespace coapfleet::agent_test;

TEST_CASE_FIXTURE(installer_fixture, "inventory: a success records the version and reports it") {
  std::string err;
  REQUIRE(agent::save_inventory((dir / "inventory.json"), {{"base", "7"}}, err));
  use_worker(agent::run_handler);
  start();
  auto job = script_job("job-1", "true");
  job.spec.name = "fw";
  job.spec.version = "1.2.0";
  CHECK(notify(job));
  CHECK(states_of("job-1") == ran_ok);
  auto done = reports_of("job-1").back();
  CHECK(done.inventory_given);
  CHECK(done.inventory == model::string_map{{"base", "7"}, {"fw", "1.2.0"}});
  CHECK(agent::load_inventory((dir / "inventory.json"), err)
        == model::string_map{{"base", "7"}, {"fw", "1.2.0"}});
  CHECK(err.empty());

  auto bad = script_job("job-2", "exit 3");
  bad.spec.name = "fw";
  bad.spec.version = "2.0.0";
  CHECK(notify(bad));
  eventually([&] {
    auto r = reports_of("job-2");
    return !r.empty() && r.back().state == model::node_update_state::failed;
  });
  CHECK_FALSE(reports_of("job-2").back().inventory_given);
  CHECK(agent::load_inventory((dir / "inventory.json"), err)
        == model::string_map{{"base", "7"}, {"fw", "1.2.0"}});
}

TEST_CASE("inventory: a damaged file is an empty inventory and a warning") {
  auto path = std::filesystem::temp_directory_path() / "coapfleet-inventory-test.json";
  {
    std::ofstream out(path);
    out << "{\"fw\": 12";
  }
  std::string err;
  CHECK(agent::load_inventory(path.string(), err).empty());
  CHECK(err.find("damaged") != std::string::npos);
  err.clear();
  CHECK(agent::load_inventory((path.string() + ".missing"), err).empty());
  CHECK(err.empty());
  std::filesystem::remove(path);
}
