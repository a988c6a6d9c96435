// JSON of the audit log (GET /audit): the query and the pages.
#include <charconv>
#include <string>

#include "model/audit.hpp"
#include "model/queries.hpp"
#include "model/json_write.hpp"

namespace coapfleet::model {

std::string code_text(uint16_t code) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%u.%02u", static_cast<unsigned>(code / 100),
                static_cast<unsigned>(code % 100));
  return buf;
}

namespace {

bool parse_number(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 19)
    return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}

}  // namespace

problem decode_seq_page(std::string_view query, uint32_t max_limit, uint64_t& before,
                        uint32_t& limit) {
  problem err;
  for_each_query_part(query, [&](std::string_view key, std::string_view value, bool) {
    uint64_t n = 0;
    if (key == "limit") {
      if (!parse_number(value, n) || n < 1 || n > max_limit) {
        err = {"query limit must be a number from 1 to " + std::to_string(max_limit), "limit"};
        return false;
      }
      limit = static_cast<uint32_t>(n);
    } else if (key == "before") {
      if (!parse_number(value, n) || n < 1) {
        err = {"query before must be a sequence number (1 or more), as the previous "
               "page's next",
               "before"};
        return false;
      }
      before = n;
    } else {
      err = {"unknown query parameter " + std::string{key} + " (expected limit, before)",
             std::string{key}};
      return false;
    }
    return true;
  });
  return err;
}

decoded<audit_query> decode_audit_query(std::string_view query) {
  decoded<audit_query> d;
  d.value.limit = audit_default_limit;
  d.err = decode_seq_page(query, audit_max_limit, d.value.before, d.value.limit);
  return d;
}

std::string encode_seq_page(std::string_view list, const std::vector<std::string_view>& encoded,
                            uint64_t next, std::string_view head) {
  size_t size = 32 + head.size();
  for (auto& e : encoded)
    size += e.size() + 1;
  std::string out;
  out.reserve(size);
  out += '{';
  out += head;
  out += '"';
  out += list;
  out += "\":[";
  for (size_t i = 0; i < encoded.size(); ++i) {
    if (i > 0)
      out += ',';
    out += encoded[i];
  }
  out += "],\"next\":";
  out += next == 0 ? std::string{"null"} : std::to_string(next);
  out += '}';
  return out;
}

using namespace json_write;

std::string encode_audit_record(const audit_record& r) {
  return write([&](writer& w) {
    w.StartObject();
    member(w, "seq", uint64_t{r.seq});
    member(w, "at", at{r.at});
    key(w, "at_ms");
    w.Int64(r.at);
    string_or_null(w, "identity", r.identity);
    member(w, "role", to_string(r.r));
    member(w, "secure", r.secure);
    member(w, "address", r.address);
    member(w, "port", uint32_t{r.port});
    member(w, "action", r.action);
    string_or_null(w, "target", r.target);
    member(w, "outcome", r.outcome);
    string_or_null(w, "detail", r.detail);
    w.EndObject();
  });
}

std::string encode_audit_page(const std::vector<std::string_view>& encoded, uint64_t next) {
  return encode_seq_page("records", encoded, next, {});
}

std::string encode_audit_page(const audit_page& page) {
  std::vector<std::string> texts;
  texts.reserve(page.records.size());
  for (auto& r : page.records)
    texts.push_back(encode_audit_record(r));
  std::vector<std::string_view> views(texts.begin(), texts.end());
  return encode_audit_page(views, page.next);
}

}  // namespace coapfleet::model
