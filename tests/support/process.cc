#include "tests/support/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace infergate::testing {

namespace {

// This process's environment with `overrides` ("NAME=value") replacing or adding names.
std::vector<std::string> child_environment(const std::vector<std::string>& overrides) {
  std::vector<std::string> out(overrides);
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    const std::string name = entry.substr(0, entry.find('=') + 1);
    bool replaced = false;
    for (const std::string& o : overrides) replaced = replaced || o.rfind(name, 0) == 0;
    if (!replaced) out.push_back(entry);
  }
  return out;
}

// The first line of a report from AddressSanitizer, LeakSanitizer, UndefinedBehavior-
// Sanitizer or ThreadSanitizer.
bool sanitizer_line(const std::string& line) {
  return line.find("ERROR: AddressSanitizer") != std::string::npos ||
         line.find("ERROR: LeakSanitizer") != std::string::npos ||
         line.find("WARNING: ThreadSanitizer") != std::string::npos ||
         line.find("ThreadSanitizer: reported") != std::string::npos ||
         line.find(": runtime error: ") != std::string::npos;
}

}  // namespace

Process::Process(std::string path, std::vector<std::string> args, bool echo,
                 std::vector<std::string> env)
    : name_(path.substr(path.find_last_of('/') + 1)), echo_(echo) {
  int out[2];
  int err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe failed");
  }
  std::vector<char*> argv;
  argv.push_back(path.data());
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // Built before fork(): between fork and exec the child may only make async-signal-safe
  // calls.
  std::vector<std::string> environment = child_environment(env);
  std::vector<char*> envp;
  for (std::string& e : environment) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    dup2(out[1], STDOUT_FILENO);
    dup2(err[1], STDERR_FILENO);
    execve(path.c_str(), argv.data(), envp.data());
    std::fprintf(stderr, "exec %s failed: %s\n", path.c_str(), std::strerror(errno));
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  out_reader_ = std::thread([this, fd = out[0]] { read_loop(fd); });
  err_reader_ = std::thread([this, fd = err[0]] { read_loop(fd); });
}

Process::~Process() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    wait_exit(std::chrono::seconds(10));
  }
  if (out_reader_.joinable()) out_reader_.join();
  if (err_reader_.joinable()) err_reader_.join();
  // A child built with sanitizers may report an error and go on (or be killed before its
  // exit code says so): its report fails the test that ran it.
  if (!sanitizer_report_.empty()) {
    ADD_FAILURE() << name_ << " (pid " << pid_ << ") reported: " << sanitizer_report_;
  }
}

void Process::read_loop(int fd) {
  std::string partial;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    partial.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = partial.find('\n')) != std::string::npos) {
      std::string line = partial.substr(0, nl);
      partial.erase(0, nl + 1);
      if (echo_) std::fprintf(stderr, "[%s] %s\n", name_.c_str(), line.c_str());
      std::lock_guard<std::mutex> lock(mu_);
      if (sanitizer_report_.empty() && sanitizer_line(line)) sanitizer_report_ = line;
      lines_.push_back(std::move(line));
      cv_.notify_all();
    }
  }
  close(fd);
  std::lock_guard<std::mutex> lock(mu_);
  if (!partial.empty()) lines_.push_back(partial);
  --open_streams_;
  cv_.notify_all();
}

bool Process::running() {
  if (exit_code_) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return r == 0;
}

std::optional<std::string> Process::wait_for_line(const std::string& needle,
                                                  std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock<std::mutex> lock(mu_);
  size_t checked = 0;
  for (;;) {
    for (; checked < lines_.size(); ++checked) {
      if (lines_[checked].find(needle) != std::string::npos) return lines_[checked];
    }
    if (open_streams_ == 0) return std::nullopt;
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) return std::nullopt;
  }
}

int Process::wait_for_port(const std::string& needle, std::chrono::milliseconds timeout) {
  std::optional<std::string> line = wait_for_line(needle, timeout);
  if (!line) return 0;
  size_t colon = line->rfind(':');
  if (colon == std::string::npos) return 0;
  return std::atoi(line->c_str() + colon + 1);
}

void Process::signal(int sig) {
  if (running()) ::kill(pid_, sig);
}

std::optional<int> Process::wait_exit(std::chrono::milliseconds timeout) {
  bool done = wait_until([this] { return !running(); }, timeout);
  if (!done) return std::nullopt;
  return exit_code_;
}

std::vector<std::string> Process::lines() {
  std::lock_guard<std::mutex> lock(mu_);
  return lines_;
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // poll interval
  }
}

}  // namespace infergate::testing
