#include "agent/network/pod_dns_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/random.h"

namespace skiff::agent::network {
namespace {

constexpr size_t kMaxNameservers = 3;   // what the resolver reads (MAXNS)
constexpr size_t kMaxSearchPaths = 32;  // the kubelet's MaxDNSSearchPaths

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Internal("read " + path + ": " + std::strerror(errno));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void append_unique(std::vector<std::string>* to, const std::vector<std::string>& from) {
  for (const auto& v : from) {
    if (!v.empty() && std::find(to->begin(), to->end(), v) == to->end()) to->push_back(v);
  }
}

void merge_options(std::vector<DnsOption>* to, const std::vector<DnsOption>& from) {
  for (const auto& o : from) {
    auto it =
        std::find_if(to->begin(), to->end(), [&](const DnsOption& e) { return e.name == o.name; });
    if (it != to->end()) {
      *it = o;
    } else if (!o.name.empty()) {
      to->push_back(o);
    }
  }
}

// Reads the nameserver, search/domain and options lines of a resolv.conf.
PodDnsConfig parse_resolv_conf(const std::string& text) {
  PodDnsConfig c;
  std::vector<std::string> domain;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto hash = line.find_first_of("#;");
    if (hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string key, word;
    if (!(words >> key)) continue;
    std::vector<std::string> values;
    while (words >> word) values.push_back(word);
    if (key == "nameserver" && !values.empty()) {
      c.nameservers.push_back(values[0]);
    } else if (key == "search") {
      c.searches = values;  // the last search line wins, as in the resolver
      domain.clear();
    } else if (key == "domain" && !values.empty()) {
      domain = {values[0]};
    } else if (key == "options") {
      for (const auto& v : values) {
        auto colon = v.find(':');
        if (colon == std::string::npos) {
          merge_options(&c.options, {DnsOption{v, std::nullopt}});
        } else {
          merge_options(&c.options, {DnsOption{v.substr(0, colon), v.substr(colon + 1)}});
        }
      }
    }
  }
  if (c.searches.empty()) c.searches = domain;
  return c;
}

std::string format_resolv_conf(const PodDnsConfig& c) {
  std::string out;
  if (!c.searches.empty()) {
    out += "search";
    for (const auto& s : c.searches) out += " " + s;
    out += "\n";
  }
  for (const auto& n : c.nameservers) out += "nameserver " + n + "\n";
  if (!c.options.empty()) {
    out += "options";
    for (const auto& o : c.options) out += " " + o.name + (o.value ? ":" + *o.value : "");
    out += "\n";
  }
  return out;
}

}  // namespace

Result<std::string> render_hosts_file(const PodHostsConfig& config) {
  std::string out;
  if (config.host_network) {
    auto host = read_file(config.host_hosts_file);
    if (!host.ok()) return host.status();
    out = "# Kubernetes-managed hosts file (host network).\n" + *host;
    if (!out.empty() && out.back() != '\n') out += "\n";
  } else {
    out =
        "# Kubernetes-managed hosts file.\n"
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\n"
        "fe00::0\tip6-mcastprefix\n"
        "fe00::1\tip6-allnodes\n"
        "fe00::2\tip6-allrouters\n";
    if (!config.pod_ip.empty() && !config.hostname.empty()) {
      out += config.pod_ip + "\t";
      if (!config.subdomain.empty()) {
        out += config.hostname + "." + config.subdomain + "." + config.pod_namespace + ".svc." +
               config.cluster_domain + "\t";
      }
      out += config.hostname + "\n";
    }
  }
  if (!config.host_aliases.empty()) {
    out += "\n# Entries added by HostAliases.\n";
    for (const auto& alias : config.host_aliases) {
      if (alias.ip.empty() || alias.hostnames.empty()) continue;
      out += alias.ip;
      for (const auto& h : alias.hostnames) out += "\t" + h;
      out += "\n";
    }
  }
  return out;
}

Result<std::string> render_resolv_conf(const PodResolvConfig& config) {
  std::string policy = config.dns_policy.empty() ? "ClusterFirst" : config.dns_policy;
  if (policy != "ClusterFirst" && policy != "ClusterFirstWithHostNet" && policy != "Default" &&
      policy != "None") {
    return Status::Invalid("unsupported dnsPolicy \"" + policy +
                           "\": want ClusterFirst, ClusterFirstWithHostNet, Default or None");
  }
  if (policy == "ClusterFirst" && config.host_network) policy = "Default";
  if ((policy == "ClusterFirst" || policy == "ClusterFirstWithHostNet") &&
      config.cluster_dns.empty()) {
    policy = "Default";
  }
  PodDnsConfig c;
  if (policy == "None") {
    if (!config.dns_config) {
      return Status::Invalid("dnsPolicy None needs dnsConfig");
    }
  } else if (policy == "Default") {
    auto host = read_file(config.host_resolv_conf);
    if (!host.ok()) return host.status();
    c = parse_resolv_conf(*host);
  } else {
    const std::string& d = config.cluster_domain;
    c.nameservers = {config.cluster_dns};
    c.searches = {config.pod_namespace + ".svc." + d, "svc." + d, d};
    if (config.pod_namespace.empty()) c.searches.erase(c.searches.begin());
    c.options = {DnsOption{"ndots", "5"}};
  }
  if (config.dns_config) {
    append_unique(&c.nameservers, config.dns_config->nameservers);
    append_unique(&c.searches, config.dns_config->searches);
    merge_options(&c.options, config.dns_config->options);
  }
  if (c.nameservers.size() > kMaxNameservers) c.nameservers.resize(kMaxNameservers);
  if (c.searches.size() > kMaxSearchPaths) c.searches.resize(kMaxSearchPaths);
  return format_resolv_conf(c);
}

namespace {

// Writes all of `content` to fd: 0, or the errno of the failure.
int write_all(int fd, const std::string& content) {
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    done += static_cast<size_t>(n);
  }
  return 0;
}

}  // namespace

