// The process group of the handler that runs, on disk: a restarted agent
// kills what its previous life left running (after `kill -9` or a crash the
// group outlives the agent; its direct child also gets SIGKILL from the
// kernel, PR_SET_PDEATHSIG, but not what that child started).
//
// The file (`handler-group` in the state directory) holds "<pgid> <start>
// <boot id>": the group leader's start time in clock ticks since boot
// (/proc/<pid>/stat) and the kernel's boot id, so that a group number the
// kernel gave out again, or one from before a reboot, is never killed.
#pragma once

#include <string>

namespace coapfleet::agent {

/// Writes the record of group `pgid` (its leader is `pgid`) durably; false
/// and `error` on failure.
bool record_handler_group(const std::string& path, int pgid, std::string& error);
/// Removes the record (the group was reaped).
void clear_handler_group(const std::string& path);
/// Kills (SIGKILL) the group a previous life of the agent recorded, if it is
/// still there and still the same, and removes the record. Returns what it
/// did, for the log ("" when there was no record).
std::string kill_leftover_group(const std::string& path);

/// Sends `sig` to group `pgid`; whether any of its processes is left
/// (false once the group is gone).
bool signal_group(int pgid, int sig);

}  // namespace coapfleet::agent
