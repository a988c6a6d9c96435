// JSON of the artifact store: the wire answers of /artifacts and the
// metadata file kept beside each artifact.
#include "model/json.hpp"
#include "model/json_write.hpp"

namespace coapfleet::model {

using namespace json_write;

namespace {

void artifact(writer& w, const artifact_info& a) {
  w.StartObject();
  member(w, "name", a.name);
  member(w, "size", static_cast<uint64_t>(a.size < 0 ? 0 : a.size));
  member(w, "sha256", a.sha256);
  member(w, "uploaded_at", at{a.uploaded_at});
  w.EndObject();
}

/// `d` cut to a whole number, when an int64_t holds it (converting one it
/// does not hold, or NaN, is undefined behaviour).
bool whole_int64(double d, int64_t& out) {
  if (!(d > -9.2e18 && d < 9.2e18))
    return false;
  out = static_cast<int64_t>(d);
  return true;
}

}  // namespace

std::string encode_artifact(const artifact_info& a) {
  return write([&](writer& w) { artifact(w, a); });
}

std::string encode_artifacts(const std::vector<artifact_info>& all) {
  return write(
    [&](writer& w) {
      w.StartObject();
      key(w, "artifacts");
      w.StartArray();
      for (auto& a : all)
        artifact(w, a);
      w.EndArray();
      w.EndObject();
    },
    32 + all.size() * 160);
}

std::string encode_artifact_meta(const artifact_info& a) {
  return write([&](writer& w) {
    w.StartObject();
    member(w, "name", a.name);
    member(w, "size", static_cast<uint64_t>(a.size < 0 ? 0 : a.size));
    member(w, "sha256", a.sha256);
    key(w, "uploaded_at");
    w.Int64(a.uploaded_at);
    w.EndObject();
  });
}

bool decode_artifact_meta(std::string_view json, artifact_info& a) {
  auto attrs = decode_attributes(json);
  if (!attrs.ok())
    return false;
  for (auto& [k, v] : attrs.value) {
    if (k == "sha256" && v.kind == scalar::string_v)
      a.sha256 = v.text;
    else if (k == "size" && v.kind == scalar::number_v && !whole_int64(v.number, a.size))
      return false;
    else if (k == "uploaded_at" && v.kind == scalar::number_v
             && !whole_int64(v.number, a.uploaded_at))
      return false;
  }
  return a.sha256.size() == 64;
}

}  // namespace coapfleet::model
