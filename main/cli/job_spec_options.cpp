#include "main/cli/job_spec_options.hpp"

#include <cstdio>

#include "common/job_signing.hpp"
#include "main/cli/output.hpp"
#include "model/job_signature.hpp"
#include "model/json_value.hpp"

namespace coapfleet::cli {

using model::json_value;

void add_spec_options(CLI::App* sub, job_spec& s) {
  sub->add_option("--name", s.name, "Name of the update")->required();
  sub->add_option("--version", s.version, "Version of the update")->required();
  sub->add_option("--type", s.type, "Package type")
    ->required()
    ->check(CLI::IsMember({"pip", "apt", "file", "script"}));
  sub->add_option("--packages", s.packages, "pip/apt packages, comma-separated")
    ->delimiter(',');
  auto* artifact = sub->add_option("--artifact", s.artifact,
                                   "file: the stored artifact to install (see artifact list)");
  auto* target = sub->add_option("--target", s.target, "file: absolute path on the node");
  artifact->needs(target);
  target->needs(artifact);
  sub->add_option("--mode", s.mode, "file: octal mode of the installed file, e.g. 0644")
    ->needs(artifact)
    ->check([](const std::string& m) {
      return m.find_first_not_of("01234567") == std::string::npos && !m.empty() && m.size() <= 4
               ? std::string()
               : std::string("--mode must be octal, e.g. 0644");
    });
  sub->add_option("--script", s.script, "script: the shell command to run on each node");
  sub->add_option("--health-check", s.health_check,
                  "A shell command each node runs after a successful install; if it fails, "
                  "the install fails, and a file job restores the previous file (rolled_back)");
  sub->add_option("--nodes", s.nodes, "Target nodes: all, or ids separated by commas")
    ->capture_default_str();
  sub->add_option("--label", s.labels,
                  "Target the nodes with this label, KEY=VALUE (repeat: all must match; keys "
                  "may also be system_info.arch, system_info.os, inventory.NAME); with --nodes "
                  "ids, those nodes besides")
    ->check([](const std::string& l) {
      auto eq = l.find('=');
      return eq != std::string::npos && eq > 0 && eq + 1 < l.size()
               ? std::string()
               : std::string("--label must be KEY=VALUE, e.g. site=berlin");
    });
  sub->add_option("--timeout-seconds", s.timeout_seconds,
                  "Per-job handler timeout on the nodes (server default if omitted)")
    ->check(CLI::PositiveNumber);
  sub->add_option("--node-timeout-seconds", s.node_timeout_seconds,
                  "How long the server waits for each node's final report from the start of "
                  "its attempt before it is timed_out")
    ->check(CLI::PositiveNumber);
  sub->add_option("--wave", s.waves,
                  "Campaign wave: cumulative percent of the targets (repeat, ending at 100: "
                  "--wave 10 --wave 50 --wave 100)")
    ->check(CLI::Range(1, 100));
  sub->add_option("--success-threshold", s.success_threshold,
                  "Percent of a wave that must succeed before the next starts")
    ->check(CLI::Range(0, 100));
  sub->add_option("--error-threshold", s.error_threshold,
                  "Percent failed among started nodes at which the campaign pauses itself")
    ->check(CLI::Range(0, 100));
  sub->add_option("--soak-seconds", s.soak_seconds, "Wait between a wave's success and the next")
    ->check(CLI::NonNegativeNumber);
  sub->add_option("--max-parallel", s.max_parallel, "Nodes installing at once")
    ->check(CLI::NonNegativeNumber);
  sub->add_option("--retries", s.retries, "Automatic retries of a failed node")
    ->check(CLI::Range(0, 100));
  sub->add_option("--retry-backoff-seconds", s.retry_backoff_seconds,
                  "Delay before the first automatic retry (doubles for each next one)")
    ->check(CLI::NonNegativeNumber);
  sub->add_option("--window", s.window,
                  "Daily maintenance window HH:MM-HH:MM (UTC) outside which no node starts");
  sub->add_flag("--dynamic", s.dynamic,
                "Stay open for nodes that match later (close it with update close)");
  sub->add_option("--sign-key", s.sign_key,
                  "Sign the job with this Ed25519 private key (PEM, only its owner may read it; "
                  "`openssl genpkey -algorithm ed25519 -out sign.pem`); agents started with "
                  "--verify-key run only jobs signed so");
}

/// --sign-key: pins a file job's artifact to the SHA-256 the server stores
/// now and signs the spec's canonical text. False (and `exit`) when it
/// cannot.
bool sign_job(context& ctx, job_spec& s, int& exit) {
  std::string err;
  auto key = common::ed25519_key::load_private(s.sign_key, err);
  if (!key) {
    std::fprintf(stderr, "coapfleet: --sign-key: %s\n", err.c_str());
    exit = exit_usage;
    return false;
  }
  if (s.type == "file") {
    auto a = ctx.call(client::method::get, "artifacts");
    exit = a.exit;
    if (!a.ok())
      return false;
    for (model::json_value i : a.json()["artifacts"].elements())
      if (i["name"].as_string() == s.artifact)
        s.artifact_sha256 = i["sha256"].as_string();
    if (s.artifact_sha256.empty()) {
      std::fprintf(stderr, "coapfleet: artifact %s is not stored on the server (upload it "
                           "before signing a job that installs it)\n",
                   s.artifact.c_str());
      exit = exit_coap_error;
      return false;
    }
  }
  s.signature = key->sign(model::signed_job_text(s.signed_fields()));
  if (s.signature.empty()) {
    std::fprintf(stderr, "coapfleet: --sign-key: signing failed\n");
    exit = exit_usage;
    return false;
  }
  return true;
}

/// Before anything is created: every named target is registered (and with
/// "all", some node is). False (and `exit`) when not.
bool check_targets(context& ctx, const job_spec& s, int& exit) {
  auto targets = s.targets();
  std::vector<std::string> unknown;
  if (!s.labels.empty() && targets == std::vector<std::string>{"all"})
    return true;  // the server resolves the labels at the trigger
  if (targets == std::vector<std::string>{"all"}) {
    auto a = ctx.call(client::method::get, "health");
    exit = a.exit;
    if (!a.ok())
      return false;
    if (a.json()["total_nodes"].as_int() > 0)
      return true;
    std::fprintf(stderr, "coapfleet: no node is registered: the job would have no target; "
                         "nothing was created\n");
    exit = exit_coap_error;
    return false;
  }
  for (auto& id : targets) {
    auto a = ctx.call(client::method::get, "nodes", "node_id=" + id);
    exit = a.exit;
    if (!a.ok())
      return false;
    if (a.json()["nodes"].empty())
      unknown.push_back(id);
  }
  if (unknown.empty())
    return true;
  std::string list;
  for (auto& id : unknown)
    list += (list.empty() ? "" : ", ") + id;
  std::fprintf(stderr, "coapfleet: not registered: %s; nothing was created\n", list.c_str());
  exit = exit_coap_error;
  return false;
}

}  // namespace coapfleet::cli
