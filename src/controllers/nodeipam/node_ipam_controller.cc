#include "controllers/nodeipam/node_ipam_controller.h"

#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/log.h"
#include "controllers/common/object_meta.h"
#include "controllers/nodeipam/cidr_set.h"

namespace skiff::controllers::nodeipam {
namespace {

namespace cc = ::skiff::controllers::common;
using client::ObjectPtr;
using nlohmann::json;

// The informer index of nodes by the pod ranges they carry.
constexpr char kPodCidrIndex[] = "nodeipam.podCIDRs";

// The node's pod ranges as written: spec.podCIDRs, else spec.podCIDR.
std::vector<std::string> pod_cidrs(const json& node) {
  std::vector<std::string> out;
  if (const json* list = cc::find_path(node, {"spec", "podCIDRs"});
      list != nullptr && list->is_array()) {
    for (const json& c : *list) {
      if (c.is_string() && !c.get<std::string>().empty()) out.push_back(c.get<std::string>());
    }
  }
  if (out.empty()) {
    std::string single = cc::string_at(node, {"spec", "podCIDR"});
    if (!single.empty()) out.push_back(single);
  }
  return out;
}

// The node's IPv4 pod range, if it has one that parses.
std::optional<Ipv4Cidr> ipv4_range(const json& node) {
  for (const std::string& text : pod_cidrs(node)) {
    auto c = Ipv4Cidr::parse(text);
    if (c.ok()) return *c;
  }
  return std::nullopt;
}

int64_t resource_version_number(const json& obj) {
  auto v = cc::parse_int64(cc::resource_version_of(obj));
  return v ? *v : 0;
}

// A node's share of the set: subnets [first, last], or none when its range lies outside
// the cluster CIDR.
struct Allocation {
  std::string uid;
  std::optional<std::pair<uint32_t, uint32_t>> subnets;
  // Set when this controller wrote the range: the resourceVersion of that write, until the
  // informer shows it.
  int64_t written_version = 0;
};

}  // namespace

struct NodeIpamController::Impl {
  explicit Impl(ControllerContext& c)
      : ctx(c), nodes(c.informers.informer(client::resources::kNodes)) {
    auto set = CidrSet::create(ctx.options.cluster_cidr, ctx.options.node_cidr_mask_size);
    if (set.ok()) {
      cidrs.emplace(std::move(set.value()));
    } else {
      config_error = set.status();
      SKIFF_LOG(Error) << "node IPAM: " << config_error.message();
    }
  }

  ControllerContext& ctx;
  client::Informer& nodes;
  WorkQueue* queue = nullptr;
  Status config_error;  // constant after construction

  std::mutex mu;
  // Guarded by mu.
  std::optional<CidrSet> cidrs;
  bool rebuilt = false;
  std::unordered_map<std::string, Allocation> by_node;
  std::set<std::string> waiting;  // nodes that found the set full

  void on_update(const ObjectPtr& old_node, const ObjectPtr& new_node) {
    if (pod_cidrs(*old_node) != pod_cidrs(*new_node) || pod_cidrs(*new_node).empty() ||
        cc::uid_of(*old_node) != cc::uid_of(*new_node)) {
      queue->add(cc::name_of(*new_node));
    }
  }

  // Records that `name` holds `range`. REQUIRES: mu held.
  void occupy(const std::string& name, const std::string& uid, const Ipv4Cidr& range) {
    auto subnets = cidrs->indices(range);
    auto& a = by_node[name];
    if (a.uid == uid && a.subnets == subnets) return;
    if (a.subnets) cidrs->release(a.subnets->first, a.subnets->second);
    a = Allocation{uid, subnets, 0};
    if (subnets && !cidrs->occupy(subnets->first, subnets->second)) {
      SKIFF_LOG(Warn) << "node IPAM: node " << name << " has pod range " << range.to_string()
                      << ", which overlaps another node's";
      a.subnets.reset();
    }
  }

  // Rebuilds the allocation from the cache once, before the first decision. REQUIRES: mu.
  void rebuild() {
    if (rebuilt) return;
    rebuilt = true;
    size_t n = 0;
    for (const ObjectPtr& node : nodes.list()) {
      if (auto range = ipv4_range(*node)) {
        occupy(cc::name_of(*node), cc::uid_of(*node), *range);
        ++n;
      }
    }
    SKIFF_LOG(Debug) << "node IPAM: " << n << " pod ranges in use";
  }

