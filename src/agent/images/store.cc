#include "agent/images/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "agent/images/digest.h"
#include "agent/images/fs_util.h"
#include "agent/images/layer.h"
#include "agent/images/reference.h"
#include "agent/images/store_internal.h"
#include "common/random.h"

namespace skiff::agent::images {
namespace {

using nlohmann::json;

constexpr const char* kIndexFile = "index.json";

Status make_dirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Status::Internal("create " + path + ": " + ec.message());
  return Status::Ok();
}

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      out.emplace_back(e->d_name);
    }
  }
  ::closedir(d);
  return out;
}

Result<json> read_index(const std::string& root) {
  auto text = read_file(root + "/" + kIndexFile);
  if (!text.ok()) {
    if (text.status().is_not_found())
      return json{{"images", json::object()}, {"tags", json::object()}};
    return text.status();
  }
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("images") || !j["images"].is_object() ||
      !j.contains("tags") || !j["tags"].is_object()) {
    return Status::Internal("image index " + root + "/" + kIndexFile + " is corrupt");
  }
  return j;
}

// Read-modify-write of the index under the index lock; `fn` changes the document or fails.
Status modify_index(const std::string& root, const std::function<Status(json&)>& fn) {
  FileLock lock(root + "/index.lock", /*exclusive=*/true);
  if (!lock.held()) return lock.status();
  auto idx = read_index(root);
  if (!idx.ok()) return idx.status();
  Status s = fn(*idx);
  if (!s.ok()) return s;
  return write_file_atomic(root + "/" + kIndexFile, idx->dump());
}

std::vector<std::string> strings_of(const json& j) {
  std::vector<std::string> out;
  if (j.is_array()) {
    for (const auto& v : j) {
      if (v.is_string()) out.push_back(v.get<std::string>());
    }
  }
  return out;
}

bool all_hex(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

// The image ID `ref` names in `idx`: an ID, an ID prefix (12+ hex digits), a digest reference
// or a tag. `whole` tells whether the reference names the image as a whole (ID or digest) or
// one of its tags (`tag` is then set). NotFound if none; Invalid if the ID prefix is ambiguous.
Result<std::string> resolve(const json& idx, std::string_view ref, bool* whole, std::string* tag) {
  const json& images = idx["images"];
  std::string_view hex = ref;
  if (hex.rfind("sha256:", 0) == 0) hex = hex.substr(7);
  if (all_hex(hex) && hex.size() >= 12 && hex.size() <= 64) {
    std::string found;
    for (const auto& [id, _] : images.items()) {
      if (digest_hex(id).substr(0, hex.size()) == hex) {
        if (!found.empty()) {
          return Status::Invalid("image ID prefix \"" + std::string(ref) + "\" is ambiguous");
        }
        found = id;
      }
    }
    if (!found.empty()) {
      *whole = true;
      return found;
    }
  }
  auto r = parse_reference(ref);
  if (!r.ok()) return Status::NotFound("image \"" + std::string(ref) + "\" not found");
  if (!r->digest.empty()) {
    std::string want = r->digested();
    for (const auto& [id, rec] : images.items()) {
      auto d = strings_of(rec.value("repo_digests", json::array()));
      if (std::find(d.begin(), d.end(), want) != d.end()) {
        *whole = true;
        return id;
      }
    }
    return Status::NotFound("image \"" + r->string() + "\" not found");
  }
  std::string t = r->tagged();
  auto it = idx["tags"].find(t);
  if (it == idx["tags"].end() || !it->is_string() || !images.contains(it->get<std::string>())) {
    return Status::NotFound("image \"" + t + "\" not found");
  }
  *whole = false;
  *tag = t;
  return it->get<std::string>();
}

}  // namespace

FileLock::FileLock(const std::string& path, bool exclusive, bool wait) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    status_ = errno_status("open", path, errno);
    return;
  }
  int op = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB);
  int rc;
  do {
    rc = ::flock(fd_, op);
  } while (rc != 0 && errno == EINTR);
  if (rc == 0) {
    held_ = true;
  } else {
    status_ = errno_status("lock", path, errno);
  }
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

std::string ImageStore::Impl::blob_path(const std::string& digest) const {
  return root + "/blobs/sha256/" + std::string(digest_hex(digest));
}

std::string ImageStore::Impl::layer_path(const std::string& diff_id) const {
  return root + "/layers/sha256/" + std::string(digest_hex(diff_id));
}

std::string ImageStore::Impl::tmp_path(const std::string& what) const {
  return root + "/tmp/" + what + "-" + random_hex(8);
}

