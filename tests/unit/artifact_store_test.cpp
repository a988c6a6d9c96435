// The artifact store: uploads with their SHA-256, and the pins that keep the
// content an unfinished job was created with (the jobs naming an artifact
// come from the job supervisor's `uses`, as the gateway asks for them).
#include "actor_fixture.hpp"

#include "common/sha256.hpp"

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
  ask<atom::ok>(jobs, atom::remove::value, job.job_id, op);
  CHECK(ask<std::vector<model::job_record>>(jobs, atom::uses::value, std::string("fw.bin"))
          .empty());
  CHECK(ask<artifact_info>(artifacts, atom::upload::value, upload("version two")).sha256
        != first.sha256);
}

TEST_CASE_FIXTURE(fixture, "artifacts are stored with their SHA-256, served, listed and found again") {
  auto a = ask<artifact_info>(artifacts, atom::upload::value,
                              artifact_upload{"fw.bin", "firmware", {}});
  CHECK(a.name == "fw.bin");
  CHECK(a.size == 8);
  CHECK(a.sha256 == common::sha256_hex("firmware"));
  // The transport serves its contents and hears that /artifacts changed.
  REQUIRE(wire->served.size() == 1);
  REQUIRE(wire->served[0].bytes);
  CHECK(std::string(reinterpret_cast<const char*>(wire->served[0].bytes->data()),
                    wire->served[0].bytes->size())
        == "firmware");
  CHECK(wire->saw_changed("artifacts"));
  ask<artifact_info>(artifacts, atom::upload::value, artifact_upload{"app.tar", "app", {}});
  auto all = ask<std::vector<artifact_info>>(artifacts, atom::list::value);
  REQUIRE(all.size() == 2);
  CHECK(all[0].name == "app.tar");  // sorted by name
  CHECK(all[1].name == "fw.bin");
  CHECK(ask<artifact_info>(artifacts, atom::info::value, std::string("fw.bin")).sha256
        == a.sha256);
  auto blob = ask<artifact_blob>(artifacts, atom::get::value, std::string("fw.bin"));
  REQUIRE(blob.bytes);
  CHECK(blob.bytes->size() == 8);
  // Unknown names are 4.04 naming them; names that are not file names, 4.00.
  auto err = ask_error<artifact_info>(artifacts, atom::info::value, std::string("nope.bin"));
  CHECK(is_api_error(err, api_errc::not_found));
  CHECK(error_context(err).at(3) == "nope.bin");
  err = ask_error<artifact_blob>(artifacts, atom::get::value, std::string("nope.bin"));
  CHECK(is_api_error(err, api_errc::not_found));
  for (auto bad : {"", ".", "..", "../etc/passwd", "a b"}) {
    CAPTURE(bad);
    err = ask_error<artifact_info>(artifacts, atom::upload::value,
                                   artifact_upload{bad, "x", {}});
    CHECK(is_api_error(err, api_errc::bad_request));
  }
  // A new store on the same directory finds them and serves them again.
  stop();
  wire->served.clear();
  start({});
  CHECK(ask<std::vector<artifact_info>>(artifacts, atom::list::value).size() == 2);
  CHECK(ask<artifact_info>(artifacts, atom::info::value, std::string("fw.bin")).sha256
        == a.sha256);
  CHECK(wire->served.size() == 2);
}
