#include "main/cli/job_watch.hpp"

#include "main/cli/output.hpp"
#include "main/cli/time_text.hpp"
#include "model/json_value.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <map>
#include <set>
#include <thread>

namespace coapfleet::cli {

namespace {

using model::json_value;

volatile std::sig_atomic_t interrupted = 0;

extern "C" void on_interrupt(int) {
  interrupted = 1;
}

/// The per-state counts in the order a job moves through them.
const char* const count_names[] = {"total",      "pending",   "notified",  "downloading",
                                   "downloaded", "installing", "succeeded", "failed",
                                   "timed_out",  "cancelled",  "skipped",   "rolled_back"};

bool final_status(const std::string& s) {
  return s == "completed" || s == "failed" || s == "partially_failed" || s == "cancelled";
}

bool node_failed(const std::string& s) {
  return s == "failed" || s == "timed_out" || s == "rolled_back";
}

bool node_final(const std::string& s) {
  return s == "succeeded" || s == "failed" || s == "timed_out" || s == "cancelled"
         || s == "skipped" || s == "rolled_back";
}

/// A node that has not finished and sent nothing for this long is marked stale.
constexpr double stale_after_seconds = 60;

/// The watch re-registers after this long without a notification: a server
/// restarted after kill -9 forgot the observation.
constexpr auto max_silence = std::chrono::seconds(5);



/// Draws notifications; remembers what it already said.
class watch_view {
public:
  watch_view(const terminal& term, bool json, std::string job)
    : term_(term), json_(json), job_(std::move(job)) {}

  /// Shows one notification; returns the job status.
  std::string show(const std::string& raw) {
    if (raw == last_raw_)
      return last_status_;  // a re-read (poll) that changed nothing
    last_raw_ = raw;
    auto doc = model::json_document::parse(raw);
    auto d = doc.root();
    if (!d.is_object())
      return last_status_;
    last_status_ = d["status"].as_string();
    if (json_) {
      print_raw(raw);
      return last_status_;
    }
    report_failures(d);
    report_stale(d);
    report_campaign(d["campaign"]);
    if (term_.colours)
      draw_bar(d);
    else
      plain_line(d);
    return last_status_;
  }

  /// Ends the live line and prints the outcome; `last` is the last
  /// notification (counts are shown when it is an object).
  void finish(const std::string& status, json_value last) {
    clear_bar();
    if (json_ || status.empty())
      return;
    std::string counts = last.is_object() ? nonzero_counts(last) : "";
    std::printf("%s\n", term_.paint(colour_of(status), "job " + job_ + " " + status
                                                         + (counts.empty() ? "" : ": " + counts))
                          .c_str());
    std::fflush(stdout);
  }

  /// Erases the live bar (before an error message or the final line).
  void clear_bar() {
    if (bar_shown_) {
      std::fputs("\r\033[K", stdout);
      std::fflush(stdout);
      bar_shown_ = false;
    }
  }

  const std::string& last_raw() const { return last_raw_; }

private:
  std::string nonzero_counts(json_value d) const {
    auto counts = d["counts"];
    if (!counts.exists())
      return "";
    std::string out;
    for (size_t i = 1; i < std::size(count_names); ++i)
      if (auto n = counts[count_names[i]].as_int(); n > 0)
        out += (out.empty() ? "" : ", ") + std::to_string(n) + " " + count_names[i];
    auto total = counts["total"].as_int();
    return std::to_string(total) + (total == 1 ? " node" : " nodes")
           + (out.empty() ? "" : ": " + out);
  }

  void report_failures(json_value d) {
    auto nodes = d["nodes"];
    if (!nodes.is_array())
      return;
    for (json_value n : nodes.elements()) {
      auto id = n["node_id"].as_string();
      auto state = n["status"].as_string();
      if (!node_failed(state) || !failures_.insert(id).second)
        continue;
      clear_bar();
      auto error = n["error_message"].as_string();
      auto result = n["result"].as_int();
      std::printf("%s\n", term_.paint(colour::red, "node " + id + " " + state
                                                     + (error.empty() ? "" : ": " + error)
                                                     + (result > 0 ? " [result "
                                                                       + result_text(result) + "]"
                                                                   : ""))
                            .c_str());
    }
    std::fflush(stdout);
  }

  /// A campaign's wave starting and its pauses, each said once.
  void report_campaign(json_value c) {
    if (!c.is_object())
      return;
    auto waves = c["waves"];
    auto wave = c["wave"].as_int();
    if (waves.size() > 1 && wave != last_wave_) {
      last_wave_ = wave;
      clear_bar();
      auto w = waves.at(static_cast<size_t>(wave));
      std::printf("wave %lld of %zu: %lld%% of the targets (%lld nodes)\n", wave + 1,
                  waves.size(), w["percent"].as_int(), w["nodes"].as_int());
    }
    auto paused = c["paused"].as_bool();
    auto reason = c["pause_reason"].as_string();
    if (paused && reason != pause_said_) {
      clear_bar();
      std::printf("%s\n", term_.paint(colour::yellow, "PAUSED: " + reason).c_str());
      pause_said_ = reason;
    } else if (!paused && !pause_said_.empty()) {
      clear_bar();
      std::printf("resumed\n");
      pause_said_.clear();
    }
    std::fflush(stdout);
  }

