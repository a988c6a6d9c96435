// What `update create` and `update run` send as a job: the options that
// fill it, its JSON body, signing (--sign-key) and the check of its
// targets before anything is created.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "main/cli/context.hpp"
#include "model/json_builder.hpp"
#include "model/types.hpp"

namespace coapfleet::cli {

/// What `update create` and `update run` send as the job.
struct job_spec {
  std::string name, version, type;
  std::vector<std::string> packages;
  std::string artifact, target, mode, script;
  std::string health_check;  ///< --health-check
  std::string nodes = "all";
  /// --label KEY=VALUE: target_labels (with --nodes all, the matching nodes
  /// only; with ids, those besides them).
  std::vector<std::string> labels;
  long long timeout_seconds = 0;
  long long node_timeout_seconds = 0;
  // campaign
  std::vector<int> waves;
  int success_threshold = 0, error_threshold = 0, soak_seconds = 0, max_parallel = 0;
  int retries = 0, retry_backoff_seconds = 0;
  std::string window;
  bool dynamic = false;
  std::string sign_key;         ///< --sign-key: PEM Ed25519 private key
  std::string artifact_sha256;  ///< signed jobs: the stored artifact's, pinned
  std::string signature;        ///< signed jobs: of model::signed_job_text

  /// The fields a signature covers, as the server will hand them to agents.
  model::job_spec signed_fields() const {
    model::job_spec m;
    m.name = name;
    m.version = version;
    m.package_type = type;
    m.packages = packages;
    m.artifact = artifact;
    m.artifact_sha256 = artifact_sha256;
    m.target_path = target;
    m.mode = mode;
    m.script = script;
    m.health_check = health_check;
    m.timeout_seconds = static_cast<int32_t>(timeout_seconds);
    return m;
  }

  /// --nodes as a list: ["all"] or the ids.
  std::vector<std::string> targets() const {
    std::vector<std::string> out;
    if (nodes == "all")
      return {"all"};
    for (size_t start = 0; start <= nodes.size();) {
      auto end = nodes.find(',', start);
      if (end == std::string::npos)
        end = nodes.size();
      if (end > start)
        out.push_back(nodes.substr(start, end - start));
      start = end + 1;
    }
    return out;
  }

  std::string body() const {
    model::json_builder b;
    b.begin_object().member("name", name).member("version", version).member("package_type", type);
    if (labels.empty() || nodes != "all")
      b.member("target_nodes", targets());
    if (!labels.empty()) {
      b.key("target_labels").begin_object();
      for (auto& l : labels) {
        auto eq = l.find('=');
        b.member(l.substr(0, eq), eq == std::string::npos ? std::string() : l.substr(eq + 1));
      }
      b.end_object();
    }
    if (!packages.empty())
      b.member("packages", packages);
    if (!artifact.empty())
      b.member("artifact", artifact);
    if (!target.empty())
      b.member("target_path", target);
    if (!mode.empty())
      b.member("mode", mode);
    if (!script.empty())
      b.member("script", script);
    if (!health_check.empty())
      b.member("health_check", health_check);
    if (timeout_seconds > 0)
      b.member("timeout_seconds", timeout_seconds);
    if (node_timeout_seconds > 0)
      b.member("node_timeout_seconds", node_timeout_seconds);
    if (!waves.empty()) {
      b.key("waves").begin_array();
      for (auto w : waves)
        b.integer(w);
      b.end_array();
    }
    auto positive = [&](const char* name, int v) {
      if (v > 0)
        b.member(name, static_cast<long long>(v));
    };
    positive("success_threshold", success_threshold);
    positive("error_threshold", error_threshold);
    positive("soak_seconds", soak_seconds);
    positive("max_parallel", max_parallel);
    positive("retries", retries);
    positive("retry_backoff_seconds", retry_backoff_seconds);
    if (!window.empty())
      b.member("window", window);
    if (dynamic)
      b.member("dynamic", true);
    if (!artifact_sha256.empty())
      b.member("artifact_sha256", artifact_sha256);
    if (!signature.empty())
      b.member("signature", signature);
    return b.end_object().text();
  }
};

/// Adds the job's options to `sub` (create, run).
void add_spec_options(CLI::App* sub, job_spec& s);

/// --sign-key: pins a file job's artifact to the SHA-256 the server stores
/// now and signs the spec's canonical text. False (and `exit`) when it
/// cannot.
bool sign_job(context& ctx, job_spec& s, int& exit);

/// Before anything is created: every named target is registered (and with
/// "all", some node is). False (and `exit`) when not.
bool check_targets(context& ctx, const job_spec& s, int& exit);

}  // namespace coapfleet::cli
