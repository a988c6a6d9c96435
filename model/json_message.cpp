#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "model/json.hpp"

namespace coapfleet::model {

std::string encode_message(std::string_view message,
                           const std::vector<std::pair<std::string, std::string>>& extra) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("message");
  w.String(message.data(), static_cast<rapidjson::SizeType>(message.size()));
  for (auto& [k, v] : extra) {
    w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
    w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  }
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

}  // namespace coapfleet::model
