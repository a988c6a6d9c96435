// update create|install|status|cancel|delete|list|watch|run: software-update jobs.
#include "main/cli/commands.hpp"
#include "main/cli/job_watch.hpp"
#include "main/cli/output.hpp"
#include "main/cli/time_text.hpp"
#include "common/job_signing.hpp"
#include "model/job_signature.hpp"
#include "model/json_builder.hpp"
#include "model/json_value.hpp"

#include <cstdio>
#include <memory>

namespace coapfleet::cli {

namespace {

using model::json_builder;
using model::json_value;

/// What `update create` and `update run` send as the job.
struct job_spec {
  std::string name, version, type;
  std::vector<std::string> packages;
  std::string artifact, target, mode, script;
  std::string nodes = "all";
  long long timeout_seconds = 0;
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
    m.timeout_seconds = static_cast<int32_t>(timeout_seconds);
    return m;
  }

  std::string body() const {
    json_builder b;
    b.begin_object().member("name", name).member("version", version).member("package_type", type);
    std::vector<std::string> targets;
    if (nodes == "all") {
      targets.push_back("all");
    } else {
      for (size_t start = 0; start <= nodes.size();) {
        auto end = nodes.find(',', start);
        if (end == std::string::npos)
          end = nodes.size();
        if (end > start)
          targets.push_back(nodes.substr(start, end - start));
        start = end + 1;
      }
    }
    b.member("target_nodes", targets);
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
    if (timeout_seconds > 0)
      b.member("timeout_seconds", timeout_seconds);
    if (!artifact_sha256.empty())
      b.member("artifact_sha256", artifact_sha256);
    if (!signature.empty())
      b.member("signature", signature);
    return b.end_object().text();
  }
};

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
  sub->add_option("--nodes", s.nodes, "Target nodes: all, or ids separated by commas")
    ->capture_default_str();
  sub->add_option("--timeout-seconds", s.timeout_seconds,
                  "Per-job handler timeout on the nodes (server default if omitted)")
    ->check(CLI::PositiveNumber);
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

std::string action_body(const char* action, const std::string& job) {
  return json_builder()
    .begin_object()
    .member("action", action)
    .member("job_id", job)
    .end_object()
    .text();
}

/// POST /updates {"action":"create"...}; the job id, or nothing after an error.
std::optional<std::string> create_job(context& ctx, job_spec s, int& exit, bool id_only) {
  if (!s.sign_key.empty() && !sign_job(ctx, s, exit))
    return std::nullopt;
  auto a = ctx.call(client::method::post, "updates", "", s.body());
  exit = a.exit;
  if (!a.ok())
    return std::nullopt;
  auto id = a.json()["job_id"].as_string();
  if (ctx.options.json)
    print_raw(a.raw.body);
  else if (id_only)
    std::printf("%s\n", id.c_str());
  else
    std::printf("job %s created: %s %s (%s)\n", id.c_str(), s.name.c_str(), s.version.c_str(),
                s.type.c_str());
  std::fflush(stdout);
  return id;
}

int install_job(context& ctx, const std::string& job) {
  auto a = ctx.call(client::method::post, "updates", "", action_body("install", job));
  if (!a.ok())
    return a.exit;
  if (ctx.options.json) {
    print_raw(a.raw.body);
    return exit_ok;
  }
  // The answer carries target counts (newer servers) or the target list.
  auto d = a.json();
  auto names = d["target_nodes"].as_strings();
  std::string list;
  for (auto& t : names)
    list += (list.empty() ? "" : ", ") + t;
  auto count = d["targets"].exists() ? d["targets"].as_int()
                                     : static_cast<long long>(names.size());
  auto skipped = d["skipped"].as_int();
  std::printf("job %s triggered on %lld node%s%s%s%s\n", job.c_str(), count,
              count == 1 ? "" : "s", list.empty() ? "" : ": ", list.c_str(),
              skipped > 0 ? (" (" + std::to_string(skipped) + " skipped: offline)").c_str() : "");
  std::fflush(stdout);
  return exit_ok;
}

int job_status(context& ctx, const std::string& job) {
  auto a = ctx.call(client::method::post, "updates", "", action_body("status", job));
  if (!a.ok())
    return a.exit;
  if (ctx.options.json) {
    print_raw(a.raw.body);
    return exit_ok;
  }
  auto term = terminal::detect();
  auto d = a.json();
  table t({"NODE", "STATE", "PROGRESS", "RESULT", "ERROR"});
  for (json_value n : d["nodes"].elements()) {
    auto state = n["status"].as_string();
    auto progress = n["progress"];
    auto error = n["error_message"].as_string();
    t.add({n["node_id"].as_string(), state,
           progress.is_number() ? std::to_string(progress.as_int()) + "%" : "-",
           n["result"].exists() ? result_text(n["result"].as_int()) : "-",
           error.empty() ? "-" : error},
          {colour::none, colour_of(state), colour::none, colour::none,
           error.empty() ? colour::none : colour::red});
  }
  if (!t.empty())
    t.print(term);
  auto status = d["status"].as_string();
  std::string counts;
  auto c = d["counts"];
  for (auto* name : {"pending", "notified", "downloading", "downloaded", "installing",
                     "succeeded", "failed", "timed_out", "cancelled", "skipped"})
    if (auto n = c[name].as_int(); n > 0)
      counts += (counts.empty() ? "" : ", ") + std::to_string(n) + " " + name;
  auto error = d["error_message"].as_string();
  std::printf("%s\n",
              term.paint(colour_of(status),
                         "job " + job + " " + status + " "
                           + std::to_string(d["progress"].as_int()) + "%"
                           + (counts.empty() ? "" : " (" + counts + ")")
                           + (error.empty() ? "" : ": " + error))
                .c_str());
  return exit_ok;
}

int cancel_job(context& ctx, const std::string& job) {
  auto a = ctx.call_raw(client::method::post, "updates", "", action_body("cancel", job));
  if (!a.ok())
    return a.exit;
  if (ctx.options.json)
    print_raw(a.raw.body);
  else
    std::printf("job %s cancelled\n", job.c_str());
  return exit_ok;
}

int delete_job(context& ctx, const std::string& job) {
  auto a = ctx.call_raw(client::method::post, "updates", "", action_body("delete", job));
  if (!a.ok())
    return a.exit;
  if (ctx.options.json)
    print_raw(a.raw.body);
  else
    std::printf("job %s deleted\n", job.c_str());
  return exit_ok;
}

int list_jobs(context& ctx) {
  auto a = ctx.call(client::method::get, "updates");
  if (!a.ok())
    return a.exit;
  if (ctx.options.json) {
    print_raw(a.raw.body);
    return exit_ok;
  }
  auto term = terminal::detect();
  table t({"JOB", "NAME", "VERSION", "TYPE", "STATUS", "NODES", "PROGRESS", "CREATED"});
  for (json_value j : a.json()["updates"].elements()) {
    auto status = j["status"].as_string();
    auto counts = j["counts"];
    t.add({j["job_id"].as_string(), j["name"].as_string(), j["version"].as_string(),
           j["package_type"].as_string(), status,
           counts.exists() ? std::to_string(counts["total"].as_int()) : "-",
           std::to_string(j["progress"].as_int()) + "%",
           relative_time(j["created_at"].as_string())},
          {colour::none, colour::none, colour::none, colour::none, colour_of(status)});
  }
  if (t.empty()) {
    std::printf("no update jobs\n");
    return exit_ok;
  }
  t.print(term);
  return exit_ok;
}

int run_job(context& ctx, const job_spec& s) {
  int exit = exit_ok;
  auto id = create_job(ctx, s, exit, false);
  if (!id)
    return exit;
  if (int rc = install_job(ctx, *id); rc != exit_ok)
    return rc;
  return watch_job(ctx, *id);
}

/// A subcommand taking one job id.
void add_job_command(CLI::App& update, context& ctx, const char* name, const char* help,
                     int (*fn)(context&, const std::string&)) {
  auto* sub = update.add_subcommand(name, help);
  auto job = std::make_shared<std::string>();
  sub->add_option("job", *job, "The job id (as update create printed it)")->required();
  sub->callback([&ctx, job, fn] { ctx.action = [&ctx, job, fn] { return fn(ctx, *job); }; });
}

}  // namespace

