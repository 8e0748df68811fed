// Host network interfaces, through rtnetlink: what the network layer needs to find and remove
// the pod bridge. Thread-safe.
#pragma once

#include <string>

#include "common/status.h"

namespace skiff::agent::network {

// True if a network interface named `name` exists in the caller's network namespace.
bool link_exists(const std::string& name);

// Deletes the interface `name` (for a bridge, its ports are released). Idempotent: OK when
// it does not exist. Internal with the kernel's errno otherwise.
Status delete_link(const std::string& name);

// True if `name` is a valid Linux interface name (1 to 15 characters, no '/', no spaces,
// not "." or "..").
bool valid_link_name(const std::string& name);

}  // namespace skiff::agent::network
