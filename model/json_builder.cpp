// json_builder over RapidJSON's compact Writer (the same writer as the
// encoders, so strings are escaped the same way everywhere).
#include "model/json_builder.hpp"

#include <cmath>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace coapfleet::model {

struct json_builder::impl {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer{buffer};
};

namespace {

// The writer asserts on a null pointer, which an empty string_view may hold.
const char* chars(std::string_view s) {
  return s.data() != nullptr ? s.data() : "";
}

rapidjson::SizeType length(std::string_view s) {
  return static_cast<rapidjson::SizeType>(s.size());
}

}  // namespace

json_builder::json_builder() : impl_(std::make_unique<impl>()) {}
json_builder::~json_builder() = default;
json_builder::json_builder(json_builder&&) noexcept = default;
json_builder& json_builder::operator=(json_builder&&) noexcept = default;

json_builder& json_builder::begin_object() {
  impl_->writer.StartObject();
  return *this;
}

json_builder& json_builder::end_object() {
  impl_->writer.EndObject();
  return *this;
}

json_builder& json_builder::begin_array() {
  impl_->writer.StartArray();
  return *this;
}

json_builder& json_builder::end_array() {
  impl_->writer.EndArray();
  return *this;
}

json_builder& json_builder::key(std::string_view name) {
  impl_->writer.Key(chars(name), length(name));
  return *this;
}

json_builder& json_builder::string(std::string_view s) {
  impl_->writer.String(chars(s), length(s));
  return *this;
}

json_builder& json_builder::integer(long long n) {
  impl_->writer.Int64(n);
  return *this;
}

json_builder& json_builder::number(double x) {
  if (std::isfinite(x))
    impl_->writer.Double(x);
  else
    impl_->writer.Null();
  return *this;
}

json_builder& json_builder::boolean(bool b) {
  impl_->writer.Bool(b);
  return *this;
}

json_builder& json_builder::null() {
  impl_->writer.Null();
  return *this;
}

json_builder& json_builder::strings(const std::vector<std::string>& items) {
  impl_->writer.StartArray();
  for (auto& s : items)
    string(s);
  impl_->writer.EndArray();
  return *this;
}

json_builder& json_builder::member(std::string_view name, std::string_view s) {
  return key(name).string(s);
}

json_builder& json_builder::member(std::string_view name, const char* s) {
  return key(name).string(s);
}

json_builder& json_builder::member(std::string_view name, long long n) {
  return key(name).integer(n);
}

json_builder& json_builder::member(std::string_view name, bool b) {
  return key(name).boolean(b);
}

json_builder& json_builder::member(std::string_view name, const std::vector<std::string>& items) {
  return key(name).strings(items);
}

bool json_builder::complete() const {
  return impl_->writer.IsComplete();
}

std::string json_builder::text() const {
  return {impl_->buffer.GetString(), impl_->buffer.GetSize()};
}

}  // namespace coapfleet::model
