// CidrSet: the pod ranges of one cluster CIDR, cut into equal node subnets, as Kubernetes'
// pkg/controller/nodeipam/ipam/cidrset: a bitmap of used subnets and a rotating cursor, so
// that a released subnet is handed out again only after the others (its old pods' addresses
// have time to age out of caches). IPv4 only.
//
// Not thread-safe: the owner serializes access.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace skiff::controllers::nodeipam {

// An IPv4 block, its base masked to its prefix.
struct Ipv4Cidr {
  uint32_t base = 0;
  int prefix = 32;

  // BadRequest unless `text` is "a.b.c.d/n" with n in [0, 32].
  static Result<Ipv4Cidr> parse(std::string_view text);
  std::string to_string() const;
  uint64_t size() const { return uint64_t{1} << (32 - prefix); }
  uint64_t last() const { return uint64_t{base} + size() - 1; }
  friend bool operator==(const Ipv4Cidr&, const Ipv4Cidr&) = default;
};

class CidrSet {
 public:
  // At most 2^16 subnets per set, as Kubernetes' limit.
  static constexpr int kMaxSubnetBits = 16;

  // BadRequest when cluster_cidr does not parse, node_mask is shorter than its prefix or
  // longer than 32, or the set would hold more than 2^kMaxSubnetBits subnets.
  static Result<CidrSet> create(const std::string& cluster_cidr, int node_mask);

  // The next free subnet after the last one handed out (wrapping), now used; nullopt when
  // every subnet is taken.
  std::optional<Ipv4Cidr> allocate();
  // The subnets a block covers (or the one containing it, for a block smaller than a
  // subnet), as [first, last] indices; nullopt when it lies outside the cluster CIDR.
  std::optional<std::pair<uint32_t, uint32_t>> indices(const Ipv4Cidr& block) const;
  // Marks subnets [first, last] used; false (and nothing marked) if any of them already is.
  bool occupy(uint32_t first, uint32_t last);
  void release(uint32_t first, uint32_t last);
  bool used(uint32_t index) const;

  Ipv4Cidr subnet(uint32_t index) const;
  const Ipv4Cidr& cluster() const { return cluster_; }
  int node_mask() const { return node_mask_; }
  uint32_t size() const { return static_cast<uint32_t>(bits_.size()); }
  uint32_t used_count() const { return used_count_; }

 private:
  CidrSet(Ipv4Cidr cluster, int node_mask);

  Ipv4Cidr cluster_;
  int node_mask_;
  std::vector<bool> bits_;
  uint32_t used_count_ = 0;
  uint32_t next_ = 0;  // where the next search starts
};

}  // namespace skiff::controllers::nodeipam
