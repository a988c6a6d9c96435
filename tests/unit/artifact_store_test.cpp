// The artifact store: uploads with their SHA-256, and the pins that keep the
// content an unfinished job was created with (the jobs naming an artifact
// come from the job supervisor's `uses`, as the gateway asks for them).
#include "actor_fixture.hpp"

#include <fstream>
#include <set>

#include "common/sha256.hpp"
#include "model/json.hpp"

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
  for (auto bad : {"", ".", "..", "../etc/passwd", "a b", ".hidden", "-x", ".store"}) {
    CAPTURE(bad);
    err = ask_error<artifact_info>(artifacts, atom::upload::value,
                                   artifact_upload{bad, "x", {}});
    CHECK(is_api_error(err, api_errc::bad_request));
    CHECK(error_context(err).at(1) == "name");
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

namespace {

void write_text(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
  REQUIRE(out.good());
}

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// The names in a directory.
std::set<std::string> entries(const std::filesystem::path& dir) {
  std::set<std::string> out;
  for (auto& e : std::filesystem::directory_iterator(dir))
    out.insert(e.path().filename().string());
  return out;
}

/// Metadata as the store of earlier versions wrote it beside the artifacts.
std::string old_meta(const std::string& name, const std::string& content,
                     model::millis uploaded_at) {
  artifact_info a;
  a.name = name;
  a.size = static_cast<int64_t>(content.size());
  a.sha256 = common::sha256_hex(content);
  a.uploaded_at = uploaded_at;
  return model::encode_artifact_meta(a);
}

}  // namespace

TEST_CASE_FIXTURE(fixture, "an upload can never pose as the store's metadata") {
  auto fw = ask<artifact_info>(artifacts, atom::upload::value,
                               artifact_upload{"fw.bin", "firmware", {}});
  // What earlier versions read as fw.bin's metadata: same size, other hash.
  auto forged = old_meta("fw.bin", "evilware", 1);
  for (auto name : {".meta-fw.bin.json", ".store", ".tmp-fw.bin", ".fw.bin.tmp.abcdef"}) {
    CAPTURE(name);
    auto err = ask_error<artifact_info>(artifacts, atom::upload::value,
                                        artifact_upload{name, forged, {}});
    CHECK(is_api_error(err, api_errc::bad_request));
    CHECK(error_context(err).at(1) == "name");
  }
  // Whatever an upload is named, it lands as a plain file beside the others;
  // the store's own files are out of reach in .store/.
  ask<artifact_info>(artifacts, atom::upload::value, artifact_upload{"meta-fw.bin.json", forged, {}});
  ask<artifact_info>(artifacts, atom::upload::value, artifact_upload{"fw.bin.json", forged, {}});
  CHECK(entries(dir / "artifacts")
        == std::set<std::string>{".store", "fw.bin", "fw.bin.json", "meta-fw.bin.json"});
  stop();
  start({});
  CHECK(ask<artifact_info>(artifacts, atom::info::value, std::string("fw.bin")).sha256
        == fw.sha256);
  CHECK(fw.sha256 == common::sha256_hex("firmware"));
}

TEST_CASE_FIXTURE(fixture, "every acknowledged upload is found again after a restart") {
  std::map<std::string, std::string> uploaded;
  for (std::string name : std::vector<std::string>{"fw.bin", "meta-x.json", "tmp-x", "x.tmp.abcdef", "store", "a+b",
                           "A_b-c.1", std::string(128, 'n')}) {
    auto body = "content of " + name;
    auto a = ask<artifact_info>(artifacts, atom::upload::value, artifact_upload{name, body, {}});
    CHECK(a.sha256 == common::sha256_hex(body));
    uploaded[name] = a.sha256;
  }
  stop();
  start({});
  auto all = ask<std::vector<artifact_info>>(artifacts, atom::list::value);
  std::map<std::string, std::string> found;
  for (auto& a : all)
    found[a.name] = a.sha256;
  CHECK(found == uploaded);
}

TEST_CASE_FIXTURE(fixture, "the old layout is migrated: metadata moves to .store/, checked") {
  stop();
  auto a = dir / "artifacts";
  std::filesystem::remove_all(a);
  std::filesystem::create_directory(a);
  write_text(a / "fw.bin", "firmware");
  write_text(a / ".meta-fw.bin.json", old_meta("fw.bin", "firmware", 1234000));
  // A metadata file that an upload named .meta-app.tar.json wrote: same
  // size as app.tar, another SHA-256.
  write_text(a / "app.tar", "app tar!");
  write_text(a / ".meta-app.tar.json", old_meta("app.tar", "evil tar", 99));
  write_text(a / ".meta-gone.json", old_meta("gone", "x", 1));  // no such artifact
  write_text(a / ".fw.bin.tmp.AbC123", "half written");         // an interrupted write
  write_text(a / ".hidden", "not an artifact name");
  write_text(a / "-x", "not an artifact name either");
  std::filesystem::create_directory(a / "subdir");
  start({});
  auto all = ask<std::vector<artifact_info>>(artifacts, atom::list::value);
  REQUIRE(all.size() == 2);
  CHECK(all[0].name == "app.tar");
  CHECK(all[0].sha256 == common::sha256_hex("app tar!"));  // recomputed, not the forgery
  CHECK(all[1].name == "fw.bin");
  CHECK(all[1].sha256 == common::sha256_hex("firmware"));
  CHECK(all[1].uploaded_at == 1234000);  // kept from the old metadata
  // Old metadata and temporary files are gone; files that are no artifact
  // are left alone (and not served).
  CHECK(entries(a)
        == std::set<std::string>{".store", "app.tar", "fw.bin", ".hidden", "-x", "subdir",
                                 ".meta-gone.json"});
  CHECK(entries(a / ".store") == std::set<std::string>{"app.tar.json", "fw.bin.json"});
  CHECK(read_text(a / "fw.bin") == "firmware");
  // And a second start finds the same.
  stop();
  start({});
  auto again = ask<std::vector<artifact_info>>(artifacts, atom::list::value);
  REQUIRE(again.size() == 2);
  CHECK(again[1].uploaded_at == 1234000);
  CHECK(again[0].sha256 == common::sha256_hex("app tar!"));
}