  // Releases what `name` held; the nodes waiting for a range may now get one. REQUIRES: mu.
  void release(const std::string& name) {
    auto it = by_node.find(name);
    if (it == by_node.end()) return;
    if (it->second.subnets) {
      cidrs->release(it->second.subnets->first, it->second.subnets->second);
      for (const std::string& w : waiting) queue->add(w);
      waiting.clear();
    }
    by_node.erase(it);
  }

  Status reconcile(const std::string& name) {
    if (!config_error.ok()) return config_error;
    ObjectPtr node = nodes.get("", name);
    std::optional<Ipv4Cidr> range;
    {
      std::lock_guard<std::mutex> lock(mu);
      rebuild();
      if (!node) {
        release(name);
        waiting.erase(name);
        return Status::Ok();
      }
      std::string uid = cc::uid_of(*node);
      if (!pod_cidrs(*node).empty()) {
        waiting.erase(name);
        if (auto r = ipv4_range(*node)) {
          occupy(name, uid, *r);
        } else {
          SKIFF_LOG(Warn) << "node IPAM: node " << name << " has no IPv4 pod range it can use";
        }
        return Status::Ok();
      }
      auto it = by_node.find(name);
      if (it != by_node.end() && it->second.uid == uid && it->second.written_version != 0 &&
          resource_version_number(*node) < it->second.written_version) {
        return Status::Ok();  // the cache has not caught up with our write yet
      }
      release(name);
      // Another node may carry a range this controller has not looked at yet.
      // Each round uses up one free range, so the loop ends.
      for (;;) {
        range = cidrs->allocate();
        if (!range) break;
        std::vector<ObjectPtr> holders = nodes.by_index(kPodCidrIndex, range->to_string());
        if (holders.empty()) break;
        const json& holder = *holders.front();
        Allocation& a = by_node[cc::name_of(holder)];
        if (a.subnets) cidrs->release(a.subnets->first, a.subnets->second);
        a = Allocation{cc::uid_of(holder), cidrs->indices(*range), 0};
        range.reset();
      }
      if (!range) {
        waiting.insert(name);
      } else {
        by_node[name] = Allocation{uid, cidrs->indices(*range), 0};
      }
    }

    if (!range) {
      ctx.events.record(cc::object_reference(*node, "v1", "Node"), "Warning",
                        "CIDRNotAvailable", "Node " + name + " status is now: CIDRNotAvailable");
      return Status::Unavailable("no pod range left in " + ctx.options.cluster_cidr + " for node " +
                                 name);
    }
    std::string cidr = range->to_string();
    json patch = {{"metadata", {{"resourceVersion", cc::resource_version_of(*node)}}},
                  {"spec", {{"podCIDR", cidr}, {"podCIDRs", {cidr}}}}};
    auto r = ctx.client.patch(client::resources::kNodes, name, client::PatchType::kMerge,
                              patch.dump());
    std::lock_guard<std::mutex> lock(mu);
    auto it = by_node.find(name);
    if (!r.ok()) {
      // Give the range back; a Conflict is retried on a fresh read.
      if (it != by_node.end() && it->second.uid == cc::uid_of(*node)) release(name);
      return r.status().is_not_found() ? Status::Ok() : r.status();
    }
    if (it != by_node.end()) it->second.written_version = resource_version_number(**r);
    SKIFF_LOG(Debug) << "node IPAM: node " << name << " gets pod range " << cidr;
    return Status::Ok();
  }
};

NodeIpamController::NodeIpamController(ControllerContext& ctx)
    : impl_(std::make_unique<Impl>(ctx)) {}

NodeIpamController::~NodeIpamController() = default;

void NodeIpamController::setup(WorkQueue& queue) {
  Impl& m = *impl_;
  m.queue = &queue;
  m.nodes.add_index(kPodCidrIndex, pod_cidrs);
  m.nodes.add_handlers(client::InformerHandlers{
      [&m](const ObjectPtr& n) { m.queue->add(cc::name_of(*n)); },
      [&m](const ObjectPtr& old_node, const ObjectPtr& n) { m.on_update(old_node, n); },
      [&m](const ObjectPtr& n) { m.queue->add(cc::name_of(*n)); }});
}

Status NodeIpamController::reconcile(const std::string& key) { return impl_->reconcile(key); }

SKIFF_REGISTER_CONTROLLER(node_ipam, [](ControllerContext& ctx) {
  return std::unique_ptr<Controller>(std::make_unique<NodeIpamController>(ctx));
});

}  // namespace skiff::controllers::nodeipam