  /// Nodes that have not finished and have not been heard of for a while:
  /// said once per node (again once it moved and went quiet again).
  void report_stale(json_value d) {
    auto nodes = d["nodes"];
    if (!nodes.is_array())
      return;
    auto now = static_cast<double>(std::time(nullptr));
    for (json_value n : nodes.elements()) {
      auto id = n["node_id"].as_string();
      auto state = n["status"].as_string();
      auto at = parse_utc(n["updated_at"].as_string());
      if (node_final(state) || !at || now - *at < stale_after_seconds) {
        stale_.erase(id);
        continue;
      }
      auto key = id + " " + n["updated_at"].as_string();
      if (!stale_.insert({id, key}).second)
        continue;
      clear_bar();
      auto progress = n["progress"];
      std::printf("%s\n",
                  term_.paint(colour::yellow,
                              "node " + id + " " + state
                                + (progress.is_number()
                                     ? " " + std::to_string(progress.as_int()) + "%"
                                     : "")
                                + ": stale, no report since "
                                + relative_time(n["updated_at"].as_string()))
                    .c_str());
    }
    std::fflush(stdout);
  }

  void draw_bar(json_value d) {
    double progress = d["progress"].as_number();
    char pct[16];
    std::snprintf(pct, sizeof(pct), "%3.0f%%", progress);
    std::string status = d["status"].as_string();
    std::string text = bar(progress / 100.0, 30) + " " + pct + " " + status + "  "
                       + nonzero_counts(d);
    auto width = static_cast<size_t>(term_.width() - 1);
    if (display_width(text) > width)
      text = text.substr(0, width);  // a wrapped line could not be redrawn with \r
    std::printf("\r\033[K%s", text.c_str());
    std::fflush(stdout);
    bar_shown_ = true;
  }

  void plain_line(json_value d) {
    std::string text = "job " + job_ + " " + d["status"].as_string();
    char pct[16];
    std::snprintf(pct, sizeof(pct), " %.0f%%", d["progress"].as_number());
    text += pct;
    if (auto counts = d["counts"]; counts.exists())
      for (auto* name : count_names)
        text += std::string(" ") + name + "=" + std::to_string(counts[name].as_int());
    std::printf("%s\n", text.c_str());
    std::fflush(stdout);
  }

  const terminal& term_;
  bool json_;
  std::string job_;
  std::string last_raw_;
  std::string last_status_;
  std::set<std::string> failures_;
  std::map<std::string, std::string> stale_;  ///< node → the updated_at it went stale at
  long long last_wave_ = -1;
  std::string pause_said_;
  bool bar_shown_ = false;
};

}  // namespace

std::string result_text(long long code) {
  static const char* const names[] = {"initial",
                                      "success",
                                      "not enough storage",
                                      "out of memory",
                                      "connection lost during download",
                                      "integrity check failed",
                                      "unsupported package type",
                                      "invalid URI",
                                      "update failed",
                                      "unsupported protocol",
                                      "cancelled"};
  if (code >= 0 && code < static_cast<long long>(std::size(names)))
    return std::to_string(code) + " (" + names[code] + ")";
  return std::to_string(code);
}

int watch_job(context& ctx, const std::string& job) {
  auto* client = ctx.client();
  if (!client)
    return exit_usage;
  auto term = terminal::detect();
  watch_view view(term, ctx.options.json, job);
  std::string status;

  interrupted = 0;
  struct sigaction action {}, old_int {}, old_term {};
  action.sa_handler = on_interrupt;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, &old_int);
  ::sigaction(SIGTERM, &action, &old_term);
  // Observes until the job ends. A server that goes away (a restart: it
  // ends observations with 4.04 or 5.03 as it stops, then does not answer)
  // is waited for, and observed again once it answers: the job goes on.
  client::observe_outcome result;
  auto gone_since = std::chrono::steady_clock::time_point{};
  bool said_waiting = false;
  bool ever_heard = false;
  for (;;) {
    bool heard = false;
    result = client->observe(
      "updates/" + job + "/status", "",
      [&](const client::response& r) {
        heard = true;
        status = view.show(r.body);
        return !final_status(status);
      },
      &interrupted, max_silence);
    if (heard) {
      ever_heard = true;
      gone_since = {};
      said_waiting = false;
    }
    constexpr uint8_t not_found = (4 << 5) | 4;
    bool restart_like =
      ever_heard
      && (result.how == client::observe_outcome::no_answer
          || (result.how == client::observe_outcome::ended && result.last && heard
              && (result.last->code == not_found || (result.last->code >> 5) == 5)));
    if (!restart_like)
      break;
    auto now = std::chrono::steady_clock::now();
    if (gone_since == std::chrono::steady_clock::time_point{})
      gone_since = now;
    if (now - gone_since
        >= std::chrono::duration<double>(std::max(ctx.options.wait_server, 0.0)))
      break;
    if (!said_waiting) {
      view.clear_bar();
      std::fprintf(stderr, "coapfleet: the server stopped answering for job %s (%s); "
                           "waiting for it\n",
                   job.c_str(),
                   result.how == client::observe_outcome::no_answer
                     ? result.failure.c_str()
                     : ("it answered " + result.last->code_text()).c_str());
      said_waiting = true;
    }
    for (int i = 0; i < 10 && !interrupted; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (interrupted) {
      result.how = client::observe_outcome::interrupted;
      break;
    }
  }
  switch (result.how) {
    case client::observe_outcome::stopped: {
      auto last = model::json_document::parse(view.last_raw());
      view.finish(status, last.root());
      return status == "completed" ? exit_ok : exit_job_failed;
    }
    case client::observe_outcome::ended:
      view.clear_bar();
      return ctx.report_error(*result.last);
    case client::observe_outcome::interrupted:
      view.clear_bar();
      std::fprintf(stderr, "coapfleet: interrupted; job %s continues on the server\n",
                   job.c_str());
      return 130;
    case client::observe_outcome::no_answer:
      break;
  }
  view.clear_bar();
  return ctx.report_no_answer(result.failure);
}

}  // namespace coapfleet::cli
