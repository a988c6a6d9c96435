// Reading any JSON text without knowing its shape: a parsed document and
// light views into it. For code outside model/ that reads JSON it did not
// define (the CLI shows the server's answers, tests look into bodies); the
// wire API's own shapes have typed decoders in model/json.hpp. The parser
// stays inside model/*.cpp.
//
//   auto doc = json_document::parse(body);
//   if (!doc.ok()) return fail(doc.error());
//   for (json_value n : doc.root()["nodes"].elements())
//     show(n["node_id"].as_string(), n["health"]["cpu_percent"].as_number(-1));
//
// Lookups never fail: a missing member, an index past the end or a member of
// something that is not an object give an absent value, and the as_* readers
// of a value of another kind give their fallback, so a reader shows what is
// there without checking every step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace coapfleet::model {

enum class json_kind : uint8_t { absent, null, boolean, number, string, array, object };

struct json_member;

/// A view of one value inside a json_document: valid while the document
/// lives (moving the document keeps it valid). Copying a view is cheap.
class json_value {
public:
  template <class Item>
  class range;

  /// An absent value.
  json_value() = default;

  json_kind kind() const;
  /// False for an absent value (a member that is not there); true for null.
  bool exists() const { return node_ != nullptr; }
  bool is_null() const { return kind() == json_kind::null; }
  bool is_bool() const { return kind() == json_kind::boolean; }
  bool is_number() const { return kind() == json_kind::number; }
  bool is_string() const { return kind() == json_kind::string; }
  bool is_array() const { return kind() == json_kind::array; }
  bool is_object() const { return kind() == json_kind::object; }

  /// The first member named `key` of an object; absent otherwise.
  json_value operator[](std::string_view key) const;
  /// Element `i` of an array; absent when out of range or not an array.
  json_value at(std::size_t i) const;
  /// Elements of an array or members of an object; 0 for anything else.
  std::size_t size() const;
  bool empty() const { return size() == 0; }

  /// An array's elements (none for anything else): for (json_value e : v.elements())
  range<json_value> elements() const;
  /// An object's members in document order (none for anything else).
  range<json_member> members() const;
  /// Member `i` of an object (an empty name and an absent value when out of range).
  json_member member_at(std::size_t i) const;

  /// The text of a string, else `fallback`.
  std::string as_string(std::string_view fallback = {}) const;
  /// A number, else `fallback`.
  double as_number(double fallback = 0) const;
  /// A number as an integer (a fraction is cut off towards zero), else `fallback`.
  long long as_int(long long fallback = 0) const;
  /// A boolean, else `fallback`.
  bool as_bool(bool fallback = false) const;
  /// The strings of an array (elements of other kinds are left out); empty
  /// for anything else.
  std::vector<std::string> as_strings() const;

  /// The value as compact JSON text (no spaces); "" for an absent value.
  std::string to_json() const;

private:
  friend class json_document;
  explicit json_value(const void* node) : node_(node) {}

  const void* node_ = nullptr;  ///< the parser's value, opaque outside json_value.cpp
};

/// One member of an object: its name and its value (views into the document).
struct json_member {
  std::string_view name;
  json_value value;
};

/// A sequence of elements or members, read by position.
template <class Item>
class json_value::range {
public:
  class iterator {
  public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = Item;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = Item;

    iterator(json_value owner, std::size_t i) : owner_(owner), i_(i) {}
    Item operator*() const {
      if constexpr (std::is_same_v<Item, json_member>)
        return owner_.member_at(i_);
      else
        return owner_.at(i_);
    }
    iterator& operator++() {
      ++i_;
      return *this;
    }
    iterator operator++(int) {
      auto before = *this;
      ++i_;
      return before;
    }
    bool operator==(const iterator& other) const { return i_ == other.i_; }
    bool operator!=(const iterator& other) const { return i_ != other.i_; }

  private:
    json_value owner_;
    std::size_t i_;
  };

  range(json_value owner, std::size_t size) : owner_(owner), size_(size) {}
  iterator begin() const { return {owner_, 0}; }
  iterator end() const { return {owner_, size_}; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

private:
  json_value owner_;
  std::size_t size_;
};

/// A parsed JSON text: owns every value its views show. Strings are taken as
/// the bytes they are (not checked as UTF-8); numbers, member order and
/// duplicate members are kept as written.
class json_document {
public:
  /// An empty document: not ok, its root absent.
  json_document();
  ~json_document();
  json_document(json_document&&) noexcept;
  json_document& operator=(json_document&&) noexcept;

  /// Parses one JSON value (any kind, whitespace around it allowed).
  static json_document parse(std::string_view text);

  /// True when the text was one JSON value.
  bool ok() const;
  /// "" when ok, else what is wrong and where, e.g.
  /// "invalid JSON: Missing a name for object member. at offset 1".
  const std::string& error() const;
  /// The byte offset in the text where parsing failed (0 when ok).
  std::size_t error_offset() const;

  /// The whole value; absent when not ok.
  json_value root() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace coapfleet::model
