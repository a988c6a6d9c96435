// Writing JSON text front to back, for bodies whose shape the caller decides
// (the CLI's requests and its --json output of non-JSON answers). The wire
// API's own shapes have typed encoders in model/json.hpp. The writer stays
// inside model/*.cpp.
//
//   auto body = json_builder()
//                 .begin_object()
//                 .member("action", "install")
//                 .member("job_id", job)
//                 .end_object()
//                 .text();  // {"action":"install","job_id":"..."}
//
// Inside an object every value follows its key() (member() is both); each
// begin_* needs its end_*. Breaking that order is a programming error.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace coapfleet::model {

class json_builder {
public:
  json_builder();
  ~json_builder();
  json_builder(json_builder&&) noexcept;
  json_builder& operator=(json_builder&&) noexcept;

  json_builder& begin_object();
  json_builder& end_object();
  json_builder& begin_array();
  json_builder& end_array();

  /// The name of the next member of the current object.
  json_builder& key(std::string_view name);

  json_builder& string(std::string_view s);
  json_builder& integer(long long n);
  /// A finite number; NaN and infinities are written as null.
  json_builder& number(double x);
  json_builder& boolean(bool b);
  json_builder& null();
  /// An array of strings.
  json_builder& strings(const std::vector<std::string>& items);

  /// key(name) followed by the value. There is one overload per kind, so an
  /// argument of another type (an int, say) must say which it means.
  json_builder& member(std::string_view name, std::string_view s);
  json_builder& member(std::string_view name, const char* s);
  json_builder& member(std::string_view name, long long n);
  json_builder& member(std::string_view name, bool b);
  json_builder& member(std::string_view name, const std::vector<std::string>& items);

  /// True once the top-level value is closed.
  bool complete() const;
  /// The compact text written so far (the whole value once complete()).
  std::string text() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace coapfleet::model
