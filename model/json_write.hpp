// The RapidJSON writer helpers of the encoders (json_encode*.cpp): one
// put() per C++ type, members, and write() that returns the text.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "model/json.hpp"

namespace coapfleet::model::json_write {

using buffer = rapidjson::StringBuffer;
using writer = rapidjson::Writer<buffer>;

/// Writes "YYYY-MM-DDTHH:MM:SSZ" into `out` (32 bytes), returns its length.
inline size_t format_time_into(millis t, char* out) {
  // Rounded towards minus infinity: -1 ms is still the previous second.
  auto secs = static_cast<time_t>(t >= 0 ? t / 1000 : -((-(t + 1)) / 1000) - 1);
  std::tm tm{};
  size_t n = gmtime_r(&secs, &tm) ? std::strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) : 0;
  if (n == 0) {
    std::strcpy(out, "1970-01-01T00:00:00Z");
    n = 20;
  }
  return n;
}

/// A point in time, written as format_time() text.
struct at {
  millis t;
};

// -- put: one JSON value per C++ type (no int64 overload: times go through `at`)

inline void put(writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}
inline void put(writer& w, const char* s) { put(w, std::string_view{s}); }
inline void put(writer& w, const std::string& s) { put(w, std::string_view{s}); }
inline void put(writer& w, bool b) { w.Bool(b); }
inline void put(writer& w, int32_t i) { w.Int(i); }
inline void put(writer& w, uint32_t u) { w.Uint(u); }
inline void put(writer& w, uint64_t u) { w.Uint64(u); }

/// Numbers that are absent (NaN) or infinite are written as null.
inline void put(writer& w, double x) {
  if (std::isfinite(x))
    w.Double(x);
  else
    w.Null();
}

inline void put(writer& w, at t) {
  char buf[32];
  auto n = format_time_into(t.t, buf);
  w.String(buf, static_cast<rapidjson::SizeType>(n));
}

inline void put(writer& w, const std::vector<std::string>& v) {
  w.StartArray();
  for (auto& s : v)
    put(w, s);
  w.EndArray();
}

inline void put(writer& w, const attributes& a) {
  w.StartObject();
  for (auto& [name, x] : a) {
    put(w, name);
    switch (x.kind) {
      case scalar::bool_v: w.Bool(x.flag); break;
      case scalar::number_v: put(w, x.number); break;
      case scalar::string_v: put(w, x.text); break;
      default: w.Null(); break;
    }
  }
  w.EndObject();
}

inline void put(writer& w, const string_map& m) {
  w.StartObject();
  for (auto& [name, value] : m) {
    put(w, name);
    put(w, value);
  }
  w.EndObject();
}

inline void key(writer& w, const char* k) {
  w.Key(k, static_cast<rapidjson::SizeType>(std::strlen(k)));
}

template <class V>
void member(writer& w, const char* k, const V& v) {
  key(w, k);
  put(w, v);
}

/// `"k": "s"`, or `"k": null` when s is empty.
inline void string_or_null(writer& w, const char* k, std::string_view s) {
  key(w, k);
  if (s.empty())
    w.Null();
  else
    put(w, s);
}

/// `"k": "s"` when s is not empty, else nothing.
inline void optional_member(writer& w, const char* k, std::string_view s) {
  if (!s.empty())
    member(w, k, s);
}

/// Runs `f(writer&)` and returns the text it wrote.
template <class F>
std::string write(F&& f, size_t reserve = 256) {
  buffer b{nullptr, reserve};
  writer w{b};
  f(w);
  return {b.GetString(), b.GetSize()};
}

}  // namespace coapfleet::model::json_write
