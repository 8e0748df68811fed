// Builds small images for the image store's tests: ustar layers in memory, an image config
// and manifest, written as an OCI image layout or a docker-archive, plus helpers to run
// commands and make temporary directories.
#pragma once

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "agent/images/digest.h"
#include "agent/images/oci.h"

namespace skiff::agent::images::testing {

struct TarEntry {
  std::string name;
  char type = '0';  // 'x' PAX header, '0' file, '1' hard link, '2' symlink, '3' char device, '5'
                    // dir, '6' fifo
  std::string content;
  std::string link;
  int mode = 0644;
  int uid = 0;
  int gid = 0;
  int dev_major = 0;
  int dev_minor = 0;
};

inline void put_octal(char* field, size_t len, uint64_t v) {
  std::snprintf(field, len, "%0*llo", static_cast<int>(len - 1),
                static_cast<unsigned long long>(v));
}

// A ustar archive of `entries`, ending with the two zero blocks.
inline std::string make_tar(const std::vector<TarEntry>& entries) {
  std::string out;
  for (const auto& e : entries) {
    char h[512] = {};
    std::string name = e.name;
    if (name.size() > 100) {
      size_t split = name.rfind('/', 155);
      if (split == std::string::npos || split > 155) split = 155;  // no '/' to split at
      std::memcpy(h + 345, name.data(), split);
      name = name.substr(split + 1);
    }
    std::memcpy(h, name.data(), name.size());
    put_octal(h + 100, 8, static_cast<uint64_t>(e.mode));
    put_octal(h + 108, 8, static_cast<uint64_t>(e.uid));
    put_octal(h + 116, 8, static_cast<uint64_t>(e.gid));
    const bool has_data = e.type == '0' || e.type == 'x';
    put_octal(h + 124, 12, has_data ? e.content.size() : 0);
    put_octal(h + 136, 12, 1700000000);
    h[156] = e.type;
    std::memcpy(h + 157, e.link.data(), std::min<size_t>(e.link.size(), 100));
    std::memcpy(h + 257, "ustar", 6);
    std::memcpy(h + 263, "00", 2);
    put_octal(h + 329, 8, static_cast<uint64_t>(e.dev_major));
    put_octal(h + 337, 8, static_cast<uint64_t>(e.dev_minor));
    std::memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    std::snprintf(h + 148, 8, "%06o", sum);
    h[155] = ' ';
    out.append(h, 512);
    if (has_data) {
      out += e.content;
      out.append((512 - e.content.size() % 512) % 512, '\0');
    }
  }
  out.append(1024, '\0');
  return out;
}

inline std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void write_all(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << bytes;
}

// Runs a shell command; returns its exit code, with its output in *out when given.
inline int run(const std::string& cmd, std::string* out = nullptr) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return -1;
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
  int rc = ::pclose(p);
  if (out) *out = text;
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

inline bool have_program(const std::string& name) {
  return run("command -v " + name + " >/dev/null") == 0;
}

// gzip of `bytes`, through gzip(1) (-n: no name or time, so the result is reproducible).
inline std::string gzip(const std::string& bytes, const std::string& scratch_dir) {
  std::string in = scratch_dir + "/gz-in";
  write_all(in, bytes);
  run("gzip -n -f " + in);
  std::string out = read_all(in + ".gz");
  std::filesystem::remove(in + ".gz");
  return out;
}

// A temporary directory removed (recursively) when the object goes.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "skiff-images-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct Blob {
  std::string media_type;
  std::string bytes;
  std::string digest() const { return sha256_digest(bytes); }
};

// An image: its layers (bottom-most first, as stored: possibly gzip'd), the uncompressed
// tars, config and manifest.
struct TestImage {
  std::vector<Blob> layers;
  std::vector<std::string> tars;
  Blob config;
  Blob manifest;

