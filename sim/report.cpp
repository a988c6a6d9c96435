#include "sim/report.hpp"

#include <cmath>
#include <cstdio>

namespace coapfleet::sim {

namespace {

double ms(uint64_t micros) { return static_cast<double>(micros) / 1000.0; }

std::string num(double v, int decimals = 3) {
  if (!std::isfinite(v))
    return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string num(uint64_t v) { return std::to_string(v); }

class json_object {
public:
  json_object& field(const char* name, const std::string& raw) {
    out_ += out_.size() > 1 ? ",\"" : "\"";
    out_ += name;
    out_ += "\":";
    out_ += raw;
    return *this;
  }
  json_object& str(const char* name, const std::string& v) {
    std::string q = "\"";
    for (char c : v) {
      if (c == '"' || c == '\\')
        q += '\\';
      q += c;
    }
    return field(name, q + "\"");
  }
  std::string done() const { return out_ + "}"; }

private:
  std::string out_ = "{";
};

std::string latency_json(const latency_histogram& h) {
  json_object o;
  o.field("count", num(h.count()))
    .field("min", num(ms(h.min())))
    .field("mean", num(h.mean() / 1000.0))
    .field("p50", num(ms(h.quantile(0.50))))
    .field("p90", num(ms(h.quantile(0.90))))
    .field("p99", num(ms(h.quantile(0.99))))
    .field("p999", num(ms(h.quantile(0.999))))
    .field("max", num(ms(h.max())));
  return o.done();
}

std::string latency_line(const latency_histogram& h) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "p50 %.3f  p90 %.3f  p99 %.3f  max %.3f ms (mean %.3f, n=%llu)",
                ms(h.quantile(0.5)), ms(h.quantile(0.9)), ms(h.quantile(0.99)), ms(h.max()),
                h.mean() / 1000.0, static_cast<unsigned long long>(h.count()));
  return buf;
}

std::string server_text(const config& c) {
  return format_ipv4(c.server_ip) + ":" + std::to_string(c.server_port);
}

double cpu_percent(const run_result& r) {
  return r.elapsed_seconds > 0 ? 100.0 * r.cpu_seconds / r.elapsed_seconds : 0;
}

}  // namespace

std::string summary_text(const config& c, const run_result& r) {
  std::string s;
  char line[512];
  auto add = [&](const char* fmt, auto... args) {
    std::snprintf(line, sizeof line, fmt, args...);
    s += line;
  };
  using ull = unsigned long long;
  if (c.mode == sim_mode::load) {
    add("coapfleet-sim load against %s (%s, /%s)%s\n", server_text(c).c_str(),
        c.target == target_kind::libcoap ? "libcoap example server" : "coapfleet-server",
        c.path.c_str(), r.interrupted ? " [interrupted]" : "");
    add("  nodes            %u (%u in flight each%s%s)\n", c.nodes, c.inflight,
        c.window > 0 ? (", at most " + std::to_string(c.window) + " in all").c_str() : "",
        c.rate > 0 ? (", paced at " + num(c.rate, 0) + " req/s").c_str() : "");
    if (c.do_register)
      add("  registration     %u/%u registered in %.2f s (%llu failed attempts), %s\n",
          r.registered, c.nodes, r.register_seconds, static_cast<ull>(r.register_failures),
          latency_line(r.register_latency).c_str());
    add("  requests         %llu sent, %llu answered (%llu within the %.2f s window)\n",
        static_cast<ull>(r.sent), static_cast<ull>(r.answered),
        static_cast<ull>(r.answered_in_window), r.window_seconds);
    add("  throughput       %.1f answers/s\n", r.throughput);
    add("  latency          %s\n", latency_line(r.latency).c_str());
    add("  codes            %s\n", r.codes.text().c_str());
    add("  losses           %llu (%llu without answer after all retransmissions, "
        "%llu unanswered at the end)\n",
        static_cast<ull>(r.lost + r.unanswered_at_end), static_cast<ull>(r.lost),
        static_cast<ull>(r.unanswered_at_end));
    add("  retransmissions  %llu   RST %llu   5.03 back-offs %llu   rate misses %llu\n",
        static_cast<ull>(r.retransmissions), static_cast<ull>(r.rst),
        static_cast<ull>(r.backoffs), static_cast<ull>(r.rate_misses));
  } else {
    add("coapfleet-sim fleet against %s for %.1f s%s\n", server_text(c).c_str(),
        r.elapsed_seconds, r.interrupted ? " [interrupted]" : "");
    add("  nodes            %u registered of %u (%llu registrations, %llu after 4.04, "
        "%llu failed attempts)\n",
        r.registered, c.nodes, static_cast<ull>(r.registrations),
        static_cast<ull>(r.reregistrations), static_cast<ull>(r.register_failures));
    add("  health           %llu sent, %llu answered, %llu ticks skipped; %s\n",
        static_cast<ull>(r.health_sent), static_cast<ull>(r.health_answered),
        static_cast<ull>(r.health_skipped), latency_line(r.latency).c_str());
    add("  answers          %s\n", r.codes.text().c_str());
    add("  retransmissions  %llu   lost %llu   RST %llu   unanswered at the end %llu\n",
        static_cast<ull>(r.retransmissions), static_cast<ull>(r.lost), static_cast<ull>(r.rst),
        static_cast<ull>(r.unanswered_at_end));
    add("  jobs             %llu notifications (%llu repeated, %llu refused), %llu reports; "
        "%llu succeeded, %llu failed, %llu never ended, %llu abandoned\n",
        static_cast<ull>(r.notifications), static_cast<ull>(r.notification_duplicates),
        static_cast<ull>(r.notification_rejected), static_cast<ull>(r.reports_sent),
        static_cast<ull>(r.jobs_succeeded), static_cast<ull>(r.jobs_failed),
        static_cast<ull>(r.jobs_hung), static_cast<ull>(r.jobs_abandoned));
  }
  add("  datagrams        %llu out, %llu in (%llu send errors, %llu undecodable, "
      "%llu unexpected)\n",
      static_cast<ull>(r.datagrams_out), static_cast<ull>(r.datagrams_in),
      static_cast<ull>(r.send_errors), static_cast<ull>(r.decode_errors),
      static_cast<ull>(r.unexpected));
  add("  simulator CPU    %.2f s in %.2f s (%.0f %% of one core)\n", r.cpu_seconds,
      r.elapsed_seconds, cpu_percent(r));
  return s;
}

