// Why a transport's loop ended: what the main does next.
#pragma once

namespace coapfleet::transport {

enum class stop_reason { signal, shutdown, restart };

}  // namespace coapfleet::transport
