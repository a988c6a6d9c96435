// Which live member of a cluster owns a node: rendezvous (highest random
// weight) hashing of the node's id over the members' ids. Every member
// computes the same answer from the same set of live members, without
// talking to the others; when a member leaves, only its own nodes move
// (each to the member that scores next highest for it), and a member that
// joins takes about 1/n of the nodes from the others.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace coapfleet::model {

/// A 64-bit hash of (member, node) that is the same on every machine and
/// build: FNV-1a over both (separated) and a splitmix64 finaliser.
uint64_t rendezvous_score(std::string_view member_id, std::string_view node_id);

/// The member (of `members`) with the highest score for `node_id`; a tie
/// (practically never) goes to the smaller member id. "" when there is none.
std::string owner_of(std::string_view node_id, const std::vector<std::string>& members);

}  // namespace coapfleet::model
