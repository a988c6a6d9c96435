#include "main/cli/output.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

namespace coapfleet::cli {

terminal terminal::detect() {
  terminal t;
  t.tty = ::isatty(STDOUT_FILENO) == 1;
  const char* no_colour = std::getenv("NO_COLOR");
  t.colours = t.tty && (no_colour == nullptr || *no_colour == '\0');
  return t;
}

int terminal::width() const {
  winsize ws{};
  if (tty && ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    return ws.ws_col;
  if (const char* cols = std::getenv("COLUMNS"))
    if (int n = std::atoi(cols); n > 0)
      return n;
  return 80;
}

std::string terminal::paint(colour c, const std::string& text) const {
  if (!colours || c == colour::none || text.empty())
    return text;
  const char* code = "";
  switch (c) {
    case colour::red: code = "\033[31m"; break;
    case colour::green: code = "\033[32m"; break;
    case colour::yellow: code = "\033[33m"; break;
    case colour::blue: code = "\033[34m"; break;
    case colour::dim: code = "\033[2m"; break;
    case colour::bold: code = "\033[1m"; break;
    case colour::none: break;
  }
  return code + text + "\033[0m";
}

colour colour_of(const std::string& state) {
  if (state == "online" || state == "healthy" || state == "succeeded" || state == "completed"
      || state == "running" || state == "connected")
    return colour::green;
  if (state == "stale" || state == "degraded" || state == "partially_failed"
      || state == "timed_out" || state == "skipped" || state == "cancelled")
    return colour::yellow;
  if (state == "offline" || state == "unhealthy" || state == "failed" || state == "rolled_back"
      || state.rfind("unhealthy", 0) == 0)
    return colour::red;
  if (state == "downloading" || state == "installing" || state == "in_progress"
      || state == "notified" || state == "downloaded")
    return colour::blue;
  return colour::none;
}

size_t display_width(const std::string& text) {
  size_t n = 0;
  for (unsigned char c : text)
    if ((c & 0xC0) != 0x80)
      ++n;
  return n;
}

table::table(std::vector<std::string> headers) : headers_(std::move(headers)) {}

void table::add(std::vector<std::string> cells, std::vector<colour> colours) {
  cells.resize(headers_.size());
  colours.resize(headers_.size(), colour::none);
  rows_.push_back(row{std::move(cells), std::move(colours)});
}

void table::print(const terminal& term, std::FILE* out) const {
  std::vector<size_t> widths;
  for (auto& h : headers_)
    widths.push_back(display_width(h));
  for (auto& r : rows_)
    for (size_t i = 0; i < r.cells.size(); ++i)
      widths[i] = std::max(widths[i], display_width(r.cells[i]));
  auto line = [&](const std::vector<std::string>& cells, const std::vector<colour>& colours,
                  bool header) {
    std::string text;
    for (size_t i = 0; i < cells.size(); ++i) {
      bool last = i + 1 == cells.size();
      auto cell = header ? term.paint(colour::bold, cells[i]) : term.paint(colours[i], cells[i]);
      text += cell;
      if (!last)
        text += std::string(widths[i] - display_width(cells[i]) + 2, ' ');
    }
    while (!text.empty() && text.back() == ' ')
      text.pop_back();
    text += '\n';
    std::fputs(text.c_str(), out);
  };
  line(headers_, {}, true);
  for (auto& r : rows_)
    line(r.cells, r.colours, false);
}

std::string bar(double fraction, int width) {
  fraction = std::clamp(fraction, 0.0, 1.0);
  int filled = static_cast<int>(fraction * width + 0.5);
  return "[" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

}  // namespace coapfleet::cli
