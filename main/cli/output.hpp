// How the CLI draws for people: tables, colours and progress bars — colours
// and bars only when standard output is a terminal and NO_COLOR is unset,
// plain lines when piped.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace coapfleet::cli {

enum class colour { none, red, green, yellow, blue, dim, bold };

struct terminal {
  bool tty = false;     ///< standard output is a terminal
  bool colours = false; ///< tty and NO_COLOR unset: colours and live bars

  /// Looks at standard output and the environment.
  static terminal detect();
  /// Columns of the terminal (80 when unknown).
  int width() const;
  /// `text` in `c` when colours are on.
  std::string paint(colour c, const std::string& text) const;
};

/// The colour that a state word is shown in (online, failed, healthy, ...).
colour colour_of(const std::string& state);

/// A table printed with aligned columns; cells may carry a colour.
class table {
public:
  explicit table(std::vector<std::string> headers);
  void add(std::vector<std::string> cells, std::vector<colour> colours = {});
  void print(const terminal& term, std::FILE* out = stdout) const;
  bool empty() const { return rows_.empty(); }

private:
  struct row {
    std::vector<std::string> cells;
    std::vector<colour> colours;
  };
  std::vector<std::string> headers_;
  std::vector<row> rows_;
};

/// "[#########.........]" of `width` cells inside the brackets.
std::string bar(double fraction, int width);

/// "1.5 MiB" and the like.
std::string human_bytes(double bytes);

/// Display width of UTF-8 text (code points).
size_t display_width(const std::string& text);

}  // namespace coapfleet::cli
