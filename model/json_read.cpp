// The decoders' refusal of repeated member names (see json_read::parse).
#include "model/json_read.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace coapfleet::model::json_read {

namespace {

/// Up to this many members, comparing each name with those before it is
/// cheaper than sorting (bodies have a handful of members, rarely 20).
constexpr rapidjson::SizeType pairwise_limit = 16;

std::string_view name_of(const Value::Member& m) {
  return {m.name.GetString(), m.name.GetStringLength()};
}

/// A member name that `obj` has more than once, or nullptr.
const Value::Member* repeated_member(const Value& obj) {
  auto n = obj.MemberCount();
  if (n < 2)
    return nullptr;
  const Value::Member* first = &*obj.MemberBegin();
  if (n <= pairwise_limit) {
    for (rapidjson::SizeType i = 1; i < n; ++i)
      for (rapidjson::SizeType j = 0; j < i; ++j)
        if (name_of(first[i]) == name_of(first[j]))
          return &first[i];
    return nullptr;
  }
  std::vector<const Value::Member*> sorted(n);
  for (rapidjson::SizeType i = 0; i < n; ++i)
    sorted[i] = &first[i];
  auto by_name = [](const Value::Member* a, const Value::Member* b) {
    return name_of(*a) < name_of(*b);
  };
  std::sort(sorted.begin(), sorted.end(), by_name);
  auto same = std::adjacent_find(sorted.begin(), sorted.end(), [](auto* a, auto* b) {
    return name_of(*a) == name_of(*b);
  });
  return same == sorted.end() ? nullptr : *same;
}

bool is_container(const Value& v) {
  return (v.IsObject() && v.MemberCount() > 0) || (v.IsArray() && v.Size() > 0);
}

/// One object or array on the way down, and its child visited last (+1).
struct frame {
  const Value* value;
  rapidjson::SizeType next = 0;
};

/// Where the object on top of `path` is: "services_status", "extra[1].x".
std::string location(const std::vector<frame>& path) {
  std::string out;
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    auto& f = path[i];
    auto child = f.next - 1;
    if (f.value->IsArray()) {
      out += '[' + std::to_string(child) + ']';
    } else {
      if (!out.empty())
        out += '.';
      out += name_of(f.value->MemberBegin()[child]);
    }
  }
  return out;
}

}  // namespace

bool has_non_finite(const Value& root) {
  std::vector<const Value*> todo{&root};
  while (!todo.empty()) {
    const Value* v = todo.back();
    todo.pop_back();
    if (v->IsDouble() && !std::isfinite(v->GetDouble()))
      return true;
    if (v->IsObject())
      for (auto& m : v->GetObject())
        todo.push_back(&m.value);
    else if (v->IsArray())
      for (auto& e : v->GetArray())
        todo.push_back(&e);
  }
  return false;
}

bool has_nul(const Value& root) {
  auto nul = [](const Value& s) {
    return std::memchr(s.GetString(), 0, s.GetStringLength()) != nullptr;
  };
  std::vector<const Value*> todo{&root};
  while (!todo.empty()) {
    const Value* v = todo.back();
    todo.pop_back();
    if (v->IsString() && nul(*v))
      return true;
    if (v->IsObject()) {
      for (auto& m : v->GetObject()) {
        if (nul(m.name))
          return true;
        todo.push_back(&m.value);
      }
    } else if (v->IsArray()) {
      for (auto& e : v->GetArray())
        todo.push_back(&e);
    }
  }
  return false;
}

problem repeated_name(const Value& root) {
  // Depth-first with a stack of our own: a body nested thousands deep must
  // not run the thread out of stack.
  std::vector<frame> path;
  if (is_container(root))
    path.push_back({&root});
  while (!path.empty()) {
    auto& top = path.back();
    const Value& v = *top.value;
    if (top.next == 0 && v.IsObject())
      if (auto* m = repeated_member(v)) {
        auto where = location(path);
        std::string key{name_of(*m)};
        return {"duplicate key: " + (where.empty() ? key : where + '.' + key), key};
      }
    auto count = v.IsObject() ? v.MemberCount() : v.Size();
    if (top.next == count) {
      path.pop_back();
      continue;
    }
    const Value& child = v.IsObject() ? v.MemberBegin()[top.next].value : v[top.next];
    ++top.next;
    if (is_container(child))
      path.push_back({&child});
  }
  return {};
}

}  // namespace coapfleet::model::json_read
