// The server's bounded stop (common/shutdown_watch): past its grace it names
// the tracked actors that have not ended and hands over to the stop's own
// end; before it, nothing happens. Real threads, a real actor system.
#include <doctest/doctest.h>

#include <caf/all.hpp>

#include <atomic>
#include <future>

#include "common/shutdown_watch.hpp"

using namespace coapfleet;

namespace {

/// An actor that does not end when told to (it traps exit messages).
caf::behavior stubborn(caf::event_based_actor* self) {
  self->set_exit_handler([](caf::exit_msg&) {});
  return {[](int x) { return x; }};
}

caf::behavior obedient() {
  return {[](int x) { return x; }};
}

}  // namespace

TEST_CASE("a stop that does not end within its grace names the actors that did not end") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto a = sys.spawn(stubborn);
  auto b = sys.spawn(obedient);
  std::promise<std::string> named;
  auto names = named.get_future();
  {
    shutdown_watch watch{std::chrono::milliseconds(200)};
    watch.track("stubborn", a);
    watch.track("obedient", b);
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(b, caf::exit_reason::user_shutdown);
    watch.start([&](const std::string& waiting) { named.set_value(waiting); });
    bool ready = names.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
    caf::anon_send_exit(a, caf::exit_reason::kill);  // a kill is not trapped
    REQUIRE(ready);
    CHECK(names.get() == "stubborn");
  }
}

TEST_CASE("a stop that ends within its grace is left alone") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto b = sys.spawn(obedient);
  std::atomic<bool> gave_up{false};
  shutdown_watch watch{std::chrono::seconds(30)};
  watch.track("obedient", b);
  caf::anon_send_exit(b, caf::exit_reason::user_shutdown);
  watch.start([&](const std::string&) { gave_up = true; });
  caf::scoped_actor self{sys};
  self->wait_for(b);
  watch.done();  // returns at once: the grace is not waited out
  CHECK_FALSE(gave_up);
}
