// How the gateway's data-plane sockets sit in its event loops, read from the kernel's own
// account of every epoll set of the process (/proc/PID/fdinfo): what a socket is
// registered for decides what wakes a worker.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "tests/support/cluster.h"

namespace infergate::testing {
namespace {

namespace fs = std::filesystem;

// "socket:[INODE]" -> INODE, else empty.
std::string socket_inode(const fs::path& link) {
  std::error_code ec;
  const std::string target = fs::read_symlink(link, ec).string();
  if (ec || target.rfind("socket:[", 0) != 0) return {};
  return target.substr(8, target.size() - 9);
}

// The inodes of the process's TCP sockets connected to 127.0.0.1:port (from
// /proc/PID/net/tcp: "sl local rem st ... inode").
std::set<std::string> sockets_to(pid_t pid, int port) {
  std::set<std::string> inodes;
  std::ifstream tcp("/proc/" + std::to_string(pid) + "/net/tcp");
  std::string line;
  std::getline(tcp, line);  // the header
  // The kernel prints the address's network-order word as a host integer.
  char remote[32];
  std::snprintf(remote, sizeof remote, "%08X:%04X", htonl(INADDR_LOOPBACK), port);
  while (std::getline(tcp, line)) {
    std::istringstream in(line);
    std::string sl, local, rem, st, queues, tr, retrnsmt, uid, timeout, inode;
    in >> sl >> local >> rem >> st >> queues >> tr >> retrnsmt >> uid >> timeout >> inode;
    if (rem == remote && st == "01") inodes.insert(inode);  // 01: ESTABLISHED
  }
  return inodes;
}

struct Registration {
  std::string inode;
  std::uint32_t events;
};

// Every registration in every epoll set of the process, by the target socket's inode.
std::vector<Registration> epoll_registrations(pid_t pid) {
  std::vector<Registration> out;
  const fs::path proc = "/proc/" + std::to_string(pid);
  std::error_code listed;
  for (const auto& entry : fs::directory_iterator(proc / "fd", listed)) {
    std::error_code ec;
    if (fs::read_symlink(entry.path(), ec).string() != "anon_inode:[eventpoll]") continue;
    std::ifstream info(proc / "fdinfo" / entry.path().filename());
    std::string line;
    while (std::getline(info, line)) {
      // "tfd:       21 events: 8000201b data: ... "
      int tfd = -1;
      unsigned events = 0;
      if (std::sscanf(line.c_str(), "tfd: %d events: %x", &tfd, &events) != 2) continue;
      const std::string inode = socket_inode(proc / "fd" / std::to_string(tfd));
      if (!inode.empty()) out.push_back({inode, events});
    }
  }
  EXPECT_FALSE(listed) << "listing " << proc / "fd"
                       << ": " << listed.message();
  return out;
}

// Issue 14: a backend connection's connect left its socket registered for writability for
// good, so every re-arm of its read wait (one per read) reported a writable socket that
// nobody waited on: an extra pass of the worker's loop, often an extra epoll_wait, per
// request at low concurrency. Registered afresh once connected, it reports reads only.
TEST(SocketRegistration, ConnectedBackendSocketsAreRegisteredForReadsOnly) {
  Sim sim("sim-a", {"--model", "identity"});
  Gateway gateway({{"sim-a", sim.address()}}, "", 1);
  auto stub = make_stub(gateway.port());
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    inference::ModelInferResponse response;
    ASSERT_TRUE(stub->ModelInfer(&context, identity_request(1024), &response).ok());
  }
  const pid_t pid = gateway.process().pid();
  const std::set<std::string> to_sim = sockets_to(pid, sim.port());
  ASSERT_FALSE(to_sim.empty()) << "the gateway holds connections to the sim";
  int data_plane = 0;
  for (const Registration& r : epoll_registrations(pid)) {
    if (to_sim.count(r.inode) == 0) continue;
    // The health monitor's gRPC channels are in gRPC's own epoll set, registered for
    // reads and writes by design; the data plane's event loops (asio) always ask for
    // EPOLLPRI as well, which tells their registrations apart.
    if ((r.events & EPOLLPRI) == 0) continue;
    ++data_plane;
    EXPECT_EQ(r.events & EPOLLOUT, 0u)
        << "backend socket inode " << r.inode << " registered for 0x" << std::hex << r.events;
  }
  EXPECT_GE(data_plane, 1) << "found the forwarding connection's registration";
}

}  // namespace
}  // namespace infergate::testing
