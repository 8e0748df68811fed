// skiff: one binary, several roles. `skiff server` runs the control plane.
#include <cstdio>
#include <cstring>
#include <string>

namespace {

void usage() {
  std::fprintf(stderr,
               "usage: skiff <command> [flags]\n\n"
               "commands:\n"
               "  server    run the control plane (API server, store) and a node agent\n"
               "  version   print the version\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage();
    return 2;
  }
  std::string cmd = argv[1];
  if (cmd == "version" || cmd == "--version") {
    std::printf("skiff v0.1.0 (Kubernetes v1.32.0)\n");
    return 0;
  }
  usage();
  return 2;
}
