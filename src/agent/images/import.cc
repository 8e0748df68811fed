// Importing images from OCI image layouts and docker-archives, as directories or tars.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "agent/images/digest.h"
#include "agent/images/libarchive.h"
#include "agent/images/fs_util.h"
#include "agent/images/reference.h"
#include "agent/images/store_internal.h"

namespace skiff::agent::images {
namespace {

using nlohmann::json;

bool is_file(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// `rel` under `dir`, refusing absolute paths and ".." (the archive names its own files).
Result<std::string> archive_path(const std::string& dir, const std::string& rel) {
  if (rel.empty() || rel.front() == '/') {
    return Status::Invalid("archive refers to \"" + rel + "\", outside the archive");
  }
  size_t i = 0;
  while (i <= rel.size()) {
    size_t j = rel.find('/', i);
    if (j == std::string::npos) j = rel.size();
    if (rel.compare(i, j - i, "..") == 0) {
      return Status::Invalid("archive refers to \"" + rel + "\", outside the archive");
    }
    i = j + 1;
  }
  return dir + "/" + rel;
}

struct FileDigest {
  std::string digest;
  int64_t size = 0;
  std::string magic;  // the first bytes, for the compression
};

// Hashes `src`; with `dst`, copies it there too (fsynced), reporting progress.
Result<FileDigest> hash_file(const std::string& src, const std::string* dst,
                             const BlobProgressFn* progress, const std::string& digest,
                             int64_t total) {
  int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    if (errno == ENOENT) return Status::Invalid("archive is missing " + src);
    return errno_status("open", src, errno);
  }
  int out = -1;
  if (dst) {
    out = ::open(dst->c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
      int err = errno;
      ::close(in);
      return errno_status("create", *dst, err);
    }
  }
  Sha256 h;
  FileDigest fd;
  std::vector<char> buf(1 << 16);
  Status s;
  while (true) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      s = errno_status("read", src, errno);
      break;
    }
    if (n == 0) break;
    if (fd.magic.size() < 8) {
      fd.magic.append(buf.data(), std::min<size_t>(8 - fd.magic.size(), static_cast<size_t>(n)));
    }
    h.update(buf.data(), static_cast<size_t>(n));
    fd.size += n;
    if (out >= 0) {
      ssize_t off = 0;
      while (off < n) {
        ssize_t w = ::write(out, buf.data() + off, static_cast<size_t>(n - off));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) break;
        off += w;
      }
      if (off < n) {
        s = errno_status("write", *dst, errno);
        break;
      }
      if (progress && *progress) (*progress)(digest, fd.size, total);
    }
  }
  if (s.ok() && out >= 0 && ::fsync(out) != 0) s = errno_status("fsync", *dst, errno);
  ::close(in);
  if (out >= 0) ::close(out);
  if (!s.ok()) return s;
  fd.digest = h.digest();
  return fd;
}

// Serves blobs from files: an OCI layout's blobs/sha256, or a docker-archive's named files.
class FileSource : public ContentSource {
 public:
  explicit FileSource(std::string layout_dir) : layout_dir_(std::move(layout_dir)) {}

  void add_file(const std::string& digest, const std::string& path) { files_[digest] = path; }
  void add_manifest(const std::string& digest, std::string body) {
    manifests_[digest] = std::move(body);
  }

  Result<FetchedManifest> manifest(const std::string& digest) override {
    FetchedManifest m;
    if (auto it = manifests_.find(digest); it != manifests_.end()) {
      m.body = it->second;
    } else {
      if (!is_valid_digest(digest)) return Status::Invalid("invalid digest \"" + digest + "\"");
      auto body = read_file(path_of(digest));
      if (!body.ok()) {
        if (body.status().is_not_found()) {
          return Status::Invalid("archive is missing manifest " + digest);
        }
        return body.status();
      }
      m.body = std::move(*body);
    }
    m.digest = sha256_digest(m.body);
    if (m.digest != digest) {
      return Status::Invalid("digest mismatch for manifest " + digest +
                             ": the archive's content has " + m.digest);
    }
    m.media_type = detect_media_type(m.body);
    return m;
  }

  Status blob(const Descriptor& d, const std::string& path,
              const BlobProgressFn& progress) override {
    auto fd = hash_file(path_of(d.digest), &path, &progress, d.digest, d.size);
    if (!fd.ok()) return fd.status();
    if (fd->digest != d.digest) {
      return Status::Invalid("digest mismatch for " + d.digest + ": the archive's content has " +
                             fd->digest);
    }
    if (d.size >= 0 && fd->size != d.size) {
      return Status::Invalid("size mismatch for " + d.digest + ": expected " +
                             std::to_string(d.size) + " bytes, the archive has " +
                             std::to_string(fd->size));
    }
    return Status::Ok();
  }

