// Makes Abseil's Mutex and CondVar visible to ThreadSanitizer, for scripts/tsan.sh.
//
// Debian builds gRPC and Abseil without TSan. gRPC's threads hand work (a call's
// completion, a callback to run) to each other under absl::Mutex, which is built on
// futexes that TSan cannot see, so every object our code hands to gRPC and gets back on
// another thread would look raced. Preloaded (LD_PRELOAD) into the TSan-built processes,
// this library wraps absl::Mutex's and absl::CondVar's exported functions, which gRPC
// calls through the PLT, and tells TSan what each one means: a lock acquires the
// mutex's history, an unlock releases it, a wait does both. It changes no behaviour.
// Not part of the CMake build: tsan.sh compiles it (plain -fPIC -shared, not itself
// instrumented).
#include <absl/synchronization/mutex.h>
#include <absl/time/time.h>
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>

namespace {

// The next definition of `symbol` (Abseil's own), or the process ends: a preload that
// silently did nothing would make TSan's verdict meaningless.
void* real(const char* symbol) {
  void* f = dlsym(RTLD_NEXT, symbol);
  if (f == nullptr) {
    std::fprintf(stderr, "tsan_absl_sync: %s not found\n", symbol);
    std::abort();
  }
  return f;
}

void acquired(const void* mu) { __tsan_acquire(const_cast<void*>(mu)); }
void releasing(const void* mu) { __tsan_release(const_cast<void*>(mu)); }

}  // namespace

// Each function: the Itanium-ABI name of the real one, called with `this` first.
#define REAL(type, mangled) static const auto fn = reinterpret_cast<type>(real(mangled))

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex4LockEv");
  fn(this);
  acquired(this);
}

void Mutex::ReaderLock() {
  REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex10ReaderLockEv");
  fn(this);
  acquired(this);
}

void Mutex::Unlock() {
  REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex6UnlockEv");
  releasing(this);
  fn(this);
}

void Mutex::ReaderUnlock() {
  REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex12ReaderUnlockEv");
  releasing(this);
  fn(this);
}

bool Mutex::TryLock() {
  REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex7TryLockEv");
  const bool locked = fn(this);
  if (locked) acquired(this);
  return locked;
}

bool Mutex::ReaderTryLock() {
  REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex13ReaderTryLockEv");
  const bool locked = fn(this);
  if (locked) acquired(this);
  return locked;
}

void Mutex::LockWhen(const Condition& cond) {
  REAL(void (*)(Mutex*, const Condition&), "_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE");
  fn(this, cond);
  acquired(this);
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  REAL(void (*)(Mutex*, const Condition&),
       "_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE");
  fn(this, cond);
  acquired(this);
}

// The *WithTimeout and *WithDeadline forms hold the mutex on return, true or false.
bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  REAL(bool (*)(Mutex*, const Condition&, Duration),
       "_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  const bool r = fn(this, cond, timeout);
  acquired(this);
  return r;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  REAL(bool (*)(Mutex*, const Condition&, Time),
       "_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  const bool r = fn(this, cond, deadline);
  acquired(this);
  return r;
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, Duration timeout) {
  REAL(bool (*)(Mutex*, const Condition&, Duration),
       "_ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  const bool r = fn(this, cond, timeout);
  acquired(this);
  return r;
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  REAL(bool (*)(Mutex*, const Condition&, Time),
       "_ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  const bool r = fn(this, cond, deadline);
  acquired(this);
  return r;
}

// Await* and CondVar::Wait* release the mutex while they wait and hold it again after.
void Mutex::Await(const Condition& cond) {
  REAL(void (*)(Mutex*, const Condition&), "_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE");
  releasing(this);
  fn(this, cond);
  acquired(this);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  REAL(bool (*)(Mutex*, const Condition&, Duration),
       "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  releasing(this);
  const bool r = fn(this, cond, timeout);
  acquired(this);
  return r;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  REAL(bool (*)(Mutex*, const Condition&, Time),
       "_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  releasing(this);
  const bool r = fn(this, cond, deadline);
  acquired(this);
  return r;
}

void CondVar::Wait(Mutex* mu) {
  REAL(void (*)(CondVar*, Mutex*), "_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE");
  releasing(mu);
  fn(this, mu);
  acquired(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  REAL(bool (*)(CondVar*, Mutex*, Duration),
       "_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  releasing(mu);
  const bool r = fn(this, mu, timeout);
  acquired(mu);
  return r;
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  REAL(bool (*)(CondVar*, Mutex*, Time),
       "_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  releasing(mu);
  const bool r = fn(this, mu, deadline);
  acquired(mu);
  return r;
}

ABSL_NAMESPACE_END
}  // namespace absl