  // Writes an OCI image layout; `ref_name` goes into org.opencontainers.image.ref.name.
  void write_oci_layout(const std::string& dir, const std::string& ref_name) const {
    auto put = [&](const Blob& b) {
      write_all(dir + "/blobs/sha256/" + b.digest().substr(7), b.bytes);
    };
    for (const auto& l : layers) put(l);
    put(config);
    put(manifest);
    write_all(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
    nlohmann::json index = {
        {"schemaVersion", 2},
        {"mediaType", kOciIndex},
        {"manifests",
         {{{"mediaType", kOciManifest},
           {"digest", manifest.digest()},
           {"size", manifest.bytes.size()},
           {"annotations", {{"org.opencontainers.image.ref.name", ref_name}}}}}}};
    write_all(dir + "/index.json", index.dump());
  }

  // Writes a docker-archive directory as `docker save` lays it out (uncompressed layer.tar
  // files, <hex>.json config, manifest.json).
  void write_docker_archive(const std::string& dir, const std::string& repo_tag) const {
    nlohmann::json m = {{"Config", config.digest().substr(7) + ".json"},
                        {"RepoTags", {repo_tag}},
                        {"Layers", nlohmann::json::array()}};
    write_all(dir + "/" + config.digest().substr(7) + ".json", config.bytes);
    for (size_t i = 0; i < tars.size(); ++i) {
      std::string rel = "layer" + std::to_string(i) + "/layer.tar";
      write_all(dir + "/" + rel, tars[i]);
      m["Layers"].push_back(rel);
    }
    write_all(dir + "/manifest.json", nlohmann::json::array({m}).dump());
  }
};

// An image of the given layer tars (gzip'd where `gzipped`), with a config naming them.
inline TestImage make_image(const std::vector<std::string>& tars, const std::vector<bool>& gzipped,
                            const std::string& scratch, nlohmann::json runtime_config = {}) {
  TestImage img;
  img.tars = tars;
  nlohmann::json diff_ids = nlohmann::json::array();
  for (size_t i = 0; i < tars.size(); ++i) {
    diff_ids.push_back(sha256_digest(tars[i]));
    bool gz = i < gzipped.size() && gzipped[i];
    img.layers.push_back(
        {std::string(gz ? kOciLayerGzip : kOciLayer), gz ? gzip(tars[i], scratch) : tars[i]});
  }
  if (runtime_config.is_null()) runtime_config = nlohmann::json::object();
  nlohmann::json config = {{"architecture", host_architecture()},
                           {"os", "linux"},
                           {"created", "2024-01-02T03:04:05Z"},
                           {"config", runtime_config},
                           {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
  img.config = {std::string(kOciConfig), config.dump()};
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : img.layers) {
    layers.push_back(
        {{"mediaType", l.media_type}, {"digest", l.digest()}, {"size", l.bytes.size()}});
  }
  nlohmann::json manifest = {{"schemaVersion", 2},
                             {"mediaType", kOciManifest},
                             {"config",
                              {{"mediaType", kOciConfig},
                               {"digest", img.config.digest()},
                               {"size", img.config.bytes.size()}}},
                             {"layers", layers}};
  img.manifest = {std::string(kOciManifest), manifest.dump()};
  return img;
}

// The busybox image of these tests: layer 1 (gzip) a busybox rootfs; layer 2 (plain tar)
// deletes data/old.txt with a whiteout, replaces opq/ with an opaque directory holding only
// z.txt, and changes etc/hostname.
inline TestImage busybox_image(const std::string& scratch) {
  std::string busybox = read_all("/bin/busybox");
  std::vector<TarEntry> l1 = {
      {"bin/", '5', "", "", 0755},
      {"bin/busybox", '0', busybox, "", 0755},
      {"bin/sh", '2', "", "busybox", 0777},
      {"bin/cat", '2', "", "/bin/busybox", 0777},
      {"etc/", '5', "", "", 0755},
      {"etc/hostname", '0', "layer1\n", "", 0644},
      {"etc/passwd", '0', "root:x:0:0:root:/root:/bin/sh\n", "", 0644},
      {"data/", '5', "", "", 0750, 1000, 1000},
      {"data/old.txt", '0', "old\n", "", 0644},
      {"data/keep.txt", '0', "keep\n", "", 0600, 1000, 1000},
      {"data/keep-link.txt", '1', "", "data/keep.txt", 0600, 1000, 1000},
      {"opq/", '5', "", "", 0755},
      {"opq/x.txt", '0', "x\n", "", 0644},
      {"opq/y.txt", '0', "y\n", "", 0644},
      {"dev/", '5', "", "", 0755},
      {"dev/null", '3', "", "", 0666, 0, 0, 1, 3},
      {"tmp/", '5', "", "", 01777},
      {"usr/bin/setuid-tool", '0', "#!/bin/sh\n", "", 04755},
  };
  std::vector<TarEntry> l2 = {
      {"data/", '5', "", "", 0750, 1000, 1000},
      {"data/.wh.old.txt", '0', "", "", 0644},
      {"opq/", '5', "", "", 0755},
      {"opq/.wh..wh..opq", '0', "", "", 0644},
      {"opq/z.txt", '0', "z\n", "", 0644},
      {"etc/hostname", '0', "layer2\n", "", 0644},
  };
  nlohmann::json rc = {{"Entrypoint", {"/bin/sh"}},
                       {"Cmd", {"-c", "echo hi"}},
                       {"Env", {"PATH=/bin:/usr/bin", "FOO=bar"}},
                       {"WorkingDir", "/data"},
                       {"User", "1000:1000"},
                       {"ExposedPorts", {{"8080/tcp", nlohmann::json::object()}}}};
  return make_image({make_tar(l1), make_tar(l2)}, {true, false}, scratch, rc);
}

}  // namespace skiff::agent::images::testing