Status ImageStore::Impl::put_blob_bytes(const std::string& digest, const std::string& bytes) {
  if (sha256_digest(bytes) != digest) {
    return Status::Invalid("digest mismatch for " + digest);
  }
  std::string path = blob_path(digest);
  if (exists(path)) return Status::Ok();
  return write_file_atomic(path, bytes);
}

Status ImageStore::Impl::ensure_blob(ContentSource& src, const Descriptor& d,
                                     const BlobProgressFn& progress, bool* existed) {
  std::string path = blob_path(d.digest);
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && (d.size < 0 || st.st_size == d.size)) {
    if (existed) *existed = true;
    if (progress) progress(d.digest, st.st_size, st.st_size);
    return Status::Ok();
  }
  std::string tmp = tmp_path("blob");
  Status s = src.blob(d, tmp, progress);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = errno_status("rename", tmp, errno);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  return sync_dir(root + "/blobs/sha256");
}

Status ImageStore::Impl::ensure_layer(const std::string& digest, const std::string& diff_id) {
  std::string final_dir = layer_path(diff_id);
  if (exists(final_dir)) return Status::Ok();
  std::string tmp = tmp_path("layer");
  if (::mkdir(tmp.c_str(), 0755) != 0) return errno_status("mkdir", tmp, errno);
  ::chmod(tmp.c_str(), 0755);
  auto unpacked = unpack_layer(blob_path(digest), tmp);
  Status s = unpacked.status();
  if (s.ok() && unpacked->diff_id != diff_id) {
    s = Status::Invalid("layer " + digest + " unpacks to " + unpacked->diff_id +
                        ", not the diff_id " + diff_id + " its image config names");
  }
  if (s.ok()) {
    // The files of a layer are not synced one by one: one syncfs before the rename makes the
    // whole tree durable before it becomes visible under its final name.
    int fd = ::open(tmp.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      ::syncfs(fd);
      ::close(fd);
    }
    if (::rename(tmp.c_str(), final_dir.c_str()) != 0) {
      // Another pull of an image sharing the layer got there first.
      if (errno != EEXIST && errno != ENOTEMPTY) s = errno_status("rename", tmp, errno);
    } else {
      s = sync_dir(root + "/layers/sha256");
    }
  }
  if (exists(tmp)) remove_tree(tmp);
  return s;
}

