// Fuzzes what an agent reads from the network about a job: the
// `POST /updates/available` notification (decode_update_notification), the
// job with its spec from `GET /updates/<job>/spec` (decode_node_job), and
// the --verify-key check of the spec's signature (signed_job_text of
// model/job_signature.hpp, common/job_signing's Ed25519 verify with the
// signature's hex as sent). The first byte picks the decoder.
//
// Invariants: what decodes encodes to a text that decodes to the same
// encoding; a signature verifies only as 128 hex digits; this key's own
// signature of a decoded spec verifies, and no longer does once any signed
// field changes (the canonical text is unambiguous: moving a byte from one
// field into the next changes it).
//
//   build-fuzz/fuzz/fuzz_agent_notification fuzz/corpus/agent_notification
#include <memory>
#include <string>
#include <string_view>

#include "common/job_signing.hpp"
#include "fuzz_input.hpp"
#include "model/job_signature.hpp"
#include "model/json.hpp"

using namespace coapfleet;
using model::job_spec;

namespace {

// A key made for fuzzing only (openssl genpkey -algorithm ed25519); it
// signs nothing anywhere else.
constexpr const char* fuzz_key_pem = "-----BEGIN PRIVATE KEY-----\n"
                                     "MC4CAQAwBQYDK2VwBCIEIOZ59LhIQXlj9cuZCFfXiVcStYt1PHGz8G1HriZfl44A\n"
                                     "-----END PRIVATE KEY-----\n";

const common::ed25519_key& fuzz_key() {
  static const auto key = [] {
    std::string error;
    auto k = common::ed25519_key::from_pem(fuzz_key_pem, true, error);
    if (!k) {
      std::fprintf(stderr, "fuzz key: %s\n", error.c_str());
      std::abort();
    }
    return k;
  }();
  return *key;
}

bool hex128(std::string_view s) {
  if (s.size() != 128)
    return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
      return false;
  return true;
}

/// The spec with one signed field changed: `which` picks the field.
job_spec changed(const job_spec& s, unsigned which) {
  job_spec c = s;
  switch (which % 11) {
    case 0: c.name += 'x'; break;
    case 1: c.version += 'x'; break;
    case 2: c.package_type += 'x'; break;
    case 3: c.packages.emplace_back(); break;
    case 4: c.artifact += 'x'; break;
    case 5: c.artifact_sha256 += 'x'; break;
    case 6: c.target_path += 'x'; break;
    case 7: c.mode += 'x'; break;
    case 8: c.script += 'x'; break;
    case 9: c.timeout_seconds = c.timeout_seconds == 0 ? 1 : 0; break;
    default:
      // One byte moved from the end of name to the front of version.
      if (c.name.empty())
        c.name = "x";
      else {
        c.version.insert(c.version.begin(), c.name.back());
        c.name.pop_back();
      }
  }
  return c;
}

void signature(const job_spec& spec, unsigned which) {
  const auto& key = fuzz_key();
  auto text = model::signed_job_text(spec);
  FUZZ_CHECK(text.rfind(model::signed_job_header, 0) == 0);
  if (key.verify(text, spec.signature))
    FUZZ_CHECK(hex128(spec.signature));
  auto sig = key.sign(text);
  FUZZ_CHECK(hex128(sig));
  FUZZ_CHECK(key.verify(text, sig));
  auto other = model::signed_job_text(changed(spec, which));
  FUZZ_CHECK(other != text);
  FUZZ_CHECK(!key.verify(other, sig));
  // Fields outside the signature do not change it.
  job_spec unsigned_fields = spec;
  unsigned_fields.description += 'x';
  unsigned_fields.target_nodes.emplace_back("n");
  unsigned_fields.signature = sig;
  FUZZ_CHECK(model::signed_job_text(unsigned_fields) == text);
}

template <class Decode, class Encode>
const model::update_notification* round_trip(std::string_view body, Decode decode,
                                             Encode encode, model::update_notification& out) {
  auto first = decode(body);
  FUZZ_CHECK(first.ok() == first.err.error.empty());
  if (!first.ok())
    return nullptr;
  FUZZ_CHECK(!first.value.job_id.empty() && model::valid_node_id(first.value.node_id));
  auto text = encode(first.value);
  auto second = decode(text);
  FUZZ_CHECK(second.ok());
  FUZZ_CHECK(encode(second.value) == text);
  out = std::move(first.value);
  return &out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::input in(data, size);
  auto which = in.byte();
  auto body = in.rest();
  model::update_notification n;
  if (which % 2 == 0) {
    if (round_trip(body, model::decode_update_notification, model::encode_update_notification, n))
      FUZZ_CHECK(n.spec.name.empty() && n.spec.signature.empty());  // never read from a notification
  } else if (round_trip(body, model::decode_node_job, model::encode_node_job, n)) {
    // Valid as a spec, with the targets the server left out (an agent gets none).
    auto spec = n.spec;
    if (spec.target_nodes.empty())
      spec.target_nodes = {"all"};
    FUZZ_CHECK(model::validate_job_spec(spec).empty());
    signature(n.spec, which / 2);
  }
  return 0;
}