std::string summary_json(const config& c, const run_result& r) {
  json_object o;
  o.str("mode", c.mode == sim_mode::load ? "load" : "fleet")
    .str("server", server_text(c))
    .field("nodes", num(uint64_t{c.nodes}))
    .field("registered", num(uint64_t{r.registered}))
    .field("registrations", num(r.registrations))
    .field("register_failures", num(r.register_failures))
    .field("register_codes", r.register_codes.json())
    .field("interrupted", r.interrupted ? "true" : "false");
  if (c.mode == sim_mode::load) {
    o.str("target", c.target == target_kind::libcoap ? "libcoap" : "coapfleet")
      .str("path", c.path)
      .field("inflight", num(uint64_t{c.inflight}))
      .field("window", num(uint64_t{c.window}))
      .field("rate", num(c.rate, 1))
      .field("duration_s", num(c.duration))
      .field("register_seconds", num(r.register_seconds))
      .field("window_s", num(r.window_seconds))
      .field("sent", num(r.sent))
      .field("answered", num(r.answered))
      .field("answered_in_window", num(r.answered_in_window))
      .field("throughput", num(r.throughput, 1))
      .field("p50_ms", num(ms(r.latency.quantile(0.5))))
      .field("p90_ms", num(ms(r.latency.quantile(0.9))))
      .field("p99_ms", num(ms(r.latency.quantile(0.99))))
      .field("max_ms", num(ms(r.latency.max())))
      .field("latency_ms", latency_json(r.latency))
      .field("codes", r.codes.json())
      .field("losses", num(r.lost + r.unanswered_at_end))
      .field("lost", num(r.lost))
      .field("failovers", num(r.failovers))
      .field("unanswered_at_end", num(r.unanswered_at_end))
      .field("backoffs", num(r.backoffs))
      .field("rate_misses", num(r.rate_misses));
  } else {
    o.field("interval_s", num(c.interval))
      .field("reregistrations", num(r.reregistrations))
      .field("health_sent", num(r.health_sent))
      .field("health_answered", num(r.health_answered))
      .field("health_skipped", num(r.health_skipped))
      .field("health_latency_ms", latency_json(r.latency))
      .field("codes", r.codes.json())
      .field("lost", num(r.lost))
      .field("failovers", num(r.failovers))
      .field("unanswered_at_end", num(r.unanswered_at_end))
      .field("notifications", num(r.notifications))
      .field("notification_duplicates", num(r.notification_duplicates))
      .field("notification_rejected", num(r.notification_rejected))
      .field("reports_sent", num(r.reports_sent))
      .field("reports_answered", num(r.reports_answered))
      .field("jobs_succeeded", num(r.jobs_succeeded))
      .field("jobs_failed", num(r.jobs_failed))
      .field("jobs_hung", num(r.jobs_hung))
      .field("jobs_abandoned", num(r.jobs_abandoned));
  }
  o.field("rst", num(r.rst))
    .field("retransmissions", num(r.retransmissions))
    .field("datagrams_out", num(r.datagrams_out))
    .field("datagrams_in", num(r.datagrams_in))
    .field("send_errors", num(r.send_errors))
    .field("decode_errors", num(r.decode_errors))
    .field("unexpected", num(r.unexpected))
    .field("elapsed_s", num(r.elapsed_seconds))
    .field("sim_cpu_s", num(r.cpu_seconds))
    .field("sim_cpu_percent", num(cpu_percent(r), 1));
  return o.done();
}

}  // namespace coapfleet::sim
