// The health check after an install (run_handler): a passing check keeps
// the install and drops the kept previous file; a failing one fails the
// install, and a file job gets the previous file back (rolled_back), or
// loses the new one when there was none before.
#include "actors/agent/install_worker.hpp"
#include "common/sha256.hpp"

#include <doctest/doctest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

using namespace coapfleet;
using namespace coapfleet::agent;
namespace fs = std::filesystem;

namespace {

struct temp_tree {
  std::string path;
  temp_tree() {
    std::string tmpl = (fs::temp_directory_path() / "agent_health_check_test.XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_tree() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

void write_file(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  REQUIRE(out.good());
  out << content;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

handler_run file_run(const temp_tree& t, const std::string& content, const std::string& check) {
  write_file(t / "download.bin", content);
  handler_run run;
  run.note.job_id = "job-1";
  run.note.node_id = "node-1";
  auto& spec = run.note.spec;
  spec.name = "fw";
  spec.version = "2";
  spec.package_type = "file";
  spec.target_path = "/opt/fw.bin";
  spec.artifact_sha256 = common::sha256_hex(content);
  spec.health_check = check;
  run.cfg.state_dir = t.path;
  run.cfg.root = t / "root";
  run.cfg.timeout = std::chrono::seconds(60);
  run.download = t / "download.bin";
  return run;
}

}  // namespace

TEST_CASE("health check: a passing check keeps the new file, nothing left beside it") {
  temp_tree t;
  write_file(t / "root/opt/fw.bin", "old");
  auto out = run_handler(file_run(t, "new", "test -f root/opt/fw.bin"));
  INFO(out.error_message);
  CHECK(out.ok);
  CHECK_FALSE(out.rolled_back);
  CHECK(read_file(t / "root/opt/fw.bin") == "new");
  CHECK_FALSE(fs::exists(t / "root/opt/fw.bin.coapfleet-prev"));
}

TEST_CASE("health check: a failing check restores the previous file (rolled back)") {
  temp_tree t;
  write_file(t / "root/opt/fw.bin", "old");
  auto out = run_handler(file_run(t, "new", "grep -q healthy root/opt/fw.bin"));
  CHECK_FALSE(out.ok);
  CHECK(out.rolled_back);
  CHECK(out.result == 8);
  CHECK(out.error_message.find("health check failed") != std::string::npos);
  CHECK(out.error_message.find("is back") != std::string::npos);
  CHECK(read_file(t / "root/opt/fw.bin") == "old");
  CHECK_FALSE(fs::exists(t / "root/opt/fw.bin.coapfleet-prev"));
}

TEST_CASE("health check: with nothing there before, a failing check removes the new file") {
  temp_tree t;
  auto out = run_handler(file_run(t, "new", "exit 4"));
  CHECK(out.rolled_back);
  CHECK(out.error_message.find("there was none before") != std::string::npos);
  CHECK_FALSE(fs::exists(t / "root/opt/fw.bin"));
}

TEST_CASE("health check: a script job's failing check fails it, with no rollback") {
  temp_tree t;
  handler_run run;
  run.note.spec.name = "tool";
  run.note.spec.version = "1";
  run.note.spec.package_type = "script";
  run.note.spec.script = "echo ran > ran.txt";
  run.note.spec.health_check = "false";
  run.cfg.state_dir = t.path;
  run.cfg.root = t / "root";
  run.cfg.timeout = std::chrono::seconds(60);
  auto out = run_handler(run);
  CHECK_FALSE(out.ok);
  CHECK_FALSE(out.rolled_back);
  CHECK(out.error_message.find("has no rollback") != std::string::npos);
  CHECK(read_file(t / "ran.txt") == "ran\n");
}
