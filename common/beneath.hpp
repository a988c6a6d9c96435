// Directories opened beneath a root directory without ever leaving it: what
// keeps a file job inside the agent's --root when the tree under the root
// holds symbolic links (root/opt/link -> /elsewhere).
//
// With the kernel's openat2 (Linux 5.6+) every prefix of the path is resolved
// from the root with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS: a symbolic link
// is followed only while it stays beneath the root (an absolute link, or one
// that climbs above the root, is refused). Without openat2 (ENOSYS, or a
// seccomp filter's EPERM) the path is walked one component at a time from the
// root with O_NOFOLLOW, and any symbolic link is refused.
#pragma once

#include <string>
#include <vector>

namespace coapfleet::common {

/// How a path beneath a root is resolved.
enum class beneath_resolver {
  automatic,  ///< openat2 where the kernel has it, else the walk
  kernel,     ///< openat2 only (fails with ENOSYS where there is none)
  walk,       ///< component by component with O_NOFOLLOW, no symbolic link at all
};

/// Whether this kernel (and any seccomp filter) lets us call openat2.
bool kernel_resolves_beneath();

/// A directory opened beneath a root, or why it could not be.
struct beneath_result {
  int fd = -1;        ///< O_RDONLY | O_DIRECTORY, close-on-exec; the caller closes it
  int err = 0;        ///< errno of the failure
  bool outside = false;  ///< refused because it would leave the root (or use a link the walk refuses)
  std::string error;  ///< what failed, naming the component ("/opt/link")
};

/// Opens the directory `parts` (path components, none empty, "." or "..",
/// which the caller has refused) beneath the open directory `root_fd`. With
/// `create`, missing components are made (mode 0755) with mkdirat in the
/// directory already reached, so nothing is ever created outside the root.
beneath_result open_directory_beneath(int root_fd, const std::vector<std::string>& parts,
                                      bool create,
                                      beneath_resolver how = beneath_resolver::automatic);

}  // namespace coapfleet::common
