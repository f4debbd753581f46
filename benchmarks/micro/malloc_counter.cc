// An LD_PRELOAD library that counts heap allocations per thread, for
// benchmarks/allocations.sh: how many times a gateway worker calls malloc (new, calloc,
// realloc, aligned allocations) per request in steady state.
//
// Every thread's first allocation registers it in a fixed table (up to kMaxThreads; later
// threads are not counted). A reporter thread writes one line per registered thread,
// "<name> <tid> <allocations>", to the file named by INFERGATE_MALLOC_COUNTS every 100 ms
// (written aside, then renamed). With INFERGATE_MALLOC_TRACE=<thread name prefix>, it
// also writes the call stack of every 64th allocation of the matching threads to
// <counts file>.stacks, to find where they come from.
//
// The hooks call glibc's own __libc_* functions and never allocate themselves.
#include <execinfo.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" {
void* __libc_malloc(size_t);
void __libc_free(void*);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
}

namespace {

constexpr int kMaxThreads = 256;

struct Slot {
  std::atomic<long> tid{0};
  std::atomic<unsigned long> allocations{0};
  std::atomic<bool> traced{false};
};

Slot slots[kMaxThreads];
std::atomic<int> used_slots{0};
std::atomic<bool> ready{false};
char counts_path[512];
char trace_prefix[16];
int trace_fd = -1;

thread_local Slot* my_slot __attribute__((tls_model("initial-exec"))) = nullptr;
thread_local bool in_hook __attribute__((tls_model("initial-exec"))) = false;
thread_local unsigned trace_tick __attribute__((tls_model("initial-exec"))) = 0;

void read_name(long tid, char* name, size_t size) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%ld/comm", tid);
  const int fd = ::open(path, O_RDONLY);
  ssize_t n = fd >= 0 ? ::read(fd, name, size - 1) : -1;
  if (fd >= 0) ::close(fd);
  if (n <= 0) n = 0;
  while (n > 0 && (name[n - 1] == '\n' || name[n - 1] == ' ')) --n;
  name[n] = '\0';
  if (n == 0) std::snprintf(name, size, "?");
}

void count() {
  if (!ready.load(std::memory_order_relaxed) || in_hook) return;
  in_hook = true;
  if (my_slot == nullptr) {
    const int i = used_slots.fetch_add(1);
    if (i < kMaxThreads) {
      my_slot = &slots[i];
      my_slot->tid.store(static_cast<long>(::syscall(SYS_gettid)));
    }
  }
  if (my_slot != nullptr) {
    my_slot->allocations.fetch_add(1, std::memory_order_relaxed);
    if (trace_fd >= 0 && my_slot->traced.load(std::memory_order_relaxed) &&
        ++trace_tick % 64 == 0) {
      void* frames[24];
      const int n = ::backtrace(frames, 24);
      if (::write(trace_fd, "--\n", 3) == 3) ::backtrace_symbols_fd(frames, n, trace_fd);
    }
  }
  in_hook = false;
}

void* report(void*) {
  char tmp[600];
  std::snprintf(tmp, sizeof tmp, "%s.tmp", counts_path);
  for (;;) {
    ::usleep(100 * 1000);
    const int fd = ::open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) continue;
    const int n = used_slots.load() < kMaxThreads ? used_slots.load() : kMaxThreads;
    for (int i = 0; i < n; ++i) {
      const long tid = slots[i].tid.load();
      if (tid == 0) continue;
      char name[32];
      read_name(tid, name, sizeof name);
      if (trace_prefix[0] != '\0') {
        slots[i].traced.store(std::strncmp(name, trace_prefix, std::strlen(trace_prefix)) == 0);
      }
      char line[96];
      const int len = std::snprintf(line, sizeof line, "%s %ld %lu\n", name, tid,
                                    slots[i].allocations.load(std::memory_order_relaxed));
      if (::write(fd, line, static_cast<size_t>(len)) < 0) break;
    }
    ::close(fd);
    ::rename(tmp, counts_path);
  }
  return nullptr;
}

__attribute__((constructor)) void start() {
  const char* path = std::getenv("INFERGATE_MALLOC_COUNTS");
  if (path == nullptr || std::strlen(path) >= sizeof counts_path - 16) return;
  std::strcpy(counts_path, path);
  if (const char* prefix = std::getenv("INFERGATE_MALLOC_TRACE"); prefix != nullptr) {
    std::snprintf(trace_prefix, sizeof trace_prefix, "%s", prefix);
    char stacks[600];
    std::snprintf(stacks, sizeof stacks, "%s.stacks", counts_path);
    trace_fd = ::open(stacks, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    void* warm[2];
    ::backtrace(warm, 2);  // loads libgcc's unwinder now, not inside a hook
  }
  pthread_t reporter;
  pthread_create(&reporter, nullptr, report, nullptr);
  pthread_detach(reporter);
  ready.store(true);
}

}  // namespace

extern "C" {

void* malloc(size_t size) {
  count();
  return __libc_malloc(size);
}
void free(void* p) { __libc_free(p); }
void* calloc(size_t n, size_t size) {
  count();
  return __libc_calloc(n, size);
}
void* realloc(void* p, size_t size) {
  count();
  return __libc_realloc(p, size);
}
void* memalign(size_t alignment, size_t size) {
  count();
  return __libc_memalign(alignment, size);
}
void* aligned_alloc(size_t alignment, size_t size) {
  count();
  return __libc_memalign(alignment, size);
}
int posix_memalign(void** out, size_t alignment, size_t size) {
  count();
  void* p = __libc_memalign(alignment, size);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}

}  // extern "C"
