// The RapidJSON reading helpers of the decoders (json_decode*.cpp): parsing
// with errors that name the field at fault, and a reader of typed members.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <algorithm>
#include <string_view>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include "model/json.hpp"

namespace coapfleet::model::json_read {

using rapidjson::Document;
using rapidjson::Value;

constexpr const char* empty_body_error =
  "empty body: this request needs a JSON object; send one with coap-client -f - "
  "(echo '{...}' | coap-client -m post -f - URL) or -e '{...}'";

constexpr const char* node_id_rule = "1..64 characters of A-Z a-z 0-9 . _ -";

inline bool blank(std::string_view body) {
  for (char c : body)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
      return false;
  return true;
}

/// Arrays and objects nested deeper than this are refused before parsing:
/// RapidJSON's reader (and Accept) recurse once per level, and 64 KB of '['
/// overflow an 8 MB thread stack in a sanitizer or debug build (and 200 KB
/// in any build). The API's deepest body, a journaled job, nests 4 levels.
constexpr size_t max_nesting = 64;

/// What makes `text` unfit for RapidJSON before it is parsed ("" when
/// nothing), in one pass over it:
///  - a NUL byte, which RapidJSON takes for the end of the text (whatever
///    follows was ignored; JSON has no raw NUL, in a string it is \u0000);
///  - arrays and objects nested deeper than max_nesting;
///  - a low surrogate escape (\uDC00..\uDFFF) without a high one before it:
///    RapidJSON 1.1.0 writes it into the string as a 3-byte sequence that
///    is not UTF-8, so the value, encoded again, no longer decoded (a node
///    job journaled by the agent was dropped on its next start).
inline std::string refused_before_parsing(std::string_view text, size_t limit = max_nesting) {
  auto hex4 = [&](size_t at) {  // the code unit of \uXXXX at `at`, or -1
    if (at + 4 > text.size())
      return -1L;
    long u = 0;
    for (size_t k = at; k < at + 4; ++k) {
      char c = text[k];
      int digit = c >= '0' && c <= '9'   ? c - '0'
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                         : -1;
      if (digit < 0)
        return -1L;
      u = u << 4 | digit;
    }
    return u;
  };
  size_t depth = 0;
  bool in_string = false, after_high = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\0')
      return "invalid JSON: a NUL byte at offset " + std::to_string(i);
    if (in_string) {
      bool high = false;
      if (c == '\\' && i + 1 < text.size()) {
        long u = text[i + 1] == 'u' ? hex4(i + 2) : -1;
        if (u >= 0xDC00 && u <= 0xDFFF && !after_high)
          return "invalid JSON: a lone UTF-16 surrogate (\\u" + std::string(text.substr(i + 2, 4))
                 + ") at offset " + std::to_string(i);
        high = u >= 0xD800 && u <= 0xDBFF;
        i += u >= 0 ? 5 : 1;
      } else if (c == '"') {
        in_string = false;
      }
      after_high = high;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit)
        return "invalid JSON: arrays and objects nested deeper than " + std::to_string(limit)
               + " levels";
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return {};
}

/// A number in `root` that is not finite: RapidJSON 1.1.0 reads a 19-digit
/// mantissa with an exponent below its limit (6711593562935671157e303) as
/// infinity, which no encoder can write back as JSON.
bool has_non_finite(const Value& root);
/// Whether a string or member name in it holds a NUL character.
bool has_nul(const Value& root);

/// The first member name repeated within one object of `root`, at any depth:
/// {"duplicate key: services_status.web", "web"}; empty when there is none.
problem repeated_name(const Value& root);

/// Parses `body` into `doc`; false with `err` set when it is empty, not JSON,
/// or (from a peer) repeats a member name within an object: RapidJSON keeps
/// both, and a reader would silently take the first.
inline bool parse(std::string_view body, Document& doc, problem& err,
                  json_source from = json_source::peer) {
  if (blank(body)) {
    err = {empty_body_error, {}};
    return false;
  }
  if (auto why = refused_before_parsing(body); !why.empty()) {
    err = {std::move(why), {}};
    return false;
  }
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(body.data(), body.size());
  if (doc.HasParseError()) {
    err = {std::string{"invalid JSON: "} + rapidjson::GetParseError_En(doc.GetParseError())
             + " at offset " + std::to_string(doc.GetErrorOffset()),
           {}};
    return false;
  }
  if (has_non_finite(doc)) {
    err = {"invalid JSON: a number beyond the range of a double", {}};
    return false;
  }
  // No store keeps it alike (PostgreSQL cannot keep it at all), and no
  // name, id or message needs it.
  if (has_nul(doc)) {
    err = {"text may not contain the NUL character (\\u0000)", {}};
    return false;
  }
  if (from == json_source::peer) {
    err = repeated_name(doc);
    return err.empty();
  }
  return true;
}

inline bool parse_object(std::string_view body, Document& doc, problem& err,
                         json_source from = json_source::peer) {
  if (!parse(body, doc, err, from))
    return false;
  if (!doc.IsObject()) {
    err = {"request body must be a JSON object", {}};
    return false;
  }
  return true;
}

inline std::string str(const Value& v) {
  return {v.GetString(), v.GetStringLength()};
}

inline std::string num_text(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

inline bool is_integer(const Value& v) {
  if (v.IsInt64() || v.IsUint64())
    return true;
  if (!v.IsNumber())
    return false;
  double d = v.GetDouble();
  return std::isfinite(d) && std::floor(d) == d;
}

inline bool read_strings(const Value& v, std::vector<std::string>& out) {
  if (!v.IsArray())
    return false;
  std::vector<std::string> result;
  result.reserve(v.Size());
  for (auto& e : v.GetArray()) {
    if (!e.IsString())
      return false;
    result.push_back(str(e));
  }
  out = std::move(result);
  return true;
}

inline bool read_attributes(const Value& v, attributes& out) {
  if (!v.IsObject())
    return false;
  attributes result;
  result.reserve(v.MemberCount());
  for (auto& m : v.GetObject()) {
    scalar x;
    if (m.value.IsString())
      x = scalar::of(str(m.value));
    else if (m.value.IsBool())
      x = scalar::of_bool(m.value.GetBool());
    else if (m.value.IsNumber())
      x = scalar::of(m.value.GetDouble());
    else if (!m.value.IsNull())
      return false;
    result.emplace_back(str(m.name), std::move(x));
  }
  out = std::move(result);
  return true;
}

/// Reads the members of one JSON object, keeping the first problem found.
/// Optional members that are absent or null leave their output untouched.
class reader {
public:
  explicit reader(const Value& obj) : obj_(obj) {}

  problem err;
  bool ok() const { return err.empty(); }

  bool has(const char* name) const { return find(name) != nullptr; }

  void fail(std::string error, const char* field) {
    if (err.empty())
      err = {std::move(error), field};
  }

  void required_string(const char* name, std::string& out) {
    if (!ok())
      return;
    auto v = find(name);
    if (v == nullptr)
      return fail(std::string{"missing field: "} + name, name);
    if (!v->IsString())
      return fail(std::string{"field "} + name + " must be a string", name);
    out = str(*v);
  }

  void required_nonempty(const char* name, std::string& out) {
    required_string(name, out);
    if (ok() && out.empty())
      fail(std::string{"field "} + name + " must not be empty", name);
  }

  void required_node_id(std::string& out) {
    required_string("node_id", out);
    if (ok() && !valid_node_id(out))
      fail(std::string{"field node_id must be "} + node_id_rule, "node_id");
  }

  void optional_string(const char* name, std::string& out) {
    if (auto v = present(name); v && !v->IsString())
      fail(std::string{"field "} + name + " must be a string", name);
    else if (v)
      out = str(*v);
  }

  void optional_bool(const char* name, bool& out) {
    if (auto v = present(name); v && !v->IsBool())
      fail(std::string{"field "} + name + " must be a boolean (true or false)", name);
    else if (v)
      out = v->GetBool();
  }

  /// A number in [lo, hi], or null (which leaves `out` absent).
  void optional_number(const char* name, double& out, double lo, double hi) {
    auto v = present(name);
    if (!v)
      return;
    if (!v->IsNumber())
      return fail(std::string{"field "} + name + " must be a number or null", name);
    double d = v->GetDouble();
    if (d < lo || d > hi) {
      auto range = std::isinf(hi) ? " must be >= " + num_text(lo)
                                  : " must be between " + num_text(lo) + " and " + num_text(hi);
      return fail(std::string{"field "} + name + range, name);
    }
    out = d;
  }

  template <class Int>
  void optional_int(const char* name, Int& out, int64_t lo, int64_t hi) {
    auto v = present(name);
    if (!v)
      return;
    if (!is_integer(*v) || v->GetDouble() < static_cast<double>(lo)
        || v->GetDouble() > static_cast<double>(hi))
      return fail(std::string{"field "} + name + " must be an integer between "
                    + std::to_string(lo) + " and " + std::to_string(hi),
                  name);
    out = static_cast<Int>(v->GetDouble());
  }

  /// An array of integers, each in [lo, hi], at most `max_size` of them.
  void optional_ints(const char* name, std::vector<int32_t>& out, int64_t lo, int64_t hi,
                     size_t max_size) {
    auto v = present(name);
    if (!v)
      return;
    auto bad = [&] {
      fail(std::string{"field "} + name + " must be an array of at most "
             + std::to_string(max_size) + " integers between " + std::to_string(lo) + " and "
             + std::to_string(hi),
           name);
    };
    if (!v->IsArray() || v->Size() > max_size)
      return bad();
    std::vector<int32_t> got;
    for (auto& e : v->GetArray()) {
      if (!is_integer(e) || e.GetDouble() < static_cast<double>(lo)
          || e.GetDouble() > static_cast<double>(hi))
        return bad();
      got.push_back(static_cast<int32_t>(e.GetDouble()));
    }
    out = std::move(got);
  }

  void optional_strings(const char* name, std::vector<std::string>& out) {
    if (auto v = present(name); v && !read_strings(*v, out))
      fail(std::string{"field "} + name + " must be an array of strings", name);
  }

  void optional_attributes(const char* name, attributes& out) {
    if (auto v = present(name); v && !read_attributes(*v, out))
      fail(std::string{"field "} + name
             + " must be an object of scalar values (string, number, boolean or null)",
           name);
  }

  /// An object of string values ({"site": "berlin"}), names checked by
  /// `name_ok`, values by `value_ok` (a null value reads as "" when
  /// `null_ok`: a label to remove), at most `max` entries; sorted by name.
  /// True when the member was there (not null).
  bool optional_string_map(const char* name, string_map& out, bool (*name_ok)(std::string_view),
                           const char* name_rule, bool (*value_ok)(std::string_view),
                           const char* value_rule, size_t max, bool null_ok = false) {
    auto v = present(name);
    if (v == nullptr)
      return false;
    if (!v->IsObject()) {
      fail(std::string{"field "} + name + " must be an object of strings", name);
      return true;
    }
    if (v->MemberCount() > max) {
      fail(std::string{"field "} + name + " has " + std::to_string(v->MemberCount())
             + " entries, at most " + std::to_string(max) + " are allowed",
           name);
      return true;
    }
    out.clear();
    out.reserve(v->MemberCount());
    for (auto& m : v->GetObject()) {
      std::string k(m.name.GetString(), m.name.GetStringLength());
      if (!name_ok(k)) {
        fail(std::string{"field "} + name + ": " + (k.size() > 64 ? "\"" + k.substr(0, 61) + "...\"" : "\"" + k + "\"") + " is not a valid name ("
               + name_rule + ")",
             name);
        return true;
      }
      if (m.value.IsNull() && null_ok) {
        out.emplace_back(std::move(k), std::string{});
        continue;
      }
      if (!m.value.IsString()
          || !value_ok({m.value.GetString(), m.value.GetStringLength()})) {
        fail(std::string{"field "} + name + "." + k + " must be a string of " + value_rule
               + (null_ok ? " (or null to remove it)" : ""),
             name);
        return true;
      }
      out.emplace_back(std::move(k), std::string(m.value.GetString(), m.value.GetStringLength()));
    }
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    return true;
  }

  /// A member that is there and not null, once no problem was found yet.
  const Value* present(const char* name) const {
    if (!err.empty())
      return nullptr;
    auto v = find(name);
    return v == nullptr || v->IsNull() ? nullptr : v;
  }

private:
  const Value* find(const char* name) const {
    auto it = obj_.FindMember(name);
    return it == obj_.MemberEnd() ? nullptr : &it->value;
  }

  const Value& obj_;
};

/// The members of a job spec. `core` makes name, version and package_type
/// required (requests); persistence reads them as optional.
template <class T>
decoded<T> failed(problem p) {
  decoded<T> d;
  d.err = std::move(p);
  return d;
}

}  // namespace coapfleet::model::json_read