void add_update_commands(CLI::App& app, context& ctx) {
  auto* update = app.add_subcommand("update", "Software-update jobs");
  update->require_subcommand(1);

  auto create_spec = std::make_shared<job_spec>();
  auto* create = update->add_subcommand(
    "create", "Create a job; prints its id alone (JOB=$(coapfleet update create ...))");
  add_spec_options(create, *create_spec);
  create->callback([&ctx, create_spec] {
    ctx.action = [&ctx, create_spec] {
      int exit = exit_ok;
      create_job(ctx, *create_spec, exit, true);
      return exit;
    };
  });

  add_job_command(*update, ctx, "install", "Trigger a job: notify its target nodes",
                  install_job);
  add_job_command(*update, ctx, "status", "A job's per-node states and its status", job_status);
  add_job_command(*update, ctx, "cancel", "Cancel a job: unfinished nodes become cancelled",
                  cancel_job);
  add_job_command(*update, ctx, "delete",
                  "Delete a job that is not running (observers of it get 4.04)", delete_job);
  add_job_command(*update, ctx, "watch",
                  "Follow a job live until it ends (exit 0 completed, 1 otherwise)", watch_job);

  auto* list = update->add_subcommand("list", "All jobs with their status");
  list->callback([&ctx] { ctx.action = [&ctx] { return list_jobs(ctx); }; });

  auto run_spec = std::make_shared<job_spec>();
  auto* run = update->add_subcommand("run", "create + install + watch in one command");
  add_spec_options(run, *run_spec);
  run->callback([&ctx, run_spec] { ctx.action = [&ctx, run_spec] { return run_job(ctx, *run_spec); }; });
}

}  // namespace coapfleet::cli
