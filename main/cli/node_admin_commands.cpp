// node delete|history|label, artifact delete: decommissioning and the record of
// what happened to a node in every job.
#include "main/cli/commands.hpp"
#include "main/cli/job_watch.hpp"
#include "main/cli/output.hpp"
#include "main/cli/time_text.hpp"
#include "model/json_builder.hpp"
#include "model/json_value.hpp"

#include <cstdio>
#include <memory>

namespace coapfleet::cli {

namespace {

using model::json_value;

/// DELETE `path`; prints `done` (or the server's JSON).
int delete_path(context& ctx, const std::string& path, const std::string& done) {
  auto a = ctx.call_raw(client::method::del, path);
  if (!a.ok())
    return a.exit;
  if (ctx.options.json)
    print_raw(a.raw.body);
  else
    std::printf("%s\n", done.c_str());
  return exit_ok;
}

}  // namespace

namespace {

/// GET `path` (a node's or a job's history), newest first, `limit` entries
/// (page by page); the other side of each entry (`other`: job_id or node_id).
int print_history(context& ctx, const std::string& path, const char* other,
                  const std::string& what, long long limit) {
  auto term = terminal::detect();
  table t({"AT", other[0] == 'j' ? "JOB" : "NODE", "ATTEMPT", "STATE", "RESULT", "ERROR"});
  std::string before;
  long long shown = 0;
  while (shown < limit) {
    auto a = ctx.call(client::method::get, path, before.empty() ? "" : "before=" + before);
    if (!a.ok())
      return a.exit;
    if (ctx.options.json) {
      print_raw(a.raw.body);
    } else {
      for (json_value e : a.json()["history"].elements()) {
        if (shown++ >= limit)
          break;
        auto state = e["status"].as_string();
        auto error = e["error_message"].as_string();
        t.add({e["at"].as_string(), e[other].as_string(),
               std::to_string(e["attempt"].as_int()), state,
               result_text(e["result"].as_int()), error.empty() ? "-" : error},
              {colour::none, colour::none, colour::none, colour_of(state), colour::none,
               error.empty() ? colour::none : colour::red});
      }
    }
    auto next = a.json()["next"];
    if (!next.is_number())
      break;
    before = std::to_string(next.as_int());
  }
  if (ctx.options.json)
    return exit_ok;
  if (t.empty())
    std::printf("no history for %s\n", what.c_str());
  else
    t.print(term);
  return exit_ok;
}

}  // namespace

int node_history(context& ctx, const std::string& id, long long limit) {
  return print_history(ctx, "nodes/" + id + "/history", "job_id", "node " + id, limit);
}

int job_history(context& ctx, const std::string& job, long long limit) {
  return print_history(ctx, "updates/" + job + "/history", "node_id", "job " + job, limit);
}

int label_node(context& ctx, const std::string& id, const std::vector<std::string>& changes) {
  model::json_builder b;
  b.begin_object().member("action", "label").member("node_id", id).key("labels").begin_object();
  for (auto& c : changes) {
    auto eq = c.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "coapfleet: node label: %s is not KEY=VALUE (KEY= removes a label)\n",
                   c.c_str());
      return exit_usage;
    }
    b.key(c.substr(0, eq));
    if (eq + 1 == c.size())
      b.null();
    else
      b.string(c.substr(eq + 1));
  }
  b.end_object().end_object();
  auto a = ctx.call(client::method::post, "nodes", "", b.text());
  if (!a.ok())
    return a.exit;
  if (ctx.options.json) {
    print_raw(a.raw.body);
    return exit_ok;
  }
  std::string text;
  for (auto m : a.json()["labels"].members())
    text += (text.empty() ? "" : " ") + std::string(m.name) + "=" + m.value.as_string();
  std::printf("node %s labels: %s\n", id.c_str(), text.empty() ? "(none)" : text.c_str());
  return exit_ok;
}

int delete_node(context& ctx, const std::string& id) {
  return delete_path(ctx, "nodes/" + id, "node " + id + " deleted");
}

void add_artifact_delete_command(CLI::App& artifact, context& ctx) {
  auto name = std::make_shared<std::string>();
  auto* adel = artifact.add_subcommand(
    "delete", "Delete a stored artifact (refused while an unfinished job needs it)");
  adel->add_option("name", *name, "The artifact's name")->required();
  adel->callback([&ctx, name] {
    ctx.action = [&ctx, name] {
      return delete_path(ctx, "artifacts/" + *name, "artifact " + *name + " deleted");
    };
  });
}

}  // namespace coapfleet::cli
