#include "agent/images/image_command.h"

#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/images/pull_progress.h"
#include "agent/images/store.h"

namespace skiff::agent::images {
namespace {

void usage() {
  std::fprintf(
      stderr,
      "usage: skiff image <command> [flags]\n\n"
      "commands:\n"
      "  import FILE|DIR [--name REPO]  import an OCI layout or docker-archive (dir or tar)\n"
      "  ls [-q]                        list images\n"
      "  pull REF [--username U --password P] [--plain-http] [--insecure]\n"
      "                                 pull an image from its registry\n"
      "  rm REF...                      remove images (by reference or ID)\n"
      "  inspect REF                    print an image as JSON\n"
      "  gc                             delete unreferenced blobs and layers\n\n"
      "flags:\n"
      "  --data-dir DIR                 skiff's data directory (default /var/lib/skiff)\n");
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size());
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 3, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

struct Args {
  std::string data_dir = "/var/lib/skiff";
  std::vector<std::string> positional;
  std::string name, username, password;
  bool quiet = false, plain_http = false, insecure = false;
};

bool parse_args(int argc, char** argv, Args& a) {
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    std::string value;
    bool has_value = false;
    if (size_t eq = s.find('='); s.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = s.substr(eq + 1);
      s = s.substr(0, eq);
      has_value = true;
    }
    auto take = [&](std::string& out) {
      if (has_value) {
        out = value;
        return true;
      }
      if (i + 1 >= argc) {
        std::fprintf(stderr, "skiff image: %s needs a value\n", s.c_str());
        return false;
      }
      out = argv[++i];
      return true;
    };
    if (s == "--data-dir") {
      if (!take(a.data_dir)) return false;
    } else if (s == "--name") {
      if (!take(a.name)) return false;
    } else if (s == "--username" || s == "-u") {
      if (!take(a.username)) return false;
    } else if (s == "--password" || s == "-p") {
      if (!take(a.password)) return false;
    } else if (s == "-q" || s == "--quiet") {
      a.quiet = true;
    } else if (s == "--plain-http") {
      a.plain_http = true;
    } else if (s == "--insecure") {
      a.insecure = true;
    } else if (s == "-h" || s == "--help") {
      return false;
    } else if (s.rfind("-", 0) == 0 && s.size() > 1) {
      std::fprintf(stderr, "skiff image: unknown flag %s\n", s.c_str());
      return false;
    } else {
      a.positional.push_back(s);
    }
  }
  return true;
}

int fail(const Status& s) {
  std::fprintf(stderr, "skiff image: %s\n", s.message().c_str());
  return 1;
}

std::string short_id(const std::string& id) { return id.substr(7, 13); }

}  // namespace

