#include "agent/network/link.h"

#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace skiff::agent::network {

bool valid_link_name(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ || name == "." || name == "..") return false;
  for (char c : name) {
    if (c == '/' || c == ':' || c <= ' ' || c == 0x7f) return false;
  }
  return true;
}

bool link_exists(const std::string& name) {
  return valid_link_name(name) && ::if_nametoindex(name.c_str()) != 0;
}

Status delete_link(const std::string& name) {
  if (!valid_link_name(name)) return Status::Invalid("invalid interface name \"" + name + "\"");
  int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return Status::Internal(std::string("netlink socket: ") + std::strerror(errno));
  struct {
    nlmsghdr nh;
    ifinfomsg ifi;
    char attrs[64];
  } req{};
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg));
  req.nh.nlmsg_type = RTM_DELLINK;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  req.nh.nlmsg_seq = 1;
  req.ifi.ifi_family = AF_UNSPEC;
  auto* rta =
      reinterpret_cast<rtattr*>(reinterpret_cast<char*>(&req) + NLMSG_ALIGN(req.nh.nlmsg_len));
  rta->rta_type = IFLA_IFNAME;
  rta->rta_len = RTA_LENGTH(name.size() + 1);
  std::memcpy(RTA_DATA(rta), name.c_str(), name.size() + 1);
  req.nh.nlmsg_len = NLMSG_ALIGN(req.nh.nlmsg_len) + RTA_ALIGN(rta->rta_len);

  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd, &req, req.nh.nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof(kernel)) < 0) {
    int err = errno;
    ::close(fd);
    return Status::Internal("netlink send: " + std::string(std::strerror(err)));
  }
  char buf[4096];
  ssize_t n;
  do {
    n = ::recv(fd, buf, sizeof(buf), 0);
  } while (n < 0 && errno == EINTR);
  int err = n < 0 ? errno : 0;
  ::close(fd);
  if (n < 0) return Status::Internal("netlink receive: " + std::string(std::strerror(err)));
  auto* nh = reinterpret_cast<nlmsghdr*>(buf);
  if (!NLMSG_OK(nh, static_cast<unsigned>(n)) || nh->nlmsg_type != NLMSG_ERROR) {
    return Status::Internal("netlink: unexpected answer to deleting link " + name);
  }
  int code = -reinterpret_cast<nlmsgerr*>(NLMSG_DATA(nh))->error;
  if (code == 0 || code == ENODEV) return Status::Ok();
  return Status::Internal("delete link " + name + ": " + std::strerror(code));
}

}  // namespace skiff::agent::network
