// Unit tests of model/job_signature: the canonical text a job's signature
// covers (what the CLI signs and the agent verifies).
#include <doctest/doctest.h>

#include <string>

#include "model/job_signature.hpp"

using namespace coapfleet::model;

namespace {

job_spec file_spec() {
  job_spec s;
  s.name = "fw";
  s.version = "2";
  s.package_type = "file";
  s.target_nodes = {"all"};
  s.artifact = "fw.bin";
  s.artifact_sha256 = std::string(64, 'a');
  s.target_path = "/opt/fw/fw.bin";
  s.mode = "0755";
  return s;
}

}  // namespace

TEST_CASE("signed_job_text: the documented form, every field in order") {
  auto s = file_spec();
  CHECK(signed_job_text(s)
        == "coapfleet-job-signature-v1\n"
           "name=2:fw\n"
           "version=1:2\n"
           "package_type=4:file\n"
           "packages=0:\n"
           "artifact=6:fw.bin\n"
           "artifact_sha256=64:" + std::string(64, 'a') + "\n"
           "target_path=14:/opt/fw/fw.bin\n"
           "mode=4:0755\n"
           "script=0:\n"
           "timeout_seconds=1:0\n");
  job_spec p;
  p.name = "tools";
  p.version = "1";
  p.package_type = "pip";
  p.packages = {"rich", "click==8.1"};
  p.timeout_seconds = 300;
  auto text = signed_job_text(p);
  CHECK(text.find("\npackages=2:4:rich10:click==8.1\n") != std::string::npos);
  CHECK(text.find("\ntimeout_seconds=3:300\n") != std::string::npos);
}

TEST_CASE("signed_job_text: every field that decides what runs changes it") {
  auto base = signed_job_text(file_spec());
  auto changed = [&](auto&& edit) {
    auto s = file_spec();
    edit(s);
    return signed_job_text(s) != base;
  };
  CHECK(changed([](job_spec& s) { s.name = "fw2"; }));
  CHECK(changed([](job_spec& s) { s.version = "3"; }));
  CHECK(changed([](job_spec& s) { s.package_type = "script"; }));
  CHECK(changed([](job_spec& s) { s.packages = {"x"}; }));
  CHECK(changed([](job_spec& s) { s.artifact = "other.bin"; }));
  CHECK(changed([](job_spec& s) { s.artifact_sha256 = std::string(64, 'b'); }));
  CHECK(changed([](job_spec& s) { s.target_path = "/etc/passwd"; }));
  CHECK(changed([](job_spec& s) { s.mode = "4755"; }));
  CHECK(changed([](job_spec& s) { s.script = "id"; }));
  CHECK(changed([](job_spec& s) { s.timeout_seconds = 5; }));
}

TEST_CASE("signed_job_text: what does not decide what runs leaves it alone") {
  auto base = signed_job_text(file_spec());
  auto s = file_spec();
  s.target_nodes = {"node-1", "node-2"};
  s.description = "other words";
  s.artifact_size = 12345;
  s.signature = std::string(128, 'f');
  CHECK(signed_job_text(s) == base);
}

TEST_CASE("signed_job_text: lengths keep values from running into each other") {
  // Without lengths, packages ["a b"] and ["a","b"] (or a newline inside a
  // value that imitates the next field) could give the same text.
  job_spec a, b;
  a.packages = {"ab"};
  b.packages = {"a", "b"};
  CHECK(signed_job_text(a) != signed_job_text(b));
  job_spec c, d;
  c.script = "true\nmode=4:4755";
  d.script = "true";
  d.mode = "4755";
  CHECK(signed_job_text(c) != signed_job_text(d));
}
