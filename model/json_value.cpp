// json_document and json_value over a RapidJSON DOM. A view's opaque node is
// a `const rapidjson::Value*` into the document's heap-allocated DOM, which
// is why moving a document keeps its views valid.
#include "model/json_value.hpp"

#include "model/json_read.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace coapfleet::model {

namespace {

const rapidjson::Value* node_of(const void* node) {
  return static_cast<const rapidjson::Value*>(node);
}

}  // namespace

// -- json_value ----------------------------------------------------------------------

json_kind json_value::kind() const {
  auto* v = node_of(node_);
  if (v == nullptr)
    return json_kind::absent;
  switch (v->GetType()) {
    case rapidjson::kNullType: return json_kind::null;
    case rapidjson::kFalseType:
    case rapidjson::kTrueType: return json_kind::boolean;
    case rapidjson::kNumberType: return json_kind::number;
    case rapidjson::kStringType: return json_kind::string;
    case rapidjson::kArrayType: return json_kind::array;
    case rapidjson::kObjectType: return json_kind::object;
  }
  return json_kind::absent;
}

json_value json_value::operator[](std::string_view key) const {
  auto* v = node_of(node_);
  if (v == nullptr || !v->IsObject())
    return {};
  // A name that is not NUL-terminated and may hold NULs: compare by length.
  rapidjson::Value name(
    rapidjson::StringRef(key.data(), static_cast<rapidjson::SizeType>(key.size())));
  auto it = v->FindMember(name);
  return it == v->MemberEnd() ? json_value{} : json_value{&it->value};
}

json_value json_value::at(std::size_t i) const {
  auto* v = node_of(node_);
  if (v == nullptr || !v->IsArray() || i >= v->Size())
    return {};
  return json_value{&(*v)[static_cast<rapidjson::SizeType>(i)]};
}

std::size_t json_value::size() const {
  auto* v = node_of(node_);
  if (v == nullptr)
    return 0;
  if (v->IsArray())
    return v->Size();
  if (v->IsObject())
    return v->MemberCount();
  return 0;
}

json_value::range<json_value> json_value::elements() const {
  return {*this, is_array() ? size() : 0};
}

json_value::range<json_member> json_value::members() const {
  return {*this, is_object() ? size() : 0};
}

json_member json_value::member_at(std::size_t i) const {
  auto* v = node_of(node_);
  if (v == nullptr || !v->IsObject() || i >= v->MemberCount())
    return {};
  auto& m = *(v->MemberBegin() + static_cast<std::ptrdiff_t>(i));
  return {std::string_view(m.name.GetString(), m.name.GetStringLength()), json_value{&m.value}};
}

std::string json_value::as_string(std::string_view fallback) const {
  auto* v = node_of(node_);
  if (v == nullptr || !v->IsString())
    return std::string(fallback);
  return {v->GetString(), v->GetStringLength()};
}

double json_value::as_number(double fallback) const {
  auto* v = node_of(node_);
  return v != nullptr && v->IsNumber() ? v->GetDouble() : fallback;
}

long long json_value::as_int(long long fallback) const {
  auto* v = node_of(node_);
  if (v == nullptr || !v->IsNumber())
    return fallback;
  if (v->IsInt64())
    return v->GetInt64();  // exact beyond 2^53, where a double is not
  double x = v->GetDouble();
  // Outside long long's range (or NaN) a cast is undefined behaviour.
  if (!(x >= -9223372036854775808.0 && x < 9223372036854775808.0))
    return fallback;
  return static_cast<long long>(x);
}

bool json_value::as_bool(bool fallback) const {
  auto* v = node_of(node_);
  return v != nullptr && v->IsBool() ? v->GetBool() : fallback;
}

std::vector<std::string> json_value::as_strings() const {
  std::vector<std::string> out;
  auto* v = node_of(node_);
  if (v == nullptr || !v->IsArray())
    return out;
  for (auto& e : v->GetArray())
    if (e.IsString())
      out.emplace_back(e.GetString(), e.GetStringLength());
  return out;
}

std::string json_value::to_json() const {
  auto* v = node_of(node_);
  if (v == nullptr)
    return {};
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  v->Accept(writer);
  return {buffer.GetString(), buffer.GetSize()};
}

// -- json_document -------------------------------------------------------------------

struct json_document::impl {
  rapidjson::Document dom;
  std::string error;
  std::size_t error_offset = 0;
};

json_document::json_document() : impl_(std::make_unique<impl>()) {
  impl_->error = "empty document";
}

json_document::~json_document() = default;
json_document::json_document(json_document&&) noexcept = default;
json_document& json_document::operator=(json_document&&) noexcept = default;

json_document json_document::parse(std::string_view text) {
  json_document d;
  auto& i = *d.impl_;
  // What RapidJSON would misread (a NUL taken for the end of the text) or
  // cannot take (nesting that recurses past the stack) is refused first.
  if (auto why = json_read::refused_before_parsing(text); !why.empty()) {
    i.error_offset = 0;
    i.error = std::move(why);
    return d;
  }
  // Default flags, no UTF-8 check: text shown again reads as it was sent.
  i.dom.Parse(text.data(), text.size());
  if (i.dom.HasParseError()) {
    i.error_offset = i.dom.GetErrorOffset();
    i.error = std::string("invalid JSON: ") + rapidjson::GetParseError_En(i.dom.GetParseError())
              + " at offset " + std::to_string(i.error_offset);
  } else if (json_read::has_non_finite(i.dom)) {
    i.error_offset = 0;
    i.error = "invalid JSON: a number beyond the range of a double";
  } else {
    i.error.clear();
  }
  return d;
}

bool json_document::ok() const {
  return impl_ && impl_->error.empty();
}

const std::string& json_document::error() const {
  static const std::string moved_from = "empty document";
  return impl_ ? impl_->error : moved_from;
}

std::size_t json_document::error_offset() const {
  return impl_ ? impl_->error_offset : 0;
}

json_value json_document::root() const {
  const rapidjson::Value* root = &impl_->dom;  // the Value base, not the Document
  return ok() ? json_value{root} : json_value{};
}

}  // namespace coapfleet::model
