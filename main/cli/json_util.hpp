// Reading the server's JSON answers without ceremony, and writing request
// bodies. Missing or ill-typed members read as empty / nothing: the CLI shows
// what it can instead of failing on a field it only displays.
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <optional>
#include <string>
#include <vector>

namespace coapfleet::cli {

/// The member `key` of object `v`, or null.
const rapidjson::Value* member(const rapidjson::Value& v, const char* key);

/// A string member ("" when absent or not a string).
std::string str(const rapidjson::Value& v, const char* key);

/// A number member.
std::optional<double> num(const rapidjson::Value& v, const char* key);

/// A number member as an integer (0 when absent).
long long integer(const rapidjson::Value& v, const char* key);

/// The strings of an array member.
std::vector<std::string> strings(const rapidjson::Value& v, const char* key);

/// `v` serialized compactly.
std::string to_json(const rapidjson::Value& v);

/// Builds a JSON object body: `json_body b; b.add("name", x); b.text()`.
class json_body {
public:
  json_body();
  json_body& add(const char* key, const std::string& value);
  json_body& add(const char* key, long long value);
  json_body& add(const char* key, const std::vector<std::string>& values);
  std::string text();

private:
  rapidjson::StringBuffer buffer_;
  rapidjson::Writer<rapidjson::StringBuffer> writer_;
  bool closed_ = false;
};

/// Seconds since the epoch of an ISO 8601 UTC time ("2026-11-22T02:33:20Z",
/// fractions allowed), or nothing.
std::optional<double> parse_utc(const std::string& iso);

/// "12s ago", "3m ago", "2h ago", "4d ago"; "-" when `iso` does not parse.
std::string relative_time(const std::string& iso);

}  // namespace coapfleet::cli