Status write_file_atomically(const std::string& path, const std::string& content, bool sync) {
  std::string tmp = path + ".tmp-" + random_hex(4);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::Internal("create " + tmp + ": " + std::strerror(errno));
  if (int err = write_all(fd, content); err != 0) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return Status::Internal("write " + tmp + ": " + std::strerror(err));
  }
  ::fchmod(fd, 0644);  // whatever the umask
  if ((sync && ::fsync(fd) != 0) || ::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Status::Internal("sync " + tmp + ": " + std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Status::Internal("rename " + tmp + " to " + path + ": " + std::strerror(err));
  }
  return Status::Ok();
}

Status overwrite_file_in_place(const std::string& path, const std::string& content) {
  int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return Status::NotFound(path + " does not exist");
    return Status::Internal("open " + path + ": " + std::strerror(err));
  }
  if (int err = write_all(fd, content); err != 0) {
    ::close(fd);
    return Status::Internal("write " + path + ": " + std::strerror(err));
  }
  if (::close(fd) != 0) return Status::Internal("close " + path + ": " + std::strerror(errno));
  return Status::Ok();
}

Status update_pod_hosts_file(const std::string& pod_dir, const PodHostsConfig& hosts) {
  auto text = render_hosts_file(hosts);
  if (!text.ok()) return text.status();
  return overwrite_file_in_place(pod_dir + "/etc-hosts", *text);
}

Result<PodDnsFiles> write_pod_dns_files(const std::string& pod_dir, const PodHostsConfig& hosts,
                                        const PodResolvConfig& resolv) {
  if (::mkdir(pod_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return Status::Internal("mkdir " + pod_dir + ": " + std::strerror(errno));
  }
  auto hosts_text = render_hosts_file(hosts);
  if (!hosts_text.ok()) return hosts_text.status();
  auto resolv_text = render_resolv_conf(resolv);
  if (!resolv_text.ok()) return resolv_text.status();
  PodDnsFiles files{pod_dir + "/etc-hosts", pod_dir + "/resolv.conf", pod_dir + "/hostname"};
  // Not synced: the files are derived from the pod and written again whenever its sandbox
  // is, as the kubelet writes them; the rename keeps readers from seeing half a file.
  if (Status s = write_file_atomically(files.hosts, *hosts_text, false); !s.ok()) return s;
  if (Status s = write_file_atomically(files.resolv_conf, *resolv_text, false); !s.ok()) return s;
  if (Status s = write_file_atomically(files.hostname, hosts.hostname + "\n", false); !s.ok()) {
    return s;
  }
  return files;
}

}  // namespace skiff::agent::network
