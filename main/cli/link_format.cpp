#include "main/cli/link_format.hpp"

namespace coapfleet::cli {

std::string link::get(const std::string& name) const {
  std::string out;
  for (auto& [k, v] : attributes)
    if (k == name)
      out += (out.empty() ? "" : " ") + v;
  return out;
}

bool link::has(const std::string& name) const {
  for (auto& a : attributes)
    if (a.first == name)
      return true;
  return false;
}

std::vector<link> parse_link_format(const std::string& text) {
  std::vector<link> out;
  size_t i = 0, n = text.size();
  auto skip_space = [&] {
    while (i < n && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
      ++i;
  };
  while (i < n) {
    skip_space();
    if (i >= n || text[i] != '<') {
      // Not a link: skip to the next top-level comma.
      while (i < n && text[i] != ',')
        ++i;
      ++i;
      continue;
    }
    auto close = text.find('>', i);
    if (close == std::string::npos)
      break;
    link l;
    l.target = text.substr(i + 1, close - i - 1);
    i = close + 1;
    while (i < n && text[i] == ';') {
      ++i;
      size_t start = i;
      while (i < n && text[i] != '=' && text[i] != ';' && text[i] != ',')
        ++i;
      std::string name = text.substr(start, i - start);
      std::string value;
      if (i < n && text[i] == '=') {
        ++i;
        if (i < n && text[i] == '"') {
          ++i;
          while (i < n && text[i] != '"') {
            if (text[i] == '\\' && i + 1 < n)
              ++i;
            value += text[i++];
          }
          ++i;  // the closing quote
        } else {
          size_t vs = i;
          while (i < n && text[i] != ';' && text[i] != ',')
            ++i;
          value = text.substr(vs, i - vs);
        }
      }
      if (!name.empty())
        l.attributes.emplace_back(std::move(name), std::move(value));
    }
    out.push_back(std::move(l));
    skip_space();
    if (i < n && text[i] == ',')
      ++i;
  }
  return out;
}

}  // namespace coapfleet::cli
