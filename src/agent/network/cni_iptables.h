// The iptables state the standard CNI plugins leave on the host, and its removal.
//
// The bridge plugin (ipMasq) adds, in the nat table, a POSTROUTING rule and a per-container
// chain CNI-<hash>; portmap adds a per-container chain CNI-DN-<hash> entered from the shared
// chain CNI-HOSTPORT-DNAT, plus the shared chains CNI-HOSTPORT-SETMARK and CNI-HOSTPORT-MASQ
// (entered from PREROUTING, OUTPUT and POSTROUTING). Every per-container rule carries the
// comment `name: "<network>" id: "<container id>"` (portmap: `dnat name: ...`), which is how
// the rules of one network are told apart from everyone else's.
//
// All functions run iptables-save / iptables-restore (found on PATH) and are thread-safe;
// changes are applied as one iptables-restore transaction.
#pragma once

#include <string>

#include "common/status.h"

namespace skiff::agent::network {

// Removes, in every table, the rules tagged for network `network_name` (only those of
// `container_id` when it is not empty), the per-container CNI chains they belong to or jump
// to, and every other rule jumping to those chains. Shared CNI-HOSTPORT-* chains stay. OK when
// there is nothing to remove or iptables is not installed (then no plugin could have added
// rules); Internal when iptables-restore refuses.
Status remove_cni_iptables_rules(const std::string& network_name, const std::string& container_id);

// Removes portmap's shared chains (CNI-HOSTPORT-DNAT, -SETMARK, -MASQ and the old -SNAT) and
// the jumps to them, but only when no network forwards a host port through them any more.
// Meant for a host-wide cleanup; a CNI user adding a hostPort at the same moment could see
// its ADD fail, so it is not part of the per-network cleanup.
Status remove_unused_hostport_chains();

// The output of `iptables-save` (all tables); "" when iptables is not installed.
Result<std::string> iptables_save();

}  // namespace skiff::agent::network
