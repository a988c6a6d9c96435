// audit: the server's audit log (GET /audit; operators only), newest first,
// one page at a time (`--before` the previous page's next), or every page
// with --all. --json prints the server's pages as they are.
#include "main/cli/commands.hpp"
#include "main/cli/output.hpp"

#include <cstdio>
#include <memory>
#include <string>

namespace coapfleet::cli {

namespace {

struct audit_args {
  unsigned limit = 100;
  unsigned long long before = 0;
  bool all = false;
};

std::string who(model::json_value r) {
  auto identity = r["identity"];
  if (identity.is_string())
    return identity.as_string();
  return r["address"].as_string() + ":" + std::to_string(static_cast<long long>(
                                              r["port"].as_number()));
}

colour outcome_colour(const std::string& code) {
  if (code.rfind("2.", 0) == 0)
    return colour::green;
  return code.rfind("4.0", 0) == 0 && (code == "4.01" || code == "4.03") ? colour::red
                                                                          : colour::yellow;
}

int show(context& ctx, const audit_args& args) {
  auto term = terminal::detect();
  unsigned long long before = args.before;
  size_t shown = 0;
  for (;;) {
    std::string query = "limit=" + std::to_string(args.limit);
    if (before > 0)
      query += "&before=" + std::to_string(before);
    auto a = ctx.call(client::method::get, "audit", query);
    if (!a.ok())
      return a.exit;
    auto next = a.json()["next"];
    unsigned long long more = next.is_null() ? 0 : static_cast<unsigned long long>(next.as_number());
    if (ctx.options.json) {
      print_raw(a.raw.body);
    } else {
      table t({"SEQ", "TIME", "IDENTITY", "ROLE", "ACTION", "TARGET", "OUTCOME"});
      for (model::json_value r : a.json()["records"].elements()) {
        auto outcome = r["outcome"].as_string();
        auto detail = r["detail"];
        if (detail.is_string())
          outcome += " " + detail.as_string();
        t.add({std::to_string(static_cast<long long>(r["seq"].as_number())),
               r["at"].as_string(), who(r), r["role"].as_string() + (r["secure"].as_bool() ? "" : " (plain)"),
               r["action"].as_string(), r["target"].is_string() ? r["target"].as_string() : "-",
               outcome},
              {colour::dim, colour::none, colour::none, colour::none, colour::bold,
               colour::none, outcome_colour(r["outcome"].as_string())});
        ++shown;
      }
      if (!t.empty())
        t.print(term);
    }
    if (more == 0 || !args.all) {
      if (!ctx.options.json && shown == 0)
        std::printf("no audit records\n");
      if (!ctx.options.json && more != 0)
        std::fprintf(stderr, "older records: coapfleet audit --before %llu (or --all)\n", more);
      return exit_ok;
    }
    before = more;
  }
}

}  // namespace

void add_audit_commands(CLI::App& app, context& ctx) {
  auto args = std::make_shared<audit_args>();
  auto* audit = app.add_subcommand(
    "audit", "The audit log, newest first: who did what, when, from where, and the outcome "
             "(operators only)");
  audit->add_option("--limit", args->limit, "Records per page")
    ->capture_default_str()
    ->check(CLI::Range(1u, 1000u));
  audit->add_option("--before", args->before,
                    "Only records older than this sequence number (a page's next)")
    ->check(CLI::Range(1ULL, 9223372036854775807ULL));
  audit->add_flag("--all", args->all, "Follow every page to the oldest record");
  audit->callback([&ctx, args] { ctx.action = [&ctx, args] { return show(ctx, *args); }; });
}

}  // namespace coapfleet::cli
