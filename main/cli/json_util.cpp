#include "main/cli/json_util.hpp"

#include <cstdio>
#include <ctime>

namespace coapfleet::cli {

const rapidjson::Value* member(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject())
    return nullptr;
  auto i = v.FindMember(key);
  return i == v.MemberEnd() ? nullptr : &i->value;
}

std::string str(const rapidjson::Value& v, const char* key) {
  auto* m = member(v, key);
  return m && m->IsString() ? std::string(m->GetString(), m->GetStringLength()) : std::string();
}

std::optional<double> num(const rapidjson::Value& v, const char* key) {
  auto* m = member(v, key);
  if (m && m->IsNumber())
    return m->GetDouble();
  return std::nullopt;
}

long long integer(const rapidjson::Value& v, const char* key) {
  auto n = num(v, key);
  return n ? static_cast<long long>(*n) : 0;
}

std::vector<std::string> strings(const rapidjson::Value& v, const char* key) {
  std::vector<std::string> out;
  auto* m = member(v, key);
  if (m && m->IsArray())
    for (auto& e : m->GetArray())
      if (e.IsString())
        out.emplace_back(e.GetString(), e.GetStringLength());
  return out;
}

std::string to_json(const rapidjson::Value& v) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  v.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

json_body::json_body() : writer_(buffer_) {
  writer_.StartObject();
}

json_body& json_body::add(const char* key, const std::string& value) {
  writer_.Key(key);
  writer_.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
  return *this;
}

json_body& json_body::add(const char* key, long long value) {
  writer_.Key(key);
  writer_.Int64(value);
  return *this;
}

json_body& json_body::add(const char* key, const std::vector<std::string>& values) {
  writer_.Key(key);
  writer_.StartArray();
  for (auto& v : values)
    writer_.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
  writer_.EndArray();
  return *this;
}

std::string json_body::text() {
  if (!closed_) {
    writer_.EndObject();
    closed_ = true;
  }
  return std::string(buffer_.GetString(), buffer_.GetSize());
}

std::optional<double> parse_utc(const std::string& iso) {
  int y, mo, d, h, mi;
  double s;
  if (std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%lf", &y, &mo, &d, &h, &mi, &s) != 6)
    return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = 0;
  return static_cast<double>(timegm(&tm)) + s;
}

std::string relative_time(const std::string& iso) {
  auto t = parse_utc(iso);
  if (!t)
    return "-";
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  double age = static_cast<double>(now.tv_sec) + now.tv_nsec / 1e9 - *t;
  if (age < 0)
    age = 0;  // clocks of server and operator differ a little
  auto secs = static_cast<long long>(age);
  char buf[32];
  if (secs < 60)
    std::snprintf(buf, sizeof(buf), "%llds ago", secs);
  else if (secs < 3600)
    std::snprintf(buf, sizeof(buf), "%lldm ago", secs / 60);
  else if (secs < 86400)
    std::snprintf(buf, sizeof(buf), "%lldh ago", secs / 3600);
  else
    std::snprintf(buf, sizeof(buf), "%lldd ago", secs / 86400);
  return buf;
}

}  // namespace coapfleet::cli
