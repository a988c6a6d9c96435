// The artifact store: uploads with their SHA-256, and the pins that keep the
// content an unfinished job was created with (the jobs naming an artifact
// come from the job supervisor's `uses`, as the gateway asks for them).
#include "actor_fixture.hpp"

using namespace coapfleet;
using namespace coapfleet::actor_test;

TEST_CASE_FIXTURE(fixture, "an artifact that an unfinished job names keeps its content") {
  auto upload = [&](const std::string& body) {
    auto named = ask<std::vector<model::job_record>>(jobs, atom::uses::value,
                                                     std::string("fw.bin"));
    artifact_upload up{"fw.bin", body, {}};
    for (auto& j : named)
      up.pins.push_back({j.job_id, j.spec.artifact_sha256});
    return up;
  };
  auto first = ask<artifact_info>(artifacts, atom::upload::value, upload("version one"));
  enroll("node-1");
  model::job_spec spec;
  spec.name = "fw";
  spec.version = "1";
  spec.package_type = "file";
  spec.artifact = "fw.bin";
  spec.target_path = "/opt/fw.bin";
  spec.target_nodes = {"all"};
  auto job = create(spec);
  CHECK(job.spec.artifact_sha256 == first.sha256);
  // Created, not finished: other content is refused, naming the job ...
  auto err = ask_error<artifact_info>(artifacts, atom::upload::value, upload("version two"));
  CHECK(is_api_error(err, api_errc::conflict));
  auto ctx = error_context(err);
  REQUIRE(ctx.size() == 4);
  CHECK(ctx[2] == "jobs");
  CHECK(ctx[3] == job.job_id);
  // ... the same content is taken ...
  CHECK(ask<artifact_info>(artifacts, atom::upload::value, upload("version one")).sha256
        == first.sha256);
  // ... and once the job is gone, anything is.
  CHECK(ask<bool>(jobs, atom::remove::value, job.job_id, op));
  CHECK(ask<std::vector<model::job_record>>(jobs, atom::uses::value, std::string("fw.bin"))
          .empty());
  CHECK(ask<artifact_info>(artifacts, atom::upload::value, upload("version two")).sha256
        != first.sha256);
}