int run_image_command(int argc, char** argv) {
  if (argc < 1) {
    usage();
    return 2;
  }
  std::string cmd = argv[0];
  Args a;
  if (!parse_args(argc, argv, a) || cmd == "help" || cmd == "-h" || cmd == "--help") {
    usage();
    return 2;
  }
  auto need = [&](size_t min, size_t max) {
    if (a.positional.size() < min || a.positional.size() > max) {
      usage();
      return false;
    }
    return true;
  };
  auto opened = ImageStore::open(a.data_dir);
  if (!opened.ok()) return fail(opened.status());
  ImageStore& store = **opened;

  if (cmd == "import") {
    if (!need(1, 1)) return 2;
    ImportOptions o;
    o.name = a.name;
    auto imgs = store.import(a.positional[0], o);
    if (!imgs.ok()) return fail(imgs.status());
    for (const auto& img : *imgs) {
      if (img.repo_tags.empty()) {
        std::printf("imported %s (untagged; --name REPO tags it)\n", img.id.c_str());
      }
      for (const auto& t : img.repo_tags)
        std::printf("imported %s (%s)\n", t.c_str(), img.id.c_str());
    }
    return 0;
  }
  if (cmd == "ls" || cmd == "list" || cmd == "images") {
    if (!need(0, 0)) return 2;
    auto imgs = store.list();
    if (!imgs.ok()) return fail(imgs.status());
    if (a.quiet) {
      for (const auto& img : *imgs) std::printf("%s\n", img.id.c_str());
      return 0;
    }
    std::vector<std::vector<std::string>> rows = {{"IMAGE", "TAG", "IMAGE ID", "SIZE"}};
    for (const auto& img : *imgs) {
      std::string size = human_size(img.size);
      for (const auto& t : img.repo_tags) {
        size_t colon = t.rfind(':');
        rows.push_back({t.substr(0, colon), t.substr(colon + 1), short_id(img.id), size});
      }
      if (img.repo_tags.empty()) {
        std::string repo = "<none>";
        if (!img.repo_digests.empty())
          repo = img.repo_digests[0].substr(0, img.repo_digests[0].find('@'));
        rows.push_back({repo, "<none>", short_id(img.id), size});
      }
    }
    print_table(rows);
    return 0;
  }
  if (cmd == "pull") {
    if (!need(1, 1)) return 2;
    PullOptions o;
    if (!a.username.empty() || !a.password.empty()) {
      o.credentials = RegistryCredentials{a.username, a.password, "", ""};
    }
    if (a.plain_http) o.plain_http = true;
    o.insecure_skip_tls_verify = a.insecure;
    PullProgressPrinter progress(stderr, ::isatty(STDERR_FILENO) == 1);
    o.progress = progress.callback();
    auto img = store.pull(a.positional[0], o);
    if (!img.ok()) return fail(img.status());
    std::printf("Image is up to date for %s\n", img->id.c_str());
    return 0;
  }
  if (cmd == "rm" || cmd == "rmi" || cmd == "remove") {
    if (!need(1, 1 << 20)) return 2;
    int rc = 0;
    for (const auto& ref : a.positional) {
      Status s = store.remove(ref);
      if (!s.ok()) {
        fail(s);
        rc = 1;
        continue;
      }
      std::printf("Deleted: %s\n", ref.c_str());
    }
    auto gc = store.gc();
    if (!gc.ok()) return fail(gc.status());
    return rc;
  }
  if (cmd == "inspect") {
    if (!need(1, 1)) return 2;
    auto img = store.get(a.positional[0]);
    if (!img.ok()) return fail(img.status());
    auto lowers = store.lower_dirs(img->id);
    nlohmann::json j = {{"id", img->id},
                        {"repoTags", img->repo_tags},
                        {"repoDigests", img->repo_digests},
                        {"size", img->size},
                        {"manifest", img->manifest_digest},
                        {"os", img->os},
                        {"architecture", img->architecture},
                        {"created", img->created},
                        {"diffIDs", img->diff_ids},
                        {"layerDirs", lowers.ok() ? *lowers : std::vector<std::string>{}},
                        {"config",
                         {{"Entrypoint", img->config.entrypoint},
                          {"Cmd", img->config.cmd},
                          {"Env", img->config.env},
                          {"WorkingDir", img->config.working_dir},
                          {"User", img->config.user},
                          {"ExposedPorts", img->config.exposed_ports},
                          {"Labels", img->config.labels},
                          {"StopSignal", img->config.stop_signal}}}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  if (cmd == "gc") {
    if (!need(0, 0)) return 2;
    auto gc = store.gc();
    if (!gc.ok()) return fail(gc.status());
    std::printf("removed %d blobs and %d layers, %s freed; %s in use\n", gc->removed_blobs,
                gc->removed_layers, human_size(gc->freed_bytes).c_str(),
                human_size(store.disk_usage()).c_str());
    return 0;
  }
  std::fprintf(stderr, "skiff image: unknown command \"%s\"\n", cmd.c_str());
  usage();
  return 2;
}

}  // namespace skiff::agent::images
