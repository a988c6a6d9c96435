// Pure parts of the health sampler: parsers of /proc, /sys and /etc file
// contents, the CPU percentage and the thresholds. No I/O here.
#include "actors/agent/sampler.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace coapfleet::agent {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

/// Cuts the next line (without its '\n') off the front of text.
std::string_view next_line(std::string_view& text) {
  auto nl = text.find('\n');
  std::string_view line = text.substr(0, nl);
  text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
  return line;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

/// Skips blanks, then reads an unsigned integer; the number must end at a
/// blank or at the end of s.
bool next_u64(std::string_view& s, uint64_t& out) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc() || (end != s.data() + s.size() && !is_space(*end))) return false;
  s.remove_prefix(static_cast<size_t>(end - s.data()));
  return true;
}

/// The value of an os-release assignment: quotes removed, shell escapes
/// (\" \\ \$ \`) resolved inside double quotes.
std::string unquote(std::string_view v) {
  v = trim(v);
  if (v.empty()) return {};
  char q = v.front();
  if (q != '"' && q != '\'') return std::string(v);
  std::string out;
  for (size_t i = 1; i < v.size(); ++i) {
    char c = v[i];
    if (c == q) break;
    if (q == '"' && c == '\\' && i + 1 < v.size()) {
      char n = v[i + 1];
      if (n == '"' || n == '\\' || n == '$' || n == '`') {
        out += n;
        ++i;
        continue;
      }
    }
    out += c;
  }
  return out;
}

/// "%g" of a threshold: 90 → "90", 92.5 → "92.5".
std::string fmt_threshold(double t) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", t);
  return buf;
}

void add_message(model::health_report& h, std::string msg) {
  for (const auto& m : h.error_messages)
    if (m == msg) return;
  h.error_messages.push_back(std::move(msg));
}

void check(model::health_report& h, double value, double threshold, const char* what,
           const char* unit, const std::string& suffix) {
  if (!model::present(value) || !model::present(threshold) || !(value > threshold)) return;
  char num[32];
  std::snprintf(num, sizeof num, "%.1f", value);
  std::string msg = what;
  msg += ' ';
  msg += num;
  msg += unit;
  msg += suffix;
  msg += " above ";
  msg += fmt_threshold(threshold);
  msg += unit;
  add_message(h, std::move(msg));
}

}  // namespace

bool parse_proc_stat(std::string_view text, cpu_times& out) {
  while (!text.empty()) {
    std::string_view line = next_line(text);
    if (!starts_with(line, "cpu ")) continue;
    line.remove_prefix(4);
    // user nice system idle iowait irq softirq steal guest guest_nice
    uint64_t f[10] = {};
    int n = 0;
    while (n < 10) {
      std::string_view rest = trim(line);
      if (rest.empty()) break;
      if (!next_u64(line, f[n])) return false;
      ++n;
    }
    if (n < 4) return false;  // user nice system idle at the least
    // guest and guest_nice are already counted in user and nice.
    out.busy = f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
    out.total = out.busy + f[3] + f[4];
    return true;
  }
  return false;
}

double cpu_percent(const cpu_times& before, const cpu_times& after) {
  if (after.total <= before.total) return model::absent;  // no time passed, or counters reset
  double dtotal = static_cast<double>(after.total - before.total);
  double dbusy = after.busy > before.busy ? static_cast<double>(after.busy - before.busy) : 0.0;
  double pct = 100.0 * dbusy / dtotal;
  if (pct < 0) pct = 0;
  if (pct > 100) pct = 100;
  return pct;
}

bool parse_meminfo(std::string_view text, double& used_percent, uint64_t& total_bytes) {
  uint64_t total_kb = 0, avail_kb = 0;
  bool have_total = false, have_avail = false;
  while (!text.empty() && !(have_total && have_avail)) {
    std::string_view line = next_line(text);
    uint64_t* dst = nullptr;
    bool* flag = nullptr;
    if (starts_with(line, "MemTotal:")) {
      dst = &total_kb;
      flag = &have_total;
      line.remove_prefix(9);
    } else if (starts_with(line, "MemAvailable:")) {
      dst = &avail_kb;
      flag = &have_avail;
      line.remove_prefix(13);
    } else {
      continue;
    }
    if (!next_u64(line, *dst)) return false;
    *flag = true;
  }
  if (!have_total || !have_avail || total_kb == 0) return false;
  if (avail_kb > total_kb) avail_kb = total_kb;
  used_percent = 100.0 * static_cast<double>(total_kb - avail_kb) / static_cast<double>(total_kb);
  total_bytes = total_kb * 1024;
  return true;
}

bool parse_uptime(std::string_view text, double& seconds) {
  text = trim(text);
  if (text.empty()) return false;
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || (end != text.data() + text.size() && !is_space(*end))) return false;
  if (!std::isfinite(v) || v < 0) return false;
  seconds = v;
  return true;
}

bool parse_millidegrees(std::string_view text, double& celsius) {
  text = trim(text);
  if (text.empty()) return false;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return false;
  celsius = static_cast<double>(v) / 1000.0;
  return true;
}

std::string parse_os_release(std::string_view text) {
  std::string pretty, name;
  while (!text.empty()) {
    std::string_view line = trim(next_line(text));
    if (line.empty() || line.front() == '#') continue;
    auto eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = trim(line.substr(0, eq));
    if (key == "PRETTY_NAME")
      pretty = unquote(line.substr(eq + 1));
    else if (key == "NAME")
      name = unquote(line.substr(eq + 1));
  }
  if (!pretty.empty()) return pretty;
  if (!name.empty()) return name;
  return "Linux";
}

void apply_thresholds(model::health_report& h, const sampler_config& cfg) {
  for (const auto& [service, running] : h.services_status)
    if (!running) add_message(h, "Service " + service + " is not running");
  static const std::string none;
  check(h, h.cpu_percent, cfg.cpu_threshold, "CPU usage", "%", none);
  check(h, h.memory_percent, cfg.memory_threshold, "Memory usage", "%", none);
  check(h, h.disk_percent, cfg.disk_threshold, "Disk usage", "%", " of " + cfg.disk_path);
  check(h, h.temperature, cfg.temperature_threshold, "Temperature", " C", none);
  h.overall_healthy = h.error_messages.empty();
}

}  // namespace coapfleet::agent