 private:
  std::string path_of(const std::string& digest) const {
    if (auto it = files_.find(digest); it != files_.end()) return it->second;
    return layout_dir_ + "/blobs/sha256/" + std::string(digest_hex(digest));
  }

  std::string layout_dir_;
  std::map<std::string, std::string> files_;
  std::map<std::string, std::string> manifests_;
};

Status add_name(const std::string& full, ImageNames& names) {
  auto r = parse_reference(full);
  if (!r.ok())
    return Status::Invalid("archive names its image \"" + full + "\": " + r.status().message());
  if (!r->tag.empty()) names.tags.push_back(r->tagged());
  names.repositories.push_back(r->name());
  return Status::Ok();
}

std::string layer_media_type(const std::string& magic) {
  if (magic.size() >= 2 && static_cast<unsigned char>(magic[0]) == 0x1f &&
      static_cast<unsigned char>(magic[1]) == 0x8b) {
    return std::string(kOciLayerGzip);
  }
  if (magic.size() >= 4 && magic.compare(0, 4, "\x28\xb5\x2f\xfd") == 0) {
    return std::string(kOciLayerZstd);
  }
  return std::string(kOciLayer);
}

}  // namespace

Result<std::vector<Image>> ImageStore::Impl::import_dir(const std::string& dir,
                                                        const ImportOptions& options) {
  std::vector<std::string> ids;
  bool oci = is_file(dir + "/index.json") &&
             (is_file(dir + "/oci-layout") || !is_file(dir + "/manifest.json"));
  if (oci) {
    auto text = read_file(dir + "/index.json");
    if (!text.ok()) return text.status();
    auto entries = parse_index(*text);
    if (!entries.ok()) return Status::Invalid("index.json: " + entries.status().message());
    if (entries->empty()) return Status::Invalid("index.json lists no images");
    FileSource src(dir);
    for (const auto& d : *entries) {
      ImageNames names;
      std::string full;
      if (auto it = d.annotations.find("io.containerd.image.name"); it != d.annotations.end()) {
        full = it->second;
      } else if (auto rn = d.annotations.find("org.opencontainers.image.ref.name");
                 rn != d.annotations.end()) {
        if (rn->second.find_first_of("/:@") != std::string::npos) {
          full = rn->second;
        } else if (!options.name.empty()) {
          full = options.name + ":" + rn->second;
        }
      } else if (!options.name.empty()) {
        full = options.name;
      }
      if (!full.empty()) {
        Status s = add_name(full, names);
        if (!s.ok()) return s;
      }
      auto id = ingest(src, d.digest, names, options.progress);
      if (!id.ok()) return id.status();
      ids.push_back(*id);
    }
  } else if (is_file(dir + "/manifest.json")) {
    auto text = read_file(dir + "/manifest.json");
    if (!text.ok()) return text.status();
    json j = json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.is_array() || j.empty()) {
      return Status::Invalid("manifest.json is not a list of images");
    }
    for (const auto& e : j) {
      if (!e.is_object() || !e.contains("Config") || !e["Config"].is_string() ||
          !e.contains("Layers") || !e["Layers"].is_array()) {
        return Status::Invalid("manifest.json: an entry lacks Config or Layers");
      }
      FileSource src(dir);
      auto config_path = archive_path(dir, e["Config"].get<std::string>());
      if (!config_path.ok()) return config_path.status();
      auto config = hash_file(*config_path, nullptr, nullptr, "", -1);
      if (!config.ok()) return config.status();
      src.add_file(config->digest, *config_path);
      json manifest = {
          {"schemaVersion", 2},
          {"mediaType", kOciManifest},
          {"config",
           {{"mediaType", kOciConfig}, {"digest", config->digest}, {"size", config->size}}},
          {"layers", json::array()}};
      for (const auto& l : e["Layers"]) {
        if (!l.is_string()) return Status::Invalid("manifest.json: a layer is not a path");
        auto layer_path = archive_path(dir, l.get<std::string>());
        if (!layer_path.ok()) return layer_path.status();
        auto layer = hash_file(*layer_path, nullptr, nullptr, "", -1);
        if (!layer.ok()) return layer.status();
        src.add_file(layer->digest, *layer_path);
        manifest["layers"].push_back({{"mediaType", layer_media_type(layer->magic)},
                                      {"digest", layer->digest},
                                      {"size", layer->size}});
      }
      std::string body = manifest.dump();
      std::string digest = sha256_digest(body);
      src.add_manifest(digest, body);
      ImageNames names;
      if (auto tags = e.find("RepoTags"); tags != e.end() && tags->is_array()) {
        for (const auto& t : *tags) {
          if (!t.is_string()) continue;
          Status s = add_name(t.get<std::string>(), names);
          if (!s.ok()) return s;
        }
      }
      // A manifest made up here is not the registry's: no repo digest.
      names.repositories.clear();
      auto id = ingest(src, digest, names, options.progress);
      if (!id.ok()) return id.status();
      ids.push_back(*id);
    }
  } else {
    return Status::Invalid(dir +
                           " is neither an OCI image layout (index.json) nor a "
                           "docker-archive (manifest.json)");
  }
  std::vector<Image> out;
  std::set<std::string> seen;
  for (const auto& id : ids) {
    if (!seen.insert(id).second) continue;
    auto img = image(id);
    if (!img.ok()) return img.status();
    out.push_back(std::move(*img));
  }
  return out;
}