Result<std::string> ImageStore::Impl::ingest(ContentSource& src, const std::string& top,
                                             const ImageNames& names, const ProgressFn& progress) {
  bool existed = false;  // of the layer blob being ensured
  BlobProgressFn blob_progress;
  if (progress) {
    blob_progress = [&progress, &existed](const std::string& digest, int64_t done, int64_t total) {
      progress(LayerProgress{digest, done, total, existed});
    };
  }
  auto top_manifest = src.manifest(top);
  if (!top_manifest.ok()) return top_manifest.status();
  std::vector<std::string> blobs;
  int64_t size = 0;
  Status s = put_blob_bytes(top_manifest->digest, top_manifest->body);
  if (!s.ok()) return s;
  blobs.push_back(top_manifest->digest);
  size += static_cast<int64_t>(top_manifest->body.size());
  FetchedManifest platform_manifest = *top_manifest;
  if (is_index_media_type(top_manifest->media_type)) {
    auto entries = parse_index(top_manifest->body);
    if (!entries.ok()) return entries.status();
    auto chosen = select_platform(*entries, "linux", host_architecture());
    if (!chosen.ok()) return chosen.status();
    auto m = src.manifest(chosen->digest);
    if (!m.ok()) return m.status();
    if (!is_manifest_media_type(m->media_type)) {
      return Status::Invalid("manifest " + m->digest + " has unsupported media type \"" +
                             m->media_type + "\"");
    }
    s = put_blob_bytes(m->digest, m->body);
    if (!s.ok()) return s;
    blobs.push_back(m->digest);
    size += static_cast<int64_t>(m->body.size());
    platform_manifest = std::move(*m);
  } else if (!is_manifest_media_type(top_manifest->media_type)) {
    return Status::Invalid("manifest " + top_manifest->digest + " has unsupported media type \"" +
                           top_manifest->media_type + "\"");
  }
  auto manifest = parse_manifest(platform_manifest.body);
  if (!manifest.ok()) return manifest.status();
  s = ensure_blob(src, manifest->config, nullptr);
  if (!s.ok()) return s;
  auto config_bytes = read_file(blob_path(manifest->config.digest));
  if (!config_bytes.ok()) return config_bytes.status();
  auto config = parse_config(*config_bytes);
  if (!config.ok()) return config.status();
  if (config->diff_ids.size() != manifest->layers.size()) {
    return Status::Invalid("image config " + manifest->config.digest + " lists " +
                           std::to_string(config->diff_ids.size()) + " layers, its manifest " +
                           std::to_string(manifest->layers.size()));
  }
  blobs.push_back(manifest->config.digest);
  size += static_cast<int64_t>(config_bytes->size());
  json layers = json::array();
  for (size_t i = 0; i < manifest->layers.size(); ++i) {
    const Descriptor& l = manifest->layers[i];
    existed = false;
    s = ensure_blob(src, l, blob_progress, &existed);
    if (!s.ok()) return s;
    s = ensure_layer(l.digest, config->diff_ids[i]);
    if (!s.ok()) return s;
    struct stat st;
    int64_t lsize = ::stat(blob_path(l.digest).c_str(), &st) == 0 ? st.st_size : l.size;
    size += lsize;
    blobs.push_back(l.digest);
    layers.push_back({{"digest", l.digest}, {"diff_id", config->diff_ids[i]}, {"size", lsize}});
  }
  const std::string id = manifest->config.digest;
  s = modify_index(root, [&](json& idx) {
    json& rec = idx["images"][id];
    std::set<std::string> digests;
    std::set<std::string> all_blobs(blobs.begin(), blobs.end());
    if (rec.is_object()) {
      for (auto& d : strings_of(rec["repo_digests"])) digests.insert(d);
      for (auto& b : strings_of(rec["blobs"])) all_blobs.insert(b);
    }
    for (const auto& repo : names.repositories) digests.insert(repo + "@" + top_manifest->digest);
    rec = json{{"manifest", platform_manifest.digest},
               {"blobs", std::vector<std::string>(all_blobs.begin(), all_blobs.end())},
               {"layers", layers},
               {"size", size},
               {"repo_digests", std::vector<std::string>(digests.begin(), digests.end())}};
    for (const auto& t : names.tags) idx["tags"][t] = id;
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return id;
}

ImageStore::ImageStore() : impl_(std::make_unique<Impl>()) {}
ImageStore::~ImageStore() = default;

const std::string& ImageStore::root() const { return impl_->root; }

Result<std::unique_ptr<ImageStore>> ImageStore::open(const std::string& data_dir) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  std::string base = std::filesystem::weakly_canonical(data_dir, ec).string();
  if (ec || base.empty()) base = data_dir;
  std::unique_ptr<ImageStore> store(new ImageStore());
  Impl& impl = *store->impl_;
  impl.root = base + "/images";
  for (const char* sub : {"/blobs/sha256", "/layers/sha256", "/tmp"}) {
    Status s = make_dirs(impl.root + sub);
    if (!s.ok()) return s;
  }
  auto idx = read_index(impl.root);
  if (!idx.ok()) return idx.status();
  // Leftovers of writes a crash interrupted; only when no pull or import is running.
  FileLock gc_lock(impl.root + "/gc.lock", /*exclusive=*/true, /*wait=*/false);
  if (gc_lock.held()) {
    for (const auto& name : list_dir(impl.root + "/tmp")) remove_tree(impl.root + "/tmp/" + name);
    for (const std::string& dir : {impl.root, impl.root + "/blobs/sha256"}) {
      for (const auto& name : list_dir(dir)) {
        if (name.find(".tmp-") != std::string::npos) ::unlink((dir + "/" + name).c_str());
      }
    }
  }
  return store;
}

namespace {

Result<Image> build_image(const ImageStore::Impl& impl, const json& idx, const std::string& id) {
  const json& rec = idx["images"][id];
  Image img;
  img.id = id;
  img.manifest_digest = rec.value("manifest", "");
  img.size = rec.value("size", int64_t{0});
  img.repo_digests = strings_of(rec.value("repo_digests", json::array()));
  for (const auto& [t, v] : idx["tags"].items()) {
    if (v.is_string() && v.get<std::string>() == id) img.repo_tags.push_back(t);
  }
  std::sort(img.repo_tags.begin(), img.repo_tags.end());
  std::sort(img.repo_digests.begin(), img.repo_digests.end());
  auto bytes = read_file(impl.blob_path(id));
  if (!bytes.ok()) {
    return Status::Internal("config " + id +
                            " of an image is missing: " + bytes.status().message());
  }
  auto cfg = parse_config(*bytes);
  if (!cfg.ok()) return cfg.status();
  img.config = std::move(cfg->config);
  img.diff_ids = std::move(cfg->diff_ids);
  img.os = std::move(cfg->os);
  img.architecture = std::move(cfg->architecture);
  img.created = std::move(cfg->created);
  return img;
}

class RegistrySource : public ContentSource {
 public:
  RegistrySource(const ImageReference& ref, RegistryOptions options)
      : client_(ref.domain, ref.repository, std::move(options)) {}
  Result<FetchedManifest> manifest(const std::string& tag_or_digest) override {
    return client_.get_manifest(tag_or_digest);
  }
  Status blob(const Descriptor& d, const std::string& path,
              const BlobProgressFn& progress) override {
    return client_.get_blob(d, path, progress);
  }

 private:
  RegistryClient client_;
};

}  // namespace

Result<Image> ImageStore::Impl::image(const std::string& id) const {
  auto idx = read_index(root);
  if (!idx.ok()) return idx.status();
  if (!(*idx)["images"].contains(id)) return Status::NotFound("image " + id + " not found");
  return build_image(*this, *idx, id);
}

Result<Image> ImageStore::get(std::string_view ref) const {
  auto idx = read_index(impl_->root);
  if (!idx.ok()) return idx.status();
  bool whole = false;
  std::string tag;
  auto id = resolve(*idx, ref, &whole, &tag);
  if (!id.ok()) return id.status();
  return build_image(*impl_, *idx, *id);
}

Result<std::vector<Image>> ImageStore::list() const {
  auto idx = read_index(impl_->root);
  if (!idx.ok()) return idx.status();
  std::vector<Image> out;
  for (const auto& [id, _] : (*idx)["images"].items()) {
    auto img = build_image(*impl_, *idx, id);
    if (!img.ok()) return img.status();
    out.push_back(std::move(*img));
  }
  std::sort(out.begin(), out.end(), [](const Image& a, const Image& b) {
    if (a.repo_tags.empty() != b.repo_tags.empty()) return !a.repo_tags.empty();
    if (!a.repo_tags.empty() && a.repo_tags[0] != b.repo_tags[0]) {
      return a.repo_tags[0] < b.repo_tags[0];
    }
    return a.id < b.id;
  });
  return out;
}

Result<Image> ImageStore::pull(std::string_view ref_text, const PullOptions& options) {
  auto ref = parse_reference(ref_text);
  if (!ref.ok()) return ref.status();
  const std::string key = ref->string();
  std::promise<Result<Image>> promise;
  {
    std::unique_lock<std::mutex> lock(impl_->mu);
    auto it = impl_->pulls.find(key);
    if (it != impl_->pulls.end()) {
      auto shared = it->second;
      lock.unlock();
      return shared.get();
    }
    impl_->pulls.emplace(key, promise.get_future().share());
  }
  auto run = [&]() -> Result<Image> {
    FileLock gc_lock(impl_->root + "/gc.lock", /*exclusive=*/false);
    if (!gc_lock.held()) return gc_lock.status();
    RegistryOptions ro;
    ro.credentials = options.credentials;
    ro.plain_http = options.plain_http;
    ro.ca_file = options.ca_file;
    ro.insecure_skip_tls_verify = options.insecure_skip_tls_verify;
    RegistrySource src(*ref, std::move(ro));
    ImageNames names;
    if (!ref->tag.empty() && ref->digest.empty()) names.tags.push_back(ref->tagged());
    names.repositories.push_back(ref->name());
    const std::string top = ref->digest.empty() ? ref->tag : ref->digest;
    auto id = impl_->ingest(src, top, names, options.progress);
    if (!id.ok()) return id.status();
    return get(*id);
  };
  Result<Image> result = run();
  if (!result.ok()) {
    result = Status(result.status().code(),
                    "failed to pull image \"" + key + "\": " + result.status().message());
  }
  promise.set_value(result);
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->pulls.erase(key);
  return result;
}

Result<std::vector<std::string>> ImageStore::lower_dirs(std::string_view ref) {
  auto idx = read_index(impl_->root);
  if (!idx.ok()) return idx.status();
  bool whole = false;
  std::string tag;
  auto id = resolve(*idx, ref, &whole, &tag);
  if (!id.ok()) return id.status();
  const json& layers = (*idx)["images"][*id]["layers"];
  std::vector<std::string> out;
  FileLock gc_lock(impl_->root + "/gc.lock", /*exclusive=*/false);
  if (!gc_lock.held()) return gc_lock.status();
  for (const auto& l : layers) {
    std::string digest = l.value("digest", "");
    std::string diff_id = l.value("diff_id", "");
    if (!is_valid_digest(digest) || !is_valid_digest(diff_id)) {
      return Status::Internal("image " + *id + " has a corrupt layer record");
    }
    std::string dir = impl_->layer_path(diff_id);
    if (!exists(dir)) {
      if (!exists(impl_->blob_path(digest))) {
        return Status::NotFound("layer " + digest + " of image " + *id +
                                " is missing; pull or import the image again");
      }
      Status s = impl_->ensure_layer(digest, diff_id);
      if (!s.ok()) return s;
    }
    out.push_back(dir);
  }
  std::reverse(out.begin(), out.end());
  return out;
}

Status ImageStore::remove(std::string_view ref,
                          const std::function<bool(const std::string& image_id)>& in_use) {
  FileLock gc_lock(impl_->root + "/gc.lock", /*exclusive=*/false);
  if (!gc_lock.held()) return gc_lock.status();
  return modify_index(impl_->root, [&](json& idx) {
    bool whole = false;
    std::string tag;
    auto id = resolve(idx, ref, &whole, &tag);
    if (!id.ok()) return id.status();
    json& tags = idx["tags"];
    int other_tags = 0;
    for (const auto& [t, v] : tags.items()) {
      if (v.is_string() && v.get<std::string>() == *id && t != tag) ++other_tags;
    }
    if (!whole && other_tags > 0) {
      tags.erase(tag);
      return Status::Ok();
    }
    if (in_use && in_use(*id)) {
      return Status::Conflict("unable to remove image \"" + std::string(ref) + "\" (" + *id +
                              "): it is in use by a container");
    }
    for (auto it = tags.begin(); it != tags.end();) {
      if (it->is_string() && it->get<std::string>() == *id) {
        it = tags.erase(it);
      } else {
        ++it;
      }
    }
    idx["images"].erase(*id);
    return Status::Ok();
  });
}

Result<GcResult> ImageStore::gc() {
  FileLock gc_lock(impl_->root + "/gc.lock", /*exclusive=*/true);
  if (!gc_lock.held()) return gc_lock.status();
  // The index lock too, so that no record appears while the unreferenced set is computed.
  FileLock index_lock(impl_->root + "/index.lock", /*exclusive=*/true);
  if (!index_lock.held()) return index_lock.status();
  auto idx = read_index(impl_->root);
  if (!idx.ok()) return idx.status();
  std::set<std::string> blobs;
  std::set<std::string> layers;
  for (const auto& [id, rec] : (*idx)["images"].items()) {
    blobs.insert(std::string(digest_hex(id)));
    for (const auto& b : strings_of(rec.value("blobs", json::array()))) {
      if (is_valid_digest(b)) blobs.insert(std::string(digest_hex(b)));
    }
    for (const auto& l : rec.value("layers", json::array())) {
      std::string d = l.value("diff_id", "");
      if (is_valid_digest(d)) layers.insert(std::string(digest_hex(d)));
      std::string b = l.value("digest", "");
      if (is_valid_digest(b)) blobs.insert(std::string(digest_hex(b)));
    }
  }
  GcResult out;
  auto sweep = [&](const std::string& dir, const std::set<std::string>& keep, int* count) {
    for (const auto& name : list_dir(dir)) {
      if (keep.count(name)) continue;
      std::string path = dir + "/" + name;
      int64_t bytes = tree_disk_usage(path);
      Status s = remove_tree(path);
      if (!s.ok()) return s;
      out.freed_bytes += bytes;
      if (count) ++*count;
    }
    return Status::Ok();
  };
  Status s = sweep(impl_->root + "/blobs/sha256", blobs, &out.removed_blobs);
  if (s.ok()) s = sweep(impl_->root + "/layers/sha256", layers, &out.removed_layers);
  if (s.ok()) s = sweep(impl_->root + "/tmp", {}, nullptr);
  if (!s.ok()) return s;
  return out;
}

int64_t ImageStore::disk_usage() const { return tree_disk_usage(impl_->root); }

Result<std::vector<Image>> ImageStore::import(const std::string& path,
                                              const ImportOptions& options) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return Status::NotFound("import: " + path + ": " + std::strerror(errno));
  }
  FileLock gc_lock(impl_->root + "/gc.lock", /*exclusive=*/false);
  if (!gc_lock.held()) return gc_lock.status();
  if (S_ISDIR(st.st_mode)) return impl_->import_dir(path, options);
  return impl_->import_tar(path, options);
}

}  // namespace skiff::agent::images
