// `skiff cleanup`: removes what a stopped (or killed) server's or agent's node left on the host.
#include "agent/cleanup.h"

#include <cstdio>
#include <filesystem>
#include <string>

namespace skiff::cli {
namespace {

void cleanup_usage() {
  std::fprintf(
      stderr,
      "usage: skiff cleanup [flags]\n\n"
      "Stops and deletes the node's containers (and their conmon monitors), unmounts\n"
      "everything under the data dir, removes the pods' network namespaces, CNI state\n"
      "and iptables rules, the pod bridge, and the service proxy's and cluster DNS's\n"
      "nftables tables. Run it with the server or agent stopped. Images and the API\n"
      "store are kept unless --all.\n\n"
      "  --data-dir DIR      the node's data dir (default /var/lib/skiff)\n"
      "  --bridge-name NAME  the node's pod bridge (default skiff0)\n"
      "  --all               also delete images, the store and the rest of the data dir\n");
}

}  // namespace

int run_cleanup(int argc, char** argv) {
  agent::CleanupOptions o;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    std::string value;
    bool has_value = false;
    if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_value = true;
    }
    auto need_value = [&]() -> bool {
      if (has_value) return true;
      if (i + 1 >= argc) {
        std::fprintf(stderr, "skiff cleanup: %s needs a value\n", a.c_str());
        return false;
      }
      value = argv[++i];
      return true;
    };
    if (a == "--data-dir") {
      if (!need_value()) return 2;
      o.data_dir = value;
    } else if (a == "--bridge-name") {
      if (!need_value()) return 2;
      o.bridge_name = value;
    } else if (a == "--all") {
      o.all = true;
    } else if (a == "-h" || a == "--help") {
      cleanup_usage();
      return 0;
    } else {
      std::fprintf(stderr, "skiff cleanup: unknown flag %s\n", a.c_str());
      cleanup_usage();
      return 2;
    }
  }
  std::error_code ec;
  auto abs = std::filesystem::absolute(o.data_dir, ec);
  if (!ec) o.data_dir = abs.lexically_normal().string();

  agent::CleanupReport report;
  Status s = agent::cleanup_node(o, &report);
  if (s.code() == StatusCode::kInvalid) {
    std::fprintf(stderr, "skiff cleanup: %s\n", s.message().c_str());
    return 2;
  }
  for (const auto& r : report.removed) std::printf("removed %s\n", r.c_str());
  for (const auto& f : report.failed) std::fprintf(stderr, "could not remove %s\n", f.c_str());
  if (report.removed.empty() && report.failed.empty()) {
    std::printf("nothing to clean up in %s\n", o.data_dir.c_str());
  }
  std::fflush(stdout);
  return s.ok() ? 0 : 1;
}

}  // namespace skiff::cli