Result<std::vector<Image>> ImageStore::Impl::import_tar(const std::string& file,
                                                        const ImportOptions& options) {
  if (Status s = load_libarchive(); !s.ok()) return s;
  std::string dir = tmp_path("import");
  if (::mkdir(dir.c_str(), 0700) != 0) return errno_status("mkdir", dir, errno);
  struct Cleanup {
    std::string dir;
    ~Cleanup() { remove_tree(dir); }
  } cleanup{dir};

  archive* a = la().read_new();
  la().read_support_filter_all(a);
  la().read_support_format_tar(a);
  struct Closer {
    archive* a;
    ~Closer() { la().read_free(a); }
  } closer{a};
  if (la().read_open_filename(a, file.c_str(), 1 << 16) != ARCHIVE_OK) {
    return Status::Invalid(file + ": " + la().error_string(a));
  }
  // Links are made after all files exist: docker save links identical layer.tar files.
  std::vector<std::pair<std::string, std::string>> links;  // (path, target), both cleaned
  auto clean = [](std::string_view p, std::string* out) {
    std::vector<std::string> comps;
    size_t i = 0;
    while (i <= p.size()) {
      size_t j = p.find('/', i);
      if (j == std::string_view::npos) j = p.size();
      std::string_view c = p.substr(i, j - i);
      if (c == "..") {
        if (comps.empty()) return false;
        comps.pop_back();
      } else if (!c.empty() && c != ".") {
        comps.emplace_back(c);
      }
      i = j + 1;
    }
    out->clear();
    for (const auto& c : comps) *out += (out->empty() ? "" : "/") + c;
    return true;
  };
  while (true) {
    archive_entry* e;
    int r = la().read_next_header(a, &e);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) return Status::Invalid(file + ": " + la().error_string(a));
    const char* name = la().entry_pathname(e);
    std::string rel;
    if (name == nullptr || !clean(name, &rel) || rel.empty()) continue;
    std::string path = dir + "/" + rel;
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    if (const char* hl = la().entry_hardlink(e)) {
      std::string target;
      if (clean(hl, &target)) links.emplace_back(rel, target);
      continue;
    }
    if (la().entry_filetype(e) == AE_IFLNK) {
      std::string parent = rel.find('/') == std::string::npos ? "" : rel.substr(0, rel.rfind('/'));
      const char* t = la().entry_symlink(e);
      std::string target;
      if (t && t[0] != '/' && clean(parent + "/" + t, &target)) links.emplace_back(rel, target);
      continue;
    }
    if (la().entry_filetype(e) == AE_IFDIR) {
      std::filesystem::create_directories(path, ec);
      continue;
    }
    if (la().entry_filetype(e) != AE_IFREG) continue;
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return errno_status("create", path, errno);
    int rc = la().read_data_into_fd(a, fd);
    ::close(fd);
    if (rc < ARCHIVE_WARN) return Status::Invalid(file + ": " + la().error_string(a));
  }
  for (const auto& [rel, target] : links) {
    std::string from = dir + "/" + target;
    std::string to = dir + "/" + rel;
    if (is_file(from) && ::link(from.c_str(), to.c_str()) != 0 && errno != EEXIST) {
      return errno_status("link", to, errno);
    }
  }
  return import_dir(dir, options);
}

}  // namespace skiff::agent::images
