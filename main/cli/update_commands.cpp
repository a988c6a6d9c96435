// update create|install|status|cancel|retry|delete|list|watch|run: software-update jobs.
#include "main/cli/commands.hpp"
#include "main/cli/job_spec_options.hpp"
#include "main/cli/job_watch.hpp"
#include "main/cli/output.hpp"
#include "main/cli/time_text.hpp"
#include "model/json_builder.hpp"
#include "model/json_value.hpp"

#include <cstdio>
#include <functional>
#include <memory>

namespace coapfleet::cli {

namespace {

using model::json_builder;
using model::json_value;

std::string action_body(const char* action, const std::string& job, bool force = false) {
  json_builder b;
  b.begin_object().member("action", action).member("job_id", job);
  if (force)
    b.member("force", true);
  return b.end_object().text();
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
                     "succeeded", "failed", "timed_out", "cancelled", "skipped", "rolled_back"})
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
                          std::function<int(context&, const std::string&)> fn) {
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

  auto history_limit = std::make_shared<long long>(50);
  auto* history = add_job_command(
    *update, ctx, "history", "Every state change of every node of a job, newest first",
    [history_limit](context& c, const std::string& j) { return job_history(c, j, *history_limit); });
  history->add_option("--limit", *history_limit, "entries to show")
    ->capture_default_str()
    ->check(CLI::Range(1LL, 100000LL));

  auto* list = update->add_subcommand("list", "All jobs with their status");
  list->callback([&ctx] { ctx.action = [&ctx] { return list_jobs(ctx); }; });

  auto run_spec = std::make_shared<job_spec>();
  auto* run = update->add_subcommand(
    "run", "Check the targets, then create + install + watch in one command");
  add_spec_options(run, *run_spec);
  run->add_option("--wait-server", ctx.options.wait_server,
                  "seconds to wait for a server that stopped answering (a restart) before "
                  "giving up")
    ->capture_default_str()
    ->check(CLI::NonNegativeNumber);
  run->callback([&ctx, run_spec] { ctx.action = [&ctx, run_spec] { return run_job(ctx, *run_spec); }; });
}

}  // namespace coapfleet::cli
