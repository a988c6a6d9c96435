#include "actors/server/reader.hpp"

#include <unordered_map>

#include "common/clock.hpp"
#include "actors/replies.hpp"
#include "common/log.hpp"
#include "model/json.hpp"

namespace coapfleet::server {

namespace {

struct stream {
  std::unique_ptr<store_reader::snapshot> snap;
  int64_t used_at = 0;  ///< steady ms
};

struct reader_state {
  static inline const char* name = "reader";
  std::unique_ptr<store_reader> db;
  reader_config cfg;
  std::unordered_map<uint64_t, stream> streams;
  uint64_t next_stream = 1;
  bool ticking = false;
};

using self_ptr = reader_actor::stateful_pointer<reader_state>;

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

coap_reply read_failed(const std::string& why) {
  CF_ERROR("reader", why);
  return json_reply(500, model::encode_error("cannot read the node listing: " + why));
}

/// The next chunk of stream `id` (closing it after its last).
listing_chunk read_chunk(self_ptr self, uint64_t id) {
  auto& st = self->state;
  listing_chunk c;
  c.stream = id;
  auto i = st.streams.find(id);
  if (i == st.streams.end()) {
    c.error = "the listing expired (no block was asked for in "
              + std::to_string(st.cfg.idle.count() / 1000) + " s): read it again from block 0";
    return c;
  }
  bool done = false;
  if (!i->second.snap->next(st.cfg.chunk_bytes, c.bytes, done)) {
    c.error = st.db->last_error().empty() ? "database read failed" : st.db->last_error();
    st.streams.erase(i);
    return c;
  }
  c.last = done;
  if (done)
    st.streams.erase(i);
  else
    i->second.used_at = steady_ms();
  return c;
}

void arm_tick(self_ptr self) {
  auto& st = self->state;
  if (st.ticking || st.streams.empty())
    return;
  st.ticking = true;
  self->delayed_send(self, std::chrono::seconds(5), atom::tick::value);
}

}  // namespace

reader_actor spawn_reader(caf::actor_system& sys, std::unique_ptr<store_reader> db,
                          reader_config cfg) {
  // CAF keeps spawn arguments for the actor's lifetime: the store goes in
  // through a holder it is moved out of.
  auto holder = std::make_shared<std::unique_ptr<store_reader>>(std::move(db));
  auto fn = [](self_ptr self, std::shared_ptr<std::unique_ptr<store_reader>> holder,
               reader_config cfg) -> reader_actor::behavior_type {
    auto& st = self->state;
    st.db = std::move(*holder);
    st.cfg = std::move(cfg);
    return {
      [self](atom::list, uint64_t id, model::nodes_query& q, model::millis now) {
        auto& st = self->state;
        std::string body;
        coap_reply r = st.db->page(q, now, st.cfg.liveness, body)
                         ? json_reply(205, std::move(body))
                         : read_failed(st.db->last_error());
        self->send(st.cfg.transport, atom::listing::value, id, std::move(r));
      },
      [self](atom::open, uint64_t id, model::nodes_query& filter, model::millis now) {
        auto& st = self->state;
        listing_chunk c;
        if (st.streams.size() >= st.cfg.max_streams) {
          c.error = "busy";
        } else if (auto snap = st.db->begin(filter, now, st.cfg.liveness)) {
          auto sid = st.next_stream++;
          st.streams.emplace(sid, stream{std::move(snap), steady_ms()});
          c = read_chunk(self, sid);
          arm_tick(self);
        } else {
          c.error = st.db->last_error();
          CF_ERROR("reader", "cannot begin a listing: ", c.error);
        }
        self->send(st.cfg.transport, atom::listing::value, id, std::move(c));
      },
      [self](atom::more, uint64_t sid) {
        self->send(self->state.cfg.transport, atom::more::value, read_chunk(self, sid));
      },
      [self](atom::close, uint64_t sid) { self->state.streams.erase(sid); },
      [self](atom::get, uint64_t id, model::millis now) {
        // The whole listing in one body: for its observers (the transport
        // keeps it only while the fleet is small enough to be observed whole).
        auto& st = self->state;
        coap_reply r;
        auto snap = st.db->begin(model::nodes_query{}, now, st.cfg.liveness);
        std::string body;
        bool done = false;
        bool ok = snap != nullptr;
        while (ok && !done)
          ok = snap->next(1 << 20, body, done);
        r = ok ? json_reply(205, std::move(body)) : read_failed(st.db->last_error());
        self->send(st.cfg.transport, atom::reply::value, id, std::move(r));
      },
      [self](atom::changes, uint64_t id, node_changes& c, model::millis now) {
        // O(changes): each changed node is one indexed lookup.
        auto& st = self->state;
        std::string nodes;
        coap_reply r = st.db->nodes(c.ids, now, st.cfg.liveness, nodes)
                         ? json_reply(205, model::encode_node_changes(c.from, c.to, c.reset, nodes))
                         : read_failed(st.db->last_error());
        self->send(st.cfg.transport, atom::reply::value, id, std::move(r));
      },
      [self](atom::tick) {
        auto& st = self->state;
        st.ticking = false;
        auto now = steady_ms();
        for (auto i = st.streams.begin(); i != st.streams.end();) {
          if (now - i->second.used_at > st.cfg.idle.count()) {
            CF_DEBUG("reader", "listing ", i->first, " closed: not read for ",
                     (now - i->second.used_at) / 1000, " s");
            i = st.streams.erase(i);
          } else {
            ++i;
          }
        }
        arm_tick(self);
      },
    };
  };
  if (cfg.detached)
    return sys.spawn<caf::detached>(fn, holder, std::move(cfg));
  return sys.spawn(fn, holder, std::move(cfg));
}

}  // namespace coapfleet::server
