// Fuzzes the agent's durable state as it reads it back at start: the job
// journal and the report outbox (model/journal.hpp; actors/agent/journal.cpp
// only reads the file and hands its text to these). The first byte picks
// which. Whatever loads saves to a text that loads to the same text again.
//
//   build-fuzz/fuzz/fuzz_journal fuzz/corpus/journal      (or deploy/fuzz.sh)
#include <deque>
#include <string>
#include <string_view>

#include "fuzz_input.hpp"
#include "model/journal.hpp"
#include "model/json.hpp"

using namespace coapfleet::model;

namespace {

void journal(std::string_view text) {
  job_journal j;
  std::string warning;
  if (!decode_journal(text, j, warning))
    return;
  for (auto& job : j.jobs)
    FUZZ_CHECK(!job.note.job_id.empty() && valid_node_id(job.note.node_id));
  auto saved = encode_journal(j);
  job_journal again;
  std::string again_warning;
  FUZZ_CHECK(decode_journal(saved, again, again_warning));
  FUZZ_CHECK(again_warning.empty());  // nothing saved is dropped when read back
  FUZZ_CHECK(again.jobs.size() == j.jobs.size() && again.done == j.done);
  FUZZ_CHECK(encode_journal(again) == saved);
  for (auto& job : j.jobs)
    FUZZ_CHECK(again.knows(run_key(job.note.job_id, job.note.attempt)));
}

void outbox(std::string_view text) {
  std::deque<update_report> out;
  if (!decode_outbox(text, out))
    return;
  auto saved = encode_outbox(out);
  std::deque<update_report> again;
  FUZZ_CHECK(decode_outbox(saved, again));
  FUZZ_CHECK(again.size() == out.size());
  FUZZ_CHECK(encode_outbox(again) == saved);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  coapfleet::fuzz::input in(data, size);
  auto which = in.byte();
  auto text = in.rest();
  if (which % 2 == 0)
    journal(text);
  else
    outbox(text);
  return 0;
}
