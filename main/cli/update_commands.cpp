// update create|install|status|cancel|retry|delete|list|watch|run: software-update jobs.
#include "main/cli/commands.hpp"
#include "main/cli/job_watch.hpp"
#include "main/cli/output.hpp"
#include "main/cli/time_text.hpp"
#include "common/job_signing.hpp"
#include "model/job_signature.hpp"
#include "model/json_builder.hpp"
#include "model/json_value.hpp"

#include <cstdio>
#include <functional>
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
    json_builder b;
    b.begin_object().member("name", name).member("version", version).member("package_type", type);
    b.member("target_nodes", targets());
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

std::string action_body(const char* action, const std::string& job, bool force = false) {
  json_builder b;
  b.begin_object().member("action", action).member("job_id", job);
  if (force)
    b.member("force", true);
  return b.end_object().text();
}

/// Before anything is created: every named target is registered (and with
/// "all", some node is). False (and `exit`) when not.
bool check_targets(context& ctx, const job_spec& s, int& exit) {
  auto targets = s.targets();
  std::vector<std::string> unknown;
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

/// The waves of a campaign, its thresholds and its pause (for more than one
/// wave, or a pause).
void print_campaign(const terminal& term, json_value c) {
  auto waves = c["waves"];
  if (!c.is_object() || (waves.size() <= 1 && !c["paused"].as_bool()))
    return;
  table t({"WAVE", "PERCENT", "NODES", "STARTED", "SUCCEEDED", "FAILED", "STATE"});
  for (json_value w : waves.elements()) {
    auto state = w["state"].as_string();
    t.add({std::to_string(w["index"].as_int()), std::to_string(w["percent"].as_int()) + "%",
           std::to_string(w["nodes"].as_int()), std::to_string(w["started"].as_int()),
           std::to_string(w["succeeded"].as_int()), std::to_string(w["failed"].as_int()), state},
          {colour::none, colour::none, colour::none, colour::none, colour::none, colour::none,
           state == "failed"      ? colour::red
           : state == "succeeded" ? colour::green
                                  : colour::none});
  }
  t.print(term);
  std::string limits;
  auto add = [&](const char* name, const char* unit) {
    if (auto v = c[name].as_int(); v > 0)
      limits += (limits.empty() ? "" : ", ") + std::string(name) + " " + std::to_string(v) + unit;
  };
  add("success_threshold", "%");
  add("error_threshold", "%");
  add("soak_seconds", " s");
  add("max_parallel", "");
  add("retries", "");
  if (auto w = c["window"].as_string(); !w.empty())
    limits += (limits.empty() ? "" : ", ") + std::string("window ") + w + " UTC";
  if (c["dynamic"].as_bool())
    limits += (limits.empty() ? "" : ", ")
              + std::string(c["open"].as_bool() ? "dynamic (open)" : "dynamic (closed)");
  if (!limits.empty())
    std::printf("%s\n", limits.c_str());
  if (c["paused"].as_bool())
    std::printf("%s\n", term.paint(colour::yellow, "PAUSED: " + c["pause_reason"].as_string())
                           .c_str());
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
  print_campaign(term, d["campaign"]);
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

/// POST /updates {"action", "job_id"[, "force"]}: the server's JSON with
/// --json, else the line `say` makes of it.
int job_action(context& ctx, const std::string& job, const char* action, bool force,
               const std::function<std::string(json_value)>& say) {
  auto a = ctx.call_raw(client::method::post, "updates", "", action_body(action, job, force));
  if (!a.ok())
    return a.exit;
  if (ctx.options.json) {
    print_raw(a.raw.body);
    return exit_ok;
  }
  auto doc = model::json_document::parse(a.raw.body);
  std::printf("%s\n", say(doc.root()).c_str());
  return exit_ok;
}

int cancel_job(context& ctx, const std::string& job, bool force) {
  return job_action(ctx, job, "cancel", force, [&](json_value d) {
    auto waiting = d["unconfirmed"].as_string();
    return "job " + job + " cancelled"
           + (waiting.empty() || waiting == "0"
                ? std::string()
                : "; " + waiting + " nodes told to stop"
                    + (force ? " (running installs are stopped)" : " (running installs end first)")
                    + "; each shows cancelled once its agent confirms");
  });
}

int campaign_action(context& ctx, const std::string& job, const char* action) {
  return job_action(ctx, job, action, false,
                    [](json_value d) { return d["message"].as_string(); });
}

int retry_job(context& ctx, const std::string& job) {
  return job_action(ctx, job, "retry", false, [&](json_value d) {
    return "job " + job + ": " + d["retried"].as_string()
           + " failed, timed-out or skipped nodes start another attempt";
  });
}

int delete_job(context& ctx, const std::string& job) {
  return job_action(ctx, job, "delete", false, [&](json_value) { return "job " + job + " deleted"; });
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
  if (!check_targets(ctx, s, exit))
    return exit;
  auto id = create_job(ctx, s, exit, false);
  if (!id)
    return exit;
  if (int rc = install_job(ctx, *id); rc != exit_ok) {
    // Nothing ran: the job created for this run goes again.
    auto d = ctx.call_raw(client::method::post, "updates", "", action_body("delete", *id));
    if (d.ok())
      std::fprintf(stderr, "coapfleet: job %s deleted again: it could not be triggered\n",
                   id->c_str());
    return rc;
  }
  return watch_job(ctx, *id);
}

/// A subcommand taking one job id.
CLI::App* add_job_command(CLI::App& update, context& ctx, const char* name, const char* help,
                          int (*fn)(context&, const std::string&)) {
  auto* sub = update.add_subcommand(name, help);
  auto job = std::make_shared<std::string>();
  sub->add_option("job", *job, "The job id (as update create printed it)")->required();
  sub->callback([&ctx, job, fn] { ctx.action = [&ctx, job, fn] { return fn(ctx, *job); }; });
  return sub;
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
  auto cancel_id = std::make_shared<std::string>();
  auto cancel_force = std::make_shared<bool>(false);
  auto* cancel = update->add_subcommand(
    "cancel", "Cancel a job: its agents drop queued work (with --force they also stop running "
              "installs); a node shows cancelled once its agent confirms");
  cancel->add_option("job", *cancel_id, "The job id (as update create printed it)")->required();
  cancel->add_flag("--force", *cancel_force, "also stop installs that are running");
  cancel->callback([&ctx, cancel_id, cancel_force] {
    ctx.action = [&ctx, cancel_id, cancel_force] {
      return cancel_job(ctx, *cancel_id, *cancel_force);
    };
  });
  add_job_command(*update, ctx, "pause", "Pause a campaign: no more nodes start",
                  [](context& c, const std::string& j) { return campaign_action(c, j, "pause"); });
  add_job_command(*update, ctx, "resume", "Resume a paused campaign",
                  [](context& c, const std::string& j) { return campaign_action(c, j, "resume"); });
  add_job_command(*update, ctx, "close", "Close a dynamic campaign to late joiners",
                  [](context& c, const std::string& j) { return campaign_action(c, j, "close"); });
  add_job_command(*update, ctx, "retry",
                  "Run a job's failed, timed-out and skipped nodes again (another attempt)",
                  retry_job);
  add_job_command(*update, ctx, "delete",
                  "Delete a job that is not running (observers of it get 4.04)", delete_job);
  auto* watch = add_job_command(*update, ctx, "watch",
                                "Follow a job live until it ends (exit 0 completed, 1 otherwise)",
                                watch_job);
  watch->add_option("--wait-server", ctx.options.wait_server,
                    "seconds to wait for a server that stopped answering (a restart) before "
                    "giving up")
    ->capture_default_str()
    ->check(CLI::NonNegativeNumber);

  auto* list = update->add_subcommand("list", "All jobs with their status");
  list->callback([&ctx] { ctx.action = [&ctx] { return list_jobs(ctx); }; });

  auto run_spec = std::make_shared<job_spec>();
  auto* run = update->add_subcommand(
    "run", "check the targets, then create + install + watch in one command");
  add_spec_options(run, *run_spec);
  run->add_option("--wait-server", ctx.options.wait_server,
                  "seconds to wait for a server that stopped answering (a restart) before "
                  "giving up")
    ->capture_default_str()
    ->check(CLI::NonNegativeNumber);
  run->callback([&ctx, run_spec] { ctx.action = [&ctx, run_spec] { return run_job(ctx, *run_spec); }; });
}

}  // namespace coapfleet::cli
